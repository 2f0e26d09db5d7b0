"""The index's per-channel and fused scores equal BGEM3FlagModel.compute_score (fp32)."""

from __future__ import annotations

import pytest

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.config import Weights
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.search.searcher import Searcher

QUERY = "why does a wing stall at a high angle of attack"
WEIGHTS = [0.4, 0.3, 0.3]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, encoder, lite_model_dir):
    from conftest import AERO_DOCS

    from desktop_app.core.config import Settings

    root = tmp_path_factory.mktemp("scores")
    docs = root / "docs"
    docs.mkdir()
    for name, text in AERO_DOCS.items():
        (docs / name).write_text(text)
    settings = Settings(index_dir=root / "index", lite_model_dir=lite_model_dir, device="cpu")
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([docs])
    yield Searcher(index, encoder)
    index.close()


@pytest.fixture(scope="module")
def reference(indexed, lite_model_dir):
    """compute_score for the query against every chunk's stored text, keyed by path."""
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(str(lite_model_dir), use_fp16=False, devices="cpu", pooling_method="mean")
    rows = indexed.store.chunk_rows(indexed.store.all_chunk_ids().tolist())
    paths = [row.path for row in rows.values()]
    scores = model.compute_score([(QUERY, row.text) for row in rows.values()], batch_size=1,
                                 max_passage_length=512, weights_for_different_modes=WEIGHTS)
    return {path: {name: values[i] for name, values in scores.items()} for i, path in enumerate(paths)}


def test_channel_and_raw_fused_scores_equal_compute_score(indexed, reference) -> None:
    result = indexed.search(QUERY, k=10, weights=Weights(*WEIGHTS), colbert=True, fusion="raw")
    assert len(result.hits) == len(reference)
    assert result.channels == ["dense", "sparse", "colbert"]
    for hit in result.hits:
        expected = reference[hit.path]
        assert hit.scores["dense"] == pytest.approx(expected["dense"], abs=1e-3)
        assert hit.scores["sparse"] == pytest.approx(expected["sparse"], abs=1e-3)
        assert hit.scores["colbert"] == pytest.approx(expected["colbert"], abs=1e-3)
        assert hit.score == pytest.approx(expected["colbert+sparse+dense"], abs=1e-3)


def test_dense_plus_sparse_raw_fusion_equals_compute_score(indexed, reference) -> None:
    result = indexed.search(QUERY, k=10, weights=Weights(*WEIGHTS), colbert=False, fusion="raw")
    for hit in result.hits:
        assert hit.score == pytest.approx(reference[hit.path]["sparse+dense"], abs=1e-3)


def test_max_normalised_fusion_is_each_channel_over_its_best(indexed, reference) -> None:
    result = indexed.search(QUERY, k=10, weights=Weights(*WEIGHTS), colbert=True)
    best = {name: max(ref[name] for ref in reference.values()) for name in ("dense", "sparse", "colbert")}
    for hit in result.hits:
        expected = sum(w * reference[hit.path][name] / best[name]
                       for w, name in zip(WEIGHTS, ("dense", "sparse", "colbert"))) / sum(WEIGHTS)
        assert hit.score == pytest.approx(expected, abs=1e-3)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_single_channel_modes_rank_by_that_channel(indexed, reference) -> None:
    for mode in ("dense", "sparse"):
        hits = indexed.search(QUERY, k=10, mode=mode).hits
        expected = sorted(reference, key=lambda path: -reference[path][mode])
        assert [h.path for h in hits][:3] == expected[:3]
