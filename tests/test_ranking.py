"""Default fusion follows what the model is trusted with; terms and channels explain each hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.config import BGE_M3_WEIGHTS, DENSE_KEYWORD_WEIGHTS, Weights, default_weights
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.model.resolve import TRAINED_CHANNELS, load_spec, trusted_channels
from desktop_app.core.search.searcher import Searcher


@pytest.fixture
def searcher(settings, encoder, aero_corpus):
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([aero_corpus])
    yield Searcher(index, encoder)
    index.close()


def test_the_lite_model_is_trusted_with_its_dense_vectors_only(spec) -> None:
    assert spec.trusted == ("dense",)
    assert default_weights(spec.trusted) == DENSE_KEYWORD_WEIGHTS


def test_a_bge_m3_folder_is_trusted_with_all_three_channels(tmp_path: Path, lite_model_dir: Path) -> None:
    folder = tmp_path / "m3"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "sparse_linear.pt", "colbert_linear.pt", "model.safetensors"):
        (folder / name).write_bytes((lite_model_dir / name).read_bytes())
    assert load_spec(folder).trusted == TRAINED_CHANNELS
    assert default_weights(TRAINED_CHANNELS) == BGE_M3_WEIGHTS == Weights(0.4, 0.3, 0.3, 0.0)


def test_an_index_records_what_its_model_is_trusted_with(searcher) -> None:
    assert searcher.index.model_info["trusted_channels"] == ["dense"]
    # Indexes from before the record existed are told by their label.
    assert trusted_channels({"label": "lite"}) == ("dense",)
    assert trusted_channels({"label": "full"}) == TRAINED_CHANNELS


def test_default_hybrid_fuses_what_the_model_is_trusted_with(searcher) -> None:
    result = searcher.search("what makes an aircraft wing lose lift", k=3)
    assert result.channels == ["dense", "keyword"]
    assert result.hits[0].path.endswith("stall.txt")
    record = json.loads(searcher.store.get_meta("model"))
    record["trusted_channels"] = list(TRAINED_CHANNELS)
    searcher.store.set_meta("model", json.dumps(record))
    assert searcher.search("wing stall", k=3).channels == ["dense", "sparse"], "ColBERT joins on CUDA only"


def test_explicit_weights_override_the_model_defaults(searcher) -> None:
    assert searcher.search("wing stall", weights=Weights(0.4, 0.3, 0, 0)).channels == ["dense", "sparse"]


def test_a_hit_found_by_meaning_alone_gets_no_invented_terms(searcher) -> None:
    hits = searcher.search("aircraft", k=4, mode="dense").hits
    assert hits and all(hit.found_by == ["dense"] for hit in hits)
    assert all(hit.terms == [] for hit in hits), "no document contains 'aircraft'"


def test_keyword_hits_name_the_words_they_matched_in_stemmed_form(searcher) -> None:
    hit = searcher.search("stalling wings", k=1, mode="keyword").hits[0]
    assert hit.path.endswith("stall.txt") and hit.found_by == ["keyword"]
    assert set(hit.terms) == {"stalling", "wings"}
    assert "stall" in hit.snippet.lower()


def test_hybrid_hits_say_which_channels_found_them(searcher) -> None:
    hit = searcher.search("jet noise at take-off", k=1).hits[0]
    assert hit.path.endswith("noise.txt") and set(hit.found_by) == {"dense", "keyword"}
    assert {"jet", "noise"} <= set(hit.terms)
