"""The in-memory sparse postings: exact against summing SQLite's rows, saved and caught up like hnswlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stored import Encoded, index_encoded

from desktop_app.core.backends.local.caches import POSTINGS_NAME
from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.backends.local.postings import PostingsIndex


def brute_force(rows: list[tuple[int, int, float]], query: dict[int, float], gone: set[int] = frozenset()):
    scores: dict[int, float] = {}
    for chunk_id, token, weight in rows:
        if token in query and chunk_id not in gone:
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * query[token]
    return scores


def random_rows(seed: int, chunks: int, first_id: int = 1) -> list[tuple[int, int, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for cid in range(first_id, first_id + chunks):
        tokens = rng.choice(60, 8, replace=False)
        rows.extend((cid, int(t), float(w)) for t, w in zip(tokens, rng.uniform(0.01, 0.4, 8)))
    return rows


def assert_exact(postings: PostingsIndex, rows, gone=frozenset(), allowed=None) -> None:
    rng = np.random.default_rng(3)
    for _ in range(25):
        tokens = rng.choice(70, int(rng.integers(1, 13)), replace=False)  # some tokens no chunk has
        query = {int(t): float(w) for t, w in zip(tokens, rng.uniform(0.01, 1.0, len(tokens)))}
        expected = brute_force(rows, query, gone)
        if allowed is not None:
            expected = {c: v for c, v in expected.items() if c in allowed}
        best = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:10]
        found = postings.top(query, 10, allowed)
        np.testing.assert_allclose([s for _, s in found], [s for _, s in best], rtol=1e-5)
        assert {c for c, _ in found} <= set(expected)


def test_top_is_exact_with_additions_pending_merged_and_deleted(tmp_path: Path) -> None:
    postings = PostingsIndex(tmp_path / "p.npz")
    first, second = random_rows(1, 300), random_rows(2, 200, first_id=301)
    postings.add(first)
    postings.save()  # merged into the CSR block
    postings.add(second)  # pending
    gone = set(range(5, 400, 7))
    postings.delete(gone)
    assert_exact(postings, first + second, gone)
    assert_exact(postings, first + second, gone, allowed=set(range(100, 200)))
    weights = postings.weights_of([10, 12, 10_000], {t: 1.0 for c, t, _ in first if c in (10, 12)})
    assert weights[10] == {t: pytest.approx(w) for c, t, w in first if c == 10}
    assert weights[12] == {} and weights[10_000] == {}, "a deleted chunk and one never added weigh nothing"


def test_a_saved_file_loads_to_the_same_answers_and_a_damaged_one_loads_empty(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    postings = PostingsIndex(path)
    rows = random_rows(5, 400)
    postings.add(rows)
    postings.delete({7, 8, 9})
    postings.save()
    again = PostingsIndex(path)
    assert again.load() is not None and again.posting_count == postings.posting_count
    assert_exact(again, rows, {7, 8, 9})
    path.write_bytes(path.read_bytes()[:100])
    broken = PostingsIndex(path)
    assert broken.load() is None and broken.posting_count == 0


def chunk(sparse: dict[int, float]) -> Encoded:
    return Encoded("text", np.ones(8, dtype=np.float32) / 8 ** 0.5, sparse)


def store_file(index: LocalIndex, name: str, sparse: list[dict[int, float]]) -> list[int]:
    return index_encoded(index, name, [chunk(s) for s in sparse])


def open_bound(folder: Path) -> LocalIndex:
    index = LocalIndex.open(folder, create=True)
    if index.caches.dense is None:
        index.store.set_meta("model", '{"name": "t", "dim": 8, "fingerprint": "f", "label": "t"}')
        index.caches.attach(8)
    return index


def test_a_reader_catches_up_with_a_writers_postings_and_a_restart_reuses_the_saved_file(tmp_path: Path) -> None:
    writer = open_bound(tmp_path)
    reader = LocalIndex.open(tmp_path)
    with writer.writer("test"):
        a = store_file(writer, "/a.txt", [{1: 0.5, 2: 0.1}, {3: 0.7}])
    with writer.writer("test"):
        b = store_file(writer, "/b.txt", [{1: 0.9}])
        with writer.store.transaction():
            writer.delete_chunks(writer.store.remove_file(1))
    reader.catch_up()
    assert reader.caches.postings.top({1: 1.0, 3: 1.0}, 5) == [(b[0], pytest.approx(0.9))]
    assert (tmp_path / POSTINGS_NAME).exists()
    writer.close()
    reader.close()
    reopened = LocalIndex.open(tmp_path)
    assert reopened.repaired == 0 and reopened.caches.postings.top({1: 1.0}, 5) == [(b[0], pytest.approx(0.9))]
    reopened.close()
    assert a  # the removed file's chunks were stored first


def test_a_missing_or_stale_postings_file_is_rebuilt_from_sqlite(tmp_path: Path) -> None:
    """As an index from before the postings cache: no sparse.npz, and MaxScore's token index."""
    writer = open_bound(tmp_path)
    with writer.writer("test"):
        ids = store_file(writer, "/a.txt", [{4: 0.5}, {4: 0.25, 5: 1.0}])
        writer.store.conn.execute("CREATE INDEX sparse_impact ON sparse(token_id, weight DESC, chunk_id)")
    writer.close()
    (tmp_path / POSTINGS_NAME).unlink()
    reopened = LocalIndex.open(tmp_path)
    assert reopened.caches.postings.top({4: 1.0, 5: 0.1}, 5) == \
        [(ids[0], pytest.approx(0.5)), (ids[1], pytest.approx(0.35))]
    assert reopened.caches.postings.posting_count == 3
    assert reopened.store.conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sparse_impact'").fetchone() \
        == (0,), "the weight-ordered index only MaxScore used costs disk and write time"
    reopened.close()
