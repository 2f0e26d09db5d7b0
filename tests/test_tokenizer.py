"""The model's tokenizer without transformers gives what Hugging Face's fast tokenizer gives."""

from __future__ import annotations

import pytest

from desktop_app.core.model.tokenizer import ModelTokenizer

TEXTS = [
    "Wing stall at high angle of attack.",
    "Überschall-Strömung, naïve café; 超音速の流れ — and emoji 🚀 too",
    "",
    "   leading and trailing spaces   ",
    "supersonic " * 700,  # cut at the limit
    "don't split it's contractions, e.g. U.S.A. or 3.14159",
]


@pytest.fixture(scope="module")
def theirs(lite_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(lite_model_dir))


@pytest.fixture(scope="module")
def ours(lite_model_dir) -> ModelTokenizer:
    return ModelTokenizer(lite_model_dir)


@pytest.mark.parametrize("max_length", [512, 16, 3])
def test_ids_match_with_special_tokens_and_truncation(ours, theirs, max_length) -> None:
    want = theirs(TEXTS, truncation=True, max_length=max_length)["input_ids"]
    assert ours.ids(TEXTS, max_length) == want
    assert all(len(ids) <= max_length for ids in want)


def test_pieces_and_offsets_match(ours, theirs) -> None:
    for text in TEXTS:
        want = theirs(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = ours.pieces(text)
        assert ids == want["input_ids"] and [tuple(span) for span in offsets] == list(want["offset_mapping"])


def test_special_tokens_and_single_token_texts_match(ours, theirs) -> None:
    special = theirs.special_tokens_map
    assert ours.pad_id == theirs.pad_token_id
    assert ours.unweighted_ids == {theirs.convert_tokens_to_ids(special[name])
                                   for name in ("cls_token", "eos_token", "pad_token", "unk_token")}
    for token in {token for ids in theirs(TEXTS)["input_ids"] for token in ids}:
        assert ours.decode([token]) == theirs.decode([token])
        assert ours.token(token) == theirs.convert_ids_to_tokens(token)


def test_the_tokenizer_files_padding_and_truncation_are_ignored(ours) -> None:
    """The lite model's tokenizer.json pads and cuts every text to 128 tokens; the wrapper must not."""
    short, long = (len(ids) for ids in ours.ids(["short", "supersonic " * 200], 512))
    assert short == 3 and 128 < long <= 512
