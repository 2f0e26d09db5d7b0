"""The engine shared by several threads (the window's workers, the HTTP server's requests) and its embeddings."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from desktop_app.core.engine import Engine
from desktop_app.core.errors import IndexClosedError


@pytest.fixture
def engine(settings, aero_corpus):
    engine = Engine.open(settings, create=True)
    engine.indexer().run([aero_corpus])
    yield engine
    engine.close()


def test_threads_sharing_one_engine_get_what_one_thread_gets(engine) -> None:
    queries = ["how do wings stall", "hypersonic heating", "shell buckling", "jet noise"] * 5
    alone = [[hit.path for hit in engine.search(q, k=3).hits] for q in queries]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda q: [hit.path for hit in engine.search(q, k=3).hits], queries))
        statuses = list(pool.map(lambda _: engine.status()["chunks"], range(8)))
    assert together == alone
    assert statuses == [4] * 8


def test_close_waits_for_a_search_in_progress_and_later_calls_say_it_is_closed(engine, monkeypatch) -> None:
    inside, release = threading.Event(), threading.Event()
    search = engine._searcher.search

    def slow_search(query: str, **options: object) -> object:
        inside.set()
        release.wait(10)
        return search(query, **options)

    monkeypatch.setattr(engine._searcher, "search", slow_search)
    with ThreadPoolExecutor(2) as pool:
        searching = pool.submit(engine.search, "wing stall")
        inside.wait(10)
        closing = pool.submit(engine.close)
        with pytest.raises(TimeoutError):  # it waits for the search: the connection is not pulled from under it
            closing.result(0.3)
        release.set()
        assert searching.result(10).hits
        closing.result(10)
    with pytest.raises(IndexClosedError, match="try again"):
        engine.files()
    engine.close()  # a second close is harmless


def test_embed_gives_the_encoders_vectors_with_lexical_weights_keyed_by_token_text(engine, encoder) -> None:
    texts = ["Wing stall at a high angle of attack", "jet noise"]
    embedded = engine.embed(texts, colbert=True)
    expected = encoder.encode(texts, colbert=True)
    assert embedded["dim"] == len(embedded["dense_vecs"][0]) == encoder.dim
    for got, want in zip(embedded["dense_vecs"], expected):
        np.testing.assert_allclose(got, want.dense, atol=1e-5)
    assert {"wing", "stall", "angle"} <= set(embedded["lexical_weights"][0])
    assert max(embedded["lexical_weights"][1].values()) == pytest.approx(max(expected[1].sparse.values()))
    assert np.asarray(embedded["colbert_vecs"][0]).shape == expected[0].colbert.shape
    assert set(engine.embed(texts, dense=False, sparse=False)) == {"model", "dim"}


def test_settings_that_an_engine_is_built_with_reopen_it_and_the_rest_apply_at_once(tmp_path) -> None:
    from desktop_app.core import Settings, Weights

    now = Settings(index_dir=tmp_path / "index")
    assert now.reopens_engine(now.with_(ocr=not now.ocr))
    assert now.reopens_engine(now.with_(index_dir=tmp_path / "another"))
    assert not now.reopens_engine(now.with_(watch_folders=not now.watch_folders))
    assert not now.reopens_engine(now.with_(weights=Weights.parse("0.5,0.5,0")))
