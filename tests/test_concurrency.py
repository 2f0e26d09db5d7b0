"""Searching while indexing, as the window does: whole files only, and no long waits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.search.searcher import Searcher
from desktop_app.core.storage.folder import DB_NAME
from desktop_app.core.storage.store import Store

TORN_FILES = """
SELECT f.path, f.chunks, count(c.id) FROM files f LEFT JOIN chunks c ON c.file_id = f.id
WHERE f.status = 'indexed' GROUP BY f.id HAVING f.chunks != count(c.id)
UNION ALL
SELECT 'encoded chunk without postings', c.id, 0 FROM chunks c
WHERE length(c.dense) > 0 AND NOT EXISTS (SELECT 1 FROM sparse s WHERE s.chunk_id = c.id)
UNION ALL
SELECT 'chunk neither encoded nor pending', c.id, 0 FROM chunks c
WHERE length(c.dense) = 0 AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.chunk_id = c.id)
"""


def test_searches_during_indexing_see_whole_files_and_wait_little(settings, encoder, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    for number in range(40):
        sentences = [f"Report {number} section {s}: wind tunnel test of airfoil {number} at Mach 0.{s}."
                     for s in range(12)]
        (folder / f"report{number:03d}.txt").write_text(" ".join(sentences))
    small = settings.with_(chunk_tokens=48, chunk_overlap=8)
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, small).run([folder / "report000.txt"])
    reader = Store(Path(index.folder) / DB_NAME)
    searcher = Searcher(index, encoder, store=Store(Path(index.folder) / DB_NAME))
    run = threading.Thread(target=Indexer(index, encoder, small).run, args=([folder],))
    run.start()
    checks, slowest_vector_query = 0, 0.0
    probe = encoder.encode(["airfoil"])[0].dense
    while run.is_alive():
        reader.conn.execute("BEGIN")
        torn = reader.conn.execute(TORN_FILES).fetchall()
        reader.conn.execute("COMMIT")
        assert not torn, torn
        assert searcher.search("airfoil wind tunnel Mach", k=5).hits
        started = time.perf_counter()
        index.caches.dense.query(probe, 10)
        slowest_vector_query = max(slowest_vector_query, time.perf_counter() - started)
        checks += 1
    run.join()
    assert checks >= 5 and slowest_vector_query < 0.1, (checks, slowest_vector_query)
    assert index.store.counts()["files"] == 40 and index.caches.dense.count == index.store.chunk_count() > 80
    reader.close()
    searcher.store.close()
    index.close()


def test_searches_go_on_while_a_save_waits_for_the_disk(tmp_path: Path, monkeypatch) -> None:
    """A save ends with an fsync, which a busy disk makes last (0.24 s seen in CI; seconds for a large
    cache): each cache's searches must not wait for it. They did: every save held the search lock."""
    import os

    import numpy as np

    from desktop_app.core.backends.local.dense import DenseIndex
    from desktop_app.core.backends.local.keywords import KeywordIndex
    from desktop_app.core.backends.local.postings import PostingsIndex

    disk_s = 0.6
    vectors = np.random.default_rng(3).standard_normal((50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = DenseIndex(tmp_path / "dense.hnsw", 8)
    dense.load_or_create()
    dense.add(list(range(1, 51)), vectors)
    sparse = PostingsIndex(tmp_path / "sparse.npz")
    sparse.add((chunk, chunk % 7, 0.5) for chunk in range(1, 51))
    keywords = KeywordIndex(tmp_path / "keywords.npz")
    keywords.add((chunk, ["wind", "tunnel", f"run{chunk}"]) for chunk in range(1, 51))
    searches = {"dense": (dense, lambda: dense.query(vectors[0], 5)),
                "sparse": (sparse, lambda: sparse.top({3: 1.0}, 5)),
                "keywords": (keywords, lambda: keywords.bm25_top(["tunnel"], 5))}
    # Made while a save waits for the disk: the save has taken what it writes, so the cache stays unsaved.
    changes = {"dense": lambda: dense.add([51], vectors[:1]),
               "sparse": lambda: sparse.add([(51, 3, 0.9)]),
               "keywords": lambda: keywords.add([(51, ["tunnel", "tunnel"])])}
    expected = {name: search() for name, (_, search) in searches.items()}
    syncing, real_fsync = threading.Event(), os.fsync

    def slow_disk(descriptor: int) -> None:
        syncing.set()
        time.sleep(disk_s)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", slow_disk)
    for name, (cache, search) in searches.items():
        syncing.clear()
        saving = threading.Thread(target=cache.save)
        saving.start()
        assert syncing.wait(10), name
        started = time.perf_counter()
        found = search()
        waited = time.perf_counter() - started
        changes[name]()
        saving.join()
        assert waited < disk_s / 3 and found == expected[name], (name, waited)
        assert cache.dirty, f"{name}: a change made during the save was marked saved"
        cache.save()
        assert not cache.dirty, name
    reloaded = DenseIndex(tmp_path / "dense.hnsw", 8)
    assert reloaded.load_or_create() and reloaded.query(vectors[0], 5) == dense.query(vectors[0], 5)
    again = PostingsIndex(tmp_path / "sparse.npz")
    assert again.load() is not None and again.top({3: 1.0}, 5) == sparse.top({3: 1.0}, 5)
    assert again.top({3: 1.0}, 1)[0][0] == 51
    words = KeywordIndex(tmp_path / "keywords.npz")
    assert words.load() and words.bm25_top(["tunnel"], 5) == keywords.bm25_top(["tunnel"], 5)
    assert words.bm25_top(["tunnel"], 1)[0][0] == 51
