"""Several processes on one index: every writer catches up first, nothing saved from a stale view.

Two ``Index`` objects on one folder stand for two processes: each has its own SQLite
connections, its own hnswlib copy in memory and its own open of the lock file (flock locks
belong to the open file, so they exclude each other within one process too).
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_folder

from desktop_app.cli import main
from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.errors import IndexLockedError
from desktop_app.core.ingest.indexer import Indexer, remove_paths
from desktop_app.core.search.searcher import Searcher
from desktop_app.core.storage.lock import WriterLock


@pytest.fixture
def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    docs_c = make_folder(tmp_path, "docsC", {"c1.txt": "Wing stall and the angle of attack of an airfoil.",
                                           "c2.txt": "Heat shields protect re-entry vehicles from ablation."})
    docs_d = make_folder(tmp_path, "docsD", {"d1.txt": "Sourdough bread needs a lively starter and a hot oven.",
                                           "d2.txt": "Espresso extraction depends on grind size and pressure."})
    return docs_c, docs_d


def dense_paths(index: LocalIndex, encoder, query: str) -> set[str]:
    hits = Searcher(index, encoder).search(query, k=10, mode="dense").hits
    return {Path(hit.path).name for hit in hits}


def test_a_long_lived_writer_keeps_what_another_process_wrote(settings, encoder, two_folders) -> None:
    docs_c, docs_d = two_folders
    watcher = LocalIndex.open(settings.index_dir, create=True)  # the window or `watch`: stays open
    Indexer(watcher, encoder, settings).run([docs_c])
    terminal = LocalIndex.open(settings.index_dir)  # `desktop-search index docsD` in a terminal
    Indexer(terminal, encoder, settings).run([docs_d])
    terminal.close()
    (docs_c / "c4.txt").write_text("new text about jet noise")
    Indexer(watcher, encoder, settings).run([docs_c])  # the watcher writes again
    assert {"d1.txt", "d2.txt"} <= dense_paths(watcher, encoder, "bread oven espresso")
    watcher.close()

    fresh = LocalIndex.open(settings.index_dir)
    assert {"d1.txt", "d2.txt"} <= dense_paths(fresh, encoder, "bread oven espresso")
    assert fresh.caches.dense.count == fresh.store.chunk_count() == 5
    fresh.close()


def test_a_reader_sees_other_writers_changes_and_never_saves_the_cache(settings, encoder, two_folders) -> None:
    docs_c, docs_d = two_folders
    writer = LocalIndex.open(settings.index_dir, create=True)
    Indexer(writer, encoder, settings).run([docs_c])
    reader = LocalIndex.open(settings.index_dir)
    saved = (settings.index_dir / "dense.hnsw").stat().st_mtime_ns
    Indexer(writer, encoder, settings).run([docs_d])
    remove_paths(writer, [docs_c])
    after_writes = (settings.index_dir / "dense.hnsw").stat().st_mtime_ns
    assert after_writes != saved
    assert dense_paths(reader, encoder, "bread oven espresso") == {"d1.txt", "d2.txt"}
    assert reader.caches.dense.count == 2
    reader.close()
    assert (settings.index_dir / "dense.hnsw").stat().st_mtime_ns == after_writes, "a reader wrote the cache"
    writer.close()


def test_status_counts_the_vectors_search_has(cli_env, two_folders, settings, encoder) -> None:
    docs_c, docs_d = two_folders
    out = io.StringIO()
    assert main(["index", str(docs_c)], out=out, err=io.StringIO()) == 0
    watcher = LocalIndex.open(cli_env)
    assert main(["index", str(docs_d)], out=out, err=io.StringIO()) == 0
    (docs_c / "c4.txt").write_text("new text about jet noise")
    Indexer(watcher, encoder, settings.with_(index_dir=cli_env)).run([docs_c])
    watcher.close()
    out = io.StringIO()
    assert main(["status", "--json"], out=out, err=io.StringIO()) == 0
    status = json.loads(out.getvalue())
    assert status["vectors"] == status["chunks"] == 5


def test_a_second_writer_waits_for_the_lock_and_says_who_holds_it(tmp_path: Path) -> None:
    holder = WriterLock(tmp_path, purpose="watch").acquire()
    messages: list[str] = []
    got = threading.Event()

    def second() -> None:
        with WriterLock(tmp_path, purpose="index", on_wait=messages.append):
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert not got.is_set() and messages and "watch" in messages[0] and "pid" in messages[0]
    holder.release()
    thread.join(5)
    assert got.is_set()


def test_no_wait_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    with WriterLock(tmp_path, purpose="watch"):
        started = time.monotonic()
        with pytest.raises(IndexLockedError, match="watch"):
            WriterLock(tmp_path, purpose="index", wait=False).acquire()
        assert time.monotonic() - started < 1


def test_a_busy_writer_lets_a_waiting_one_in_between_its_batches(tmp_path: Path) -> None:
    """The watcher re-takes the lock for batch after batch; a waiting terminal gets the next turn."""
    stop = threading.Event()
    turns: list[str] = []

    def busy() -> None:
        while not stop.is_set():
            with WriterLock(tmp_path, purpose="watch"):
                turns.append("watch")
                time.sleep(0.05)

    watcher = threading.Thread(target=busy)
    watcher.start()
    time.sleep(0.2)
    started = time.monotonic()
    with WriterLock(tmp_path, purpose="index"):
        waited = time.monotonic() - started
    stop.set()
    watcher.join()
    assert waited < 1.0, f"the waiting writer waited {waited:.2f} s behind 50 ms batches"


def test_compaction_never_empties_a_live_index(settings, encoder, tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "many", {f"n{i}.txt": f"note {i} about wing flutter and damping" for i in range(30)})
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([folder])
    probe = encoder.encode(["wing flutter"])[0].dense
    failures: list[str] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                if not index.caches.dense.query(probe, 5):
                    failures.append("empty")
            except Exception as error:  # noqa: BLE001 - any failure fails the test
                failures.append(repr(error))

    thread = threading.Thread(target=search)
    thread.start()
    for _ in range(5):
        index.caches.refill_dense()
    stop.set()
    thread.join()
    assert not failures, failures[:3]
    assert index.caches.dense.count == 30
    index.close()


def test_search_skips_chunks_deleted_by_another_process_between_query_and_lookup(settings, encoder,
                                                                                two_folders) -> None:
    docs_c, docs_d = two_folders
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([docs_c, docs_d])
    searcher = Searcher(index, encoder)
    other = LocalIndex.open(settings.index_dir)
    real_rows = searcher.store.chunk_rows

    def rows_after_a_removal(ids: list[int]):
        remove_paths(other, [docs_d])  # another process deletes between candidates and row lookup
        return real_rows(ids)

    searcher.store.chunk_rows = rows_after_a_removal
    result = searcher.search("bread oven espresso", k=4, colbert=True)
    assert all("docsD" not in hit.path for hit in result.hits)
    other.close()
    index.close()


def test_hnswlib_holds_only_unit_vectors_of_live_chunks(settings, encoder, two_folders) -> None:
    docs_c, _ = two_folders
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([docs_c])
    live = set(index.store.all_chunk_ids().tolist())
    found = {label for label, _ in index.caches.dense.query(np.ones(index.caches.dense.dim, dtype=np.float32), 10)}
    assert found == live
    index.close()


def test_watch_follows_a_folder_that_another_process_indexed(cli_env, two_folders) -> None:
    docs_c, docs_d = two_folders
    assert main(["index", str(docs_c)], out=io.StringIO(), err=io.StringIO()) == 0
    out, err = io.StringIO(), io.StringIO()
    watch = threading.Thread(target=main, args=(["watch", "--json", "--stop-after", "15"], out, err))
    watch.start()
    deadline = time.monotonic() + 60
    while "caught up" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert main(["index", str(docs_d)], out=io.StringIO(), err=io.StringIO()) == 0  # a terminal, beside `watch`
    time.sleep(3)  # the watcher's next look at the index's folders
    (docs_d / "d3.txt").write_text("Croissants need cold butter and patience.")
    watch.join()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(line.get("paths") == [str(docs_d / "d3.txt")] and line.get("added") == 1 for line in lines), (
        out.getvalue(), err.getvalue())


def test_a_folder_added_to_a_watcher_is_watched_before_its_scan_returns(settings, tmp_path: Path) -> None:
    from desktop_app.core.ingest.live_sync import FolderWatcher
    from desktop_app.core.paths import is_within

    folder = make_folder(tmp_path, "fresh", {"a.txt": "first"})
    batches: list = []
    watcher = FolderWatcher(settings, batches.append, quiet_s=0.3, max_wait_s=2)
    watcher.start({})
    try:
        watcher.add_roots({str(folder): None})
        time.sleep(0.6)  # within a few ticks the folder is watched, however long a first scan would take
        (folder / "b.txt").write_text("written while the first scan runs")
        deadline = time.monotonic() + 10
        while not any(is_within(str(folder / "b.txt"), path) for b in batches for path in b.paths):
            assert time.monotonic() < deadline, batches
            time.sleep(0.1)
    finally:
        watcher.stop()


def test_a_reader_opened_on_an_empty_index_finds_what_another_process_indexes(settings, encoder, two_folders) -> None:
    docs_c, _ = two_folders
    reader = LocalIndex.open(settings.index_dir, create=True)  # the window, before any folder was added
    searcher = Searcher(reader, encoder)
    assert searcher.search("wing stall", k=3).hits == []
    writer = LocalIndex.open(settings.index_dir)
    Indexer(writer, encoder, settings).run([docs_c])
    writer.close()
    assert "c1.txt" in {Path(h.path).name for h in searcher.search("wing stall", k=3, mode="dense").hits}
    reader.close()
