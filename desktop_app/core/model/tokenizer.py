"""The model's own fast tokenizer, read from its ``tokenizer.json`` by ``tokenizers`` alone.

Hugging Face's ``transformers`` wrapper imports torch (2-4 s of a CPU start) and changes the
tokenizer's truncation state on every call, so two threads sharing one fail with "Already borrowed".
Here the tokenizer is configured once and never changed afterwards: each text is cut to its length
and given its special tokens the way the library's own truncation does it (``Encoding.truncate``,
then ``post_process``), so any thread may encode at once, and nothing here needs torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

# The special tokens that carry no lexical weight (BGE-M3 drops them from its sparse output).
UNWEIGHTED_SPECIAL_TOKENS = ("cls_token", "eos_token", "pad_token", "unk_token")


class ModelTokenizer:
    """Token ids, offsets and token texts, as the model's Hugging Face fast tokenizer gives them."""

    def __init__(self, model_folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # a tokenizer.json may carry both (the lite model's pads and cuts to 128)
        self._tokenizer.no_truncation()
        self._special_count = self._tokenizer.num_special_tokens_to_add(is_pair=False)
        special = _special_tokens(model_folder)
        self.pad_id = self._id_of(special.get("pad_token")) or 0
        self.unweighted_ids = {token for token in (self._id_of(special.get(name))
                                                   for name in UNWEIGHTED_SPECIAL_TOKENS) if token is not None}

    def _id_of(self, token: str | dict | None) -> int | None:
        if isinstance(token, dict):  # {"content": "<pad>", ...} in newer special_tokens_map files
            token = token.get("content")
        return self._tokenizer.token_to_id(token) if token else None

    def ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Each text's token ids with the model's special tokens, cut to ``max_length`` in all."""
        budget = max(max_length - self._special_count, 0)
        found = []
        for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False):
            encoding.truncate(budget)
            found.append(self._tokenizer.post_process(encoding).ids)
        return found

    def pieces(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The ids of ``text``'s tokens (no special tokens, no length limit) and each one's character span."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)

    def token(self, token_id: int) -> str | None:
        """The vocabulary entry of ``token_id`` ("▁wing", "##ing"), as it is before decoding."""
        return self._tokenizer.id_to_token(token_id)


def _special_tokens(model_folder: Path) -> dict[str, str | dict]:
    """The special tokens by role, from ``special_tokens_map.json`` or else ``tokenizer_config.json``."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        try:
            found = json.loads((model_folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        special = {role: value for role, value in found.items() if role.endswith("_token")}
        if special:
            return special
    return {}
