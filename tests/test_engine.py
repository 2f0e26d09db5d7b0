"""The engine shared by several threads (the window's workers, the HTTP server's requests) and its embeddings."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def held_searches(monkeypatch, held: str) -> tuple[threading.Event, threading.Event]:
    """Searches for ``held`` stop inside the searcher (holding its reading connection) until released."""
    from desktop_app.core.search.searcher import Searcher

    inside, release = threading.Event(), threading.Event()
    search = Searcher.search

    def slow_search(self: Searcher, query: str, **options: object) -> object:
        if query == held:
            inside.set()
            release.wait(10)
        return search(self, query, **options)

    monkeypatch.setattr(Searcher, "search", slow_search)
    return inside, release


def test_searches_run_side_by_side_on_their_own_reading_connections(engine, monkeypatch) -> None:
    inside, release = held_searches(monkeypatch, "wing stall")
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(engine.search, "wing stall")
        assert inside.wait(10)
        assert engine.search("jet noise", k=1).hits  # not queued behind the held search
        assert engine.files() and engine.status()["chunks"] == 4
        release.set()
        assert held.result(10).hits


def test_concurrent_searches_share_forward_passes_and_get_their_own_results(engine) -> None:
    queries = [f"{words} {i}" for i in range(6) for words in ("wing stall", "hypersonic heating", "shell buckling")]
    alone = {q: engine.search(q, k=2) for q in queries}
    engine._answers.changed()  # no kept answers: every search below encodes its query
    rounds, encoded = engine._queries.batches, engine._queries.batched
    start = threading.Barrier(len(queries))

    def search(query: str) -> object:
        start.wait(10)
        return engine.search(query, k=2)

    with ThreadPoolExecutor(len(queries)) as pool:
        together = dict(zip(queries, pool.map(search, queries)))
    assert engine._queries.batched - encoded == len(queries)
    assert engine._queries.batches - rounds < len(queries)  # some forward passes served several searches
    for query in queries:
        assert together[query].query == query
        assert [h.path for h in together[query].hits] == [h.path for h in alone[query].hits]
        for got, want in zip(together[query].hits, alone[query].hits):
            assert got.scores["dense"] == pytest.approx(want.scores["dense"], abs=2e-3)


def test_close_waits_for_a_search_in_progress_and_later_calls_say_it_is_closed(engine, monkeypatch) -> None:
    inside, release = held_searches(monkeypatch, "wing stall")
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


def test_a_searcher_given_back_goes_to_the_longest_waiting_thread_not_to_a_newcomer(engine, monkeypatch) -> None:
    """With every searcher busy, threads wait in line. Waiting on a Condition alone, a thread that asked
    just after a searcher came back took it before the woken waiter ran, so a request could be passed
    over again and again."""
    import time

    from desktop_app.core import engine as engine_module

    monkeypatch.setattr(engine_module, "READERS", 1)
    order: list[str] = []
    holding = engine._reading()
    holding.__enter__()

    def wait_in_line() -> None:
        with engine._reading():
            order.append("waited first")

    waiter = threading.Thread(target=wait_in_line)
    waiter.start()
    deadline = time.monotonic() + 10
    while not engine._waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    holding.__exit__(None, None, None)
    with engine._reading():  # asks the moment the searcher is given back
        order.append("came later")
    waiter.join(10)
    assert order == ["waited first", "came later"]


def test_threads_waiting_for_a_searcher_are_told_when_the_index_closes(engine, monkeypatch) -> None:
    import time

    from desktop_app.core import engine as engine_module

    monkeypatch.setattr(engine_module, "READERS", 1)
    holding = engine._reading()
    holding.__enter__()
    with ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(engine.files)
        deadline = time.monotonic() + 10
        while not engine._waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        closing = pool.submit(engine.close)
        with pytest.raises(IndexClosedError, match="try again"):
            waiting.result(10)
        holding.__exit__(None, None, None)
        closing.result(10)


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


def test_a_repeated_search_is_answered_from_memory_until_the_index_changes(engine, aero_corpus, tmp_path) -> None:
    first = engine.search("wing stall", k=3)
    again = engine.search("wing stall", k=3)
    assert engine._answers.hits == 1 and again.hits == first.hits and again.query == first.query
    assert engine.search("wing stall", k=4).hits[:3] == first.hits  # other options: searched anew
    assert engine._answers.hits == 1

    # This process indexes a new file (commit, then the caches): the next search sees it.
    (aero_corpus / "stall-notes.txt").write_text("Wing stall notes: stall warning, stall speed, wing stall recovery.")
    engine.indexer().update([str(aero_corpus / "stall-notes.txt")])
    assert "stall-notes.txt" in [Path(h.path).name for h in engine.search("wing stall", k=3).hits]

    # Another process removes it: its commit is noticed before any kept answer is given.
    other = Engine.open(engine.settings.with_(), with_model=False)
    other.remove([aero_corpus / "stall-notes.txt"])
    other.close()
    assert "stall-notes.txt" not in [Path(h.path).name for h in engine.search("wing stall", k=3).hits]



def test_a_change_to_the_caches_alone_drops_the_kept_answers(engine) -> None:
    """A writer in this process commits, then updates the caches: a search in between must not be kept."""
    first = engine.search("wing stall", k=3)
    engine._index.caches.delete([first.hits[0].chunk_id])  # the caches change, SQLite does not
    again = engine.search("wing stall", k=3)
    assert engine._answers.hits == 0
    assert first.hits[0].chunk_id not in [h.chunk_id for h in again.hits]
