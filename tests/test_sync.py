"""Live folder sync: real watchdog events on a real folder reach search within seconds."""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import pytest

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.ingest.live_sync import ChangeCollector, FolderWatcher, outermost, owning_root, root_online
from desktop_app.core.search.searcher import Searcher

DEADLINE_S = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_collector_coalesces_a_burst_into_one_path_and_waits_for_quiet() -> None:
    clock = FakeClock()
    collector = ChangeCollector(quiet_s=1.0, max_wait_s=5.0, clock=clock)
    for _ in range(30):
        collector.add("/docs/report.txt")
        clock.now += 0.1
    assert not collector.due()
    clock.now += 1.0
    assert collector.due()
    batch = collector.take()
    assert batch.paths == ["/docs/report.txt"] and batch.events == 30
    assert not collector.due() and not collector.take()


def test_collector_flushes_a_file_written_continuously_after_max_wait() -> None:
    clock = FakeClock()
    collector = ChangeCollector(quiet_s=1.0, max_wait_s=5.0, clock=clock)
    while not collector.due():
        collector.add("/docs/growing.log")
        clock.now += 0.5
    assert clock.now - 100.0 == pytest.approx(5.0), "due max_wait_s after the first event despite no quiet"


def test_a_folder_covers_the_paths_inside_it() -> None:
    assert outermost({"/a/b", "/a/b/c.txt", "/a/bc.txt", "/d"}) == ["/a/b", "/a/bc.txt", "/d"]
    roots = ["/home/u", "/home/u/work", "/media/usb"]
    assert owning_root("/home/u/work/x.txt", roots) == "/home/u/work"
    assert owning_root("/home/u/notes.md", roots) == "/home/u"
    assert owning_root("/home/user2/x.txt", roots) is None
    from desktop_app.core.paths import is_within

    assert is_within("/a/b", "/a/b") and is_within("/a/b/c", "/a/b") and not is_within("/a/bc", "/a/b")


def test_an_unplugged_drive_is_offline_but_a_moved_filesystem_with_files_is_not(tmp_path) -> None:
    mount = tmp_path / "usb"
    mount.mkdir()
    device = os.stat(mount).st_dev
    assert root_online(str(mount), device)
    assert not root_online(str(mount), device + 1), "an empty folder on another device is a bare mount point"
    (mount / "a.txt").write_text("x")
    assert root_online(str(mount), device + 1), "a folder with files is online whatever its device id"
    assert not root_online(str(tmp_path / "gone"), device)


@pytest.fixture
def live(settings, encoder, aero_corpus):
    """An indexed folder, a running watcher and a way to apply its batches as the app does."""
    index = LocalIndex.open(settings.index_dir, create=True)
    indexer = Indexer(index, encoder, settings)
    indexer.run([aero_corpus])
    batches: queue.Queue = queue.Queue()
    watcher = FolderWatcher(settings, batches.put, quiet_s=0.3, max_wait_s=2.0)
    watcher.start(index.store.root_devices())
    searcher = Searcher(index, encoder)
    handled = {"events": 0, "batches": 0, "offline": set(), "online": set(), "paths": []}

    def apply_until(done, what: str) -> float:
        """Apply batches until ``done()``; return the seconds it took from now."""
        started = time.monotonic()
        while not done():
            remaining = DEADLINE_S - (time.monotonic() - started)
            if remaining <= 0:
                pytest.fail(f"not reflected within {DEADLINE_S} s: {what}")
            try:
                batch = batches.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            handled["events"] += batch.events
            handled["batches"] += 1
            handled["offline"].update(batch.offline)
            handled["online"].update(batch.online)
            handled["paths"].extend(batch.paths)
            if batch.paths:
                indexer.update(batch.paths)
        return time.monotonic() - started

    yield index, searcher, apply_until, handled, aero_corpus
    watcher.stop()
    index.close()


def found(searcher, query: str) -> list[str]:
    return [Path(hit.path).name for hit in searcher.search(query, k=10, mode="keyword").hits]


def test_create_modify_rename_and_delete_reach_search_within_seconds(live) -> None:
    index, searcher, apply_until, handled, folder = live
    (folder / "hover.txt").write_text("Hovercraft skirts trap a cushion of air under the hull.")
    took = [apply_until(lambda: "hover.txt" in found(searcher, "hovercraft cushion"), "created file")]

    (folder / "hover.txt").write_text("Ornithopters fly by flapping their wings like birds.")
    took.append(apply_until(lambda: found(searcher, "ornithopters flapping")[:1] == ["hover.txt"]
                            and "hover.txt" not in found(searcher, "hovercraft"), "modified file"))

    os.rename(folder / "hover.txt", folder / "flapping.txt")
    took.append(apply_until(lambda: found(searcher, "ornithopters") == ["flapping.txt"], "renamed file"))

    (folder / "flapping.txt").unlink()
    took.append(apply_until(lambda: not found(searcher, "ornithopters"), "deleted file"))

    (folder / "new-folder").mkdir()
    (folder / "new-folder" / "canard.md").write_text("A canard is a small foreplane ahead of the wing.")
    took.append(apply_until(lambda: "canard.md" in found(searcher, "canard foreplane"), "file in a new folder"))

    assert max(took) < 5.0, took
    assert index.store.counts()["files"] == 5 and index.caches.dense.count == index.store.chunk_count()
    print(f"live sync: {handled['events']} events in {handled['batches']} batches, "
          f"reflected in {', '.join(f'{t:.2f}' for t in took)} s")


