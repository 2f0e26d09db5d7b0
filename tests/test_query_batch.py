"""Queries of concurrent searches are encoded together (each gets its own, errors reach every one), and
repeated searches are answered from memory only while nothing changed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from desktop_app.core.errors import IndexClosedError, ModelError
from desktop_app.core.model.encoding import Encoding
from desktop_app.core.model.query_batch import QueryBatcher


class FakeEncoder:
    """Encodes a text as its length; the first forward pass waits until released, so others queue up."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.first_started, self.release = threading.Event(), threading.Event()
        self.fail = fail

    def encode(self, texts: list[str], max_length: int | None = None, colbert: bool = False) -> list[Encoding]:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            self.first_started.set()
            self.release.wait(10)
        if self.fail:
            raise ModelError("the model ran out of memory")
        return [Encoding(np.array([len(t), max_length], dtype=np.float32), {len(t): 1.0},
                         np.zeros((1, 2)) if colbert else None) for t in texts]


def test_queries_that_arrive_during_a_forward_pass_make_the_next_batch_and_each_gets_its_own() -> None:
    encoder = FakeEncoder()
    batcher = QueryBatcher(encoder)
    texts = ["a" * n for n in range(1, 12)]
    with ThreadPoolExecutor(len(texts) + 1) as pool:
        first = pool.submit(batcher.encode, "first", 512)
        assert encoder.first_started.wait(10)
        rest = [pool.submit(batcher.encode, text, 512, colbert=(len(text) == 3)) for text in texts]
        deadline = time.monotonic() + 10
        while len(batcher._waiting) < len(texts) and time.monotonic() < deadline:
            time.sleep(0.01)
        encoder.release.set()
        got = [future.result(10) for future in rest]
    assert first.result(10).dense[0] == 5
    assert [int(e.dense[0]) for e in got] == list(range(1, 12))
    assert all(e.dense[1] == 512 for e in got)
    assert [e.colbert is not None for e in got] == [len(t) == 3 for t in texts]  # only who asked for it
    assert len(encoder.batches) == 2 and sorted(encoder.batches[1]) == sorted(texts)
    batcher.close()
    with pytest.raises(IndexClosedError):
        batcher.encode("late", 512)


def test_a_failed_forward_pass_raises_in_every_search_that_waited_for_it() -> None:
    encoder = FakeEncoder(fail=True)
    batcher = QueryBatcher(encoder)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.encode, f"query {i}", 512) for i in range(4)]
        encoder.release.set()
        for future in futures:
            with pytest.raises(ModelError, match="out of memory"):
                future.result(10)
    encoder.fail = False
    assert batcher.encode("after", 512).dense[0] == 5  # the batcher goes on
    batcher.close()


def test_kept_answers_belong_to_one_epoch_and_to_searches_ranked_as_asked() -> None:
    from desktop_app.core.search.result_cache import ResultCache
    from desktop_app.core.search.results import SearchResult

    cache = ResultCache(entries=2)
    answer = SearchResult("wing", "hybrid", ["dense"], {"dense": 1.0}, 12.0, [])
    cache.put("wing", cache.epoch, time.perf_counter(), answer)
    kept = cache.get("wing")
    assert kept is not None and kept.query == "wing" and kept.took_ms < 12.0
    began = cache.epoch
    cache.changed()
    assert cache.get("wing") is None
    cache.put("wing", began, time.perf_counter(), answer)  # began before the change: never kept
    assert cache.get("wing") is None
    by_words = SearchResult("wing", "keyword", ["keyword"], {}, 1.0, [], "ranked by words; the model is loading")
    cache.put("loading", cache.epoch, time.perf_counter(), by_words)
    assert cache.get("loading") is None
    for key in ("a", "b", "c"):
        cache.put(key, cache.epoch, time.perf_counter(), answer)
    assert cache.get("a") is None and cache.get("c") is not None  # the least recently used went first
    cache.put("old", cache.epoch, time.perf_counter() - 3600, answer)
    assert cache.get("old") is None
