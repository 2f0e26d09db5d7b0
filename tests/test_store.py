"""SQLite store: sparse retrieval against brute force, atomic file replacement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop_app.core.store import NewChunk, Store


def chunk(sparse: dict[int, float], text: str = "text") -> NewChunk:
    return NewChunk(1, 0, len(text), 3, text, np.ones(4, dtype=np.float32) / 2, sparse)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "index.sqlite3")
    rng = np.random.default_rng(7)
    with opened.transaction():
        for f in range(40):
            chunks = [chunk({int(t): float(w) for t, w in zip(rng.choice(50, 8, replace=False), rng.random(8))})
                      for _ in range(5)]
            opened.replace_file(f"/docs/{f}.txt", 10, 1, "sha", "{}", chunks)
    yield opened
    opened.close()


def brute_force(store: Store, query: dict[int, float]) -> dict[int, float]:
    scores: dict[int, float] = {}
    for chunk_id, token, weight in store.conn.execute("SELECT chunk_id, token_id, weight FROM sparse"):
        if token in query:
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * query[token]
    return scores


def test_sparse_top_equals_brute_force(store: Store) -> None:
    query = {3: 0.5, 17: 0.2, 42: 0.9}
    expected = sorted(brute_force(store, query).items(), key=lambda item: -item[1])[:10]
    found = store.sparse_top(query, 10)
    assert [c for c, _ in found] == [c for c, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=1e-9)


def test_maxscore_top_k_is_exact_for_common_and_rare_tokens(store: Store) -> None:
    rng = np.random.default_rng(11)
    for _ in range(30):
        tokens = rng.choice(50, int(rng.integers(1, 9)), replace=False)
        query = {int(t): float(w) for t, w in zip(tokens, rng.uniform(0.01, 1.0, len(tokens)))}
        expected = sorted(brute_force(store, query).items(), key=lambda item: (-item[1], item[0]))[:5]
        found = store.sparse_top(query, 5)
        np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=1e-9)


def test_tokens_absent_from_the_index_find_nothing(store: Store) -> None:
    assert store.sparse_top({999: 1.0}, 5) == []


def test_replacing_a_file_is_all_or_nothing(store: Store) -> None:
    before = store.counts()
    with pytest.raises(RuntimeError), store.transaction():
        store.replace_file("/docs/0.txt", 10, 2, "sha2", "{}", [chunk({1: 0.1})])
        raise RuntimeError("crash in the middle")
    assert store.counts() == before
    assert len(store.files_under("/docs")) == 40