def test_a_burst_of_writes_to_one_file_is_encoded_once(live, monkeypatch) -> None:
    index, searcher, apply_until, handled, folder = live
    updates: list[list[str]] = []
    original = Indexer.update

    def counting(self, touched, *args, **kwargs):
        updates.append(list(touched))
        return original(self, touched, *args, **kwargs)

    monkeypatch.setattr(Indexer, "update", counting)
    target = folder / "log.txt"
    for line in range(40):
        with target.open("a") as handle:
            handle.write(f"Wind tunnel run {line} measured the drag polar.\n")
    apply_until(lambda: "log.txt" in found(searcher, "drag polar") and updates, "burst")
    assert handled["events"] >= 40 and len(updates) == 1, (handled, updates)


def test_hidden_folders_and_unsupported_files_raise_no_batches(live) -> None:
    index, searcher, apply_until, handled, folder = live
    (folder / ".git").mkdir()
    (folder / ".git" / "notes.txt").write_text("hidden")
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (folder / "seen.txt").write_text("Visible file about spoilers.")
    apply_until(lambda: "seen.txt" in found(searcher, "spoilers"), "visible file")
    assert handled["paths"] == [str(folder / "seen.txt")]


def test_an_unplugged_folder_stays_in_the_index_and_catches_up_when_it_returns(live, settings, encoder) -> None:
    index, searcher, apply_until, handled, folder = live
    away = folder.with_name("unplugged")
    os.rename(folder, away)
    apply_until(lambda: str(folder) in handled["offline"], "folder reported offline")
    report = Indexer(index, encoder, settings).refresh()
    assert report.offline == [str(folder)] and report.removed == 0
    assert "stall.txt" in found(searcher, "stall"), "an offline folder's files stay searchable"
    (away / "stall.txt").write_text("Deep stall traps T-tail aircraft when the wake blankets the elevator.")
    os.rename(away, folder)
    apply_until(lambda: "stall.txt" in found(searcher, "elevator wake blankets"), "changed while away")
    assert str(folder) in handled["online"]
    assert index.store.counts()["files"] == 4


def test_the_index_folder_inside_a_watched_folder_is_ignored(settings, tmp_path) -> None:
    root = tmp_path / "home"
    watcher = FolderWatcher(settings.with_(index_dir=root / "search-index"), lambda batch: None)
    watcher.roots = {str(root): None}
    assert not watcher.wants(str(root / "search-index" / "index.sqlite3-wal"), False)
    assert not watcher.wants(str(root / "search-index" / "notes.txt"), False)
    assert watcher.wants(str(root / "notes.txt"), False) and watcher.wants(str(root / "new-folder"), True)
    assert not watcher.wants(str(root / ".cache" / "notes.txt"), False)
    assert not watcher.wants(str(tmp_path / "elsewhere.txt"), False)


def test_live_sync_turns_changes_into_update_jobs_and_tells_of_folders_going_offline(settings, aero_corpus) -> None:
    from desktop_app.core.engine import Engine
    from desktop_app.core.ingest.live_sync import LiveSync
    from desktop_app.core.jobs import JobListener, JobQueue

    engine = Engine.open(settings, create=True)
    jobs = JobQueue(lambda: engine, "the test's live sync")
    finished: queue.Queue = queue.Queue()
    roots: queue.Queue = queue.Queue()
    jobs.listen(JobListener(finished=finished.put))
    live = LiveSync(settings, jobs, on_roots=roots.put, quiet_s=0.3, max_wait_s=2.0)
    try:
        jobs.submit([str(aero_corpus)])
        assert finished.get(timeout=60).report.added == 4
        live.start(engine.roots())
        assert live.watched() == [str(aero_corpus)]
        (aero_corpus / "canard.md").write_text("A canard is a small foreplane ahead of the wing.")
        update = finished.get(timeout=DEADLINE_S)
        assert update.kind == "update" and update.paths == [str(aero_corpus / "canard.md")] and update.events >= 1
        assert update.report.added == 1 and "canard.md" in [Path(h.path).name for h in engine.search("canard").hits]
        aero_corpus.rename(aero_corpus.with_name("unplugged"))
        assert roots.get(timeout=DEADLINE_S).offline == [str(aero_corpus)] and live.watched() == []
    finally:
        live.stop()
        jobs.close()
        engine.close()
