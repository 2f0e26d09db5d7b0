"""Live folder sync: watchdog events become debounced, coalesced batches of touched paths.

The watcher never decides what changed: it only collects the paths events named. Whoever
applies a batch (``Indexer.update``) looks at the disk, so a burst of create/modify/rename/
delete events on one file costs one check, and a missed or reordered event cannot corrupt
the index. A folder whose drive is unplugged is *offline*: it is left in the index as it is
and watched again when it comes back. :class:`LiveSync` turns the batches into update jobs,
the same way for every front-end.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from desktop_app.core.config import Settings
from desktop_app.core.ingest.exclude import GITIGNORE, Excluder
from desktop_app.core.ingest.extract import is_supported
from desktop_app.core.paths import is_within, to_os, to_text

QUIET_S = 1.0
MAX_WAIT_S = 5.0
TICK_S = 0.2
ROOT_CHECK_S = 2.0


def root_online(path: str, recorded_device: int | None) -> bool:
    """False when an indexed folder is gone, or is an empty folder on another device than the
    one it was indexed on: the mount point an unplugged drive leaves behind."""
    try:
        info = os.stat(to_os(path))
    except OSError:
        return False
    if recorded_device is None or info.st_dev == recorded_device or not stat.S_ISDIR(info.st_mode):
        return True
    try:
        with os.scandir(to_os(path)) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def device_of(path: str) -> int | None:
    try:
        return os.stat(to_os(path)).st_dev
    except OSError:
        return None


def owning_root(path: str, roots: list[str]) -> str | None:
    """The deepest indexed folder that holds ``path`` (a stored text path), if any."""
    inside = [root for root in roots if is_within(path, root)]
    return max(inside, key=len) if inside else None


def outermost(paths: set[str]) -> list[str]:
    """Drop every path that lies inside another one of ``paths`` (checking the folder covers it)."""
    kept: list[str] = []
    for path in sorted(paths):
        if not kept or not is_within(path, kept[-1]):
            kept.append(path)
    return kept


@dataclass
class ChangeBatch:
    """Paths to re-check, how many raw events they came from, and roots that came or went."""

    paths: list[str] = field(default_factory=list)
    events: int = 0
    online: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.paths or self.online or self.offline)


class ChangeCollector:
    """Coalesces events per path; a batch is due after ``quiet_s`` without events, or at the
    latest ``max_wait_s`` after the first pending one (so a file written for minutes still shows up)."""

    def __init__(self, quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s, self.max_wait_s, self.clock = quiet_s, max_wait_s, clock
        self.lock = threading.Lock()
        self.paths: set[str] = set()
        self.events = 0
        self.first = self.last = 0.0

    def add(self, *paths: str) -> None:
        now = self.clock()
        with self.lock:
            if not self.paths:
                self.first = now
            self.paths.update(paths)
            self.events += 1
            self.last = now

    def due(self) -> bool:
        now = self.clock()
        with self.lock:
            return bool(self.paths) and (now - self.last >= self.quiet_s or now - self.first >= self.max_wait_s)

    def take(self) -> ChangeBatch:
        with self.lock:
            batch = ChangeBatch(outermost(self.paths), self.events)
            self.paths, self.events = set(), 0
            return batch


class FolderWatcher:
    """Watches indexed folders recursively and hands batches to ``on_batch`` from its own thread.

    Roots are re-checked every few seconds: an unplugged one is unwatched and reported offline,
    one that returns (or was replaced, e.g. moved away and back) is watched again and handed
    over whole, so changes made while it was away are caught up.
    """

    def __init__(self, settings: Settings, on_batch: Callable[[ChangeBatch], None],
                 on_notice: Callable[[str], None] | None = None,
                 quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S,
                 roots_source: Callable[[], dict[str, int | None]] | None = None) -> None:
        """``roots_source``, polled with the root checks, names the folders the index holds now,
        so a folder another process added is watched too (and handed over whole once)."""
        self.settings = settings
        self.roots_source = roots_source
        self.on_batch = on_batch
        self.on_notice = on_notice or (lambda message: None)
        self.collector = ChangeCollector(quiet_s, max_wait_s)
        self.roots: dict[str, int | None] = {}
        self.watches: dict[str, tuple[object, int]] = {}
        self.away: set[str] = set()
        self.excluders: dict[str, Excluder] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.recheck = threading.Event()
        self.observer = None
        self.thread: threading.Thread | None = None
        self.ignored = os.path.abspath(settings.index_dir)

    def start(self, roots: dict[str, int | None]) -> None:
        """Begin watching ``roots`` (stored path -> recorded device), without a catch-up batch."""
        from watchdog.observers import Observer

        self.observer = Observer()
        self.observer.daemon = True
        self.observer.start()
        self.set_roots(roots, catch_up=False)
        self.thread = threading.Thread(target=self.loop, name="folder-watcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(5)
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(5)

    def set_roots(self, roots: dict[str, int | None], catch_up: bool = False) -> None:
        """Watch exactly ``roots`` from now on; new ones are handed over whole when ``catch_up``."""
        with self.lock:
            self.roots = dict(roots)
            for root in list(self.watches):
                if root not in self.roots:
                    self.unwatch(root)
        self.check_roots(report=False, catch_up=catch_up)

    def loop(self) -> None:
        last_check = time.monotonic()
        while not self.stopping.wait(TICK_S):
            if self.recheck.is_set() or time.monotonic() - last_check >= ROOT_CHECK_S:
                self.recheck.clear()
                self.adopt_new_roots()
                self.check_roots(report=True, catch_up=True)
                last_check = time.monotonic()
            if self.collector.due():
                self.on_batch(self.collector.take())

    def add_roots(self, roots: dict[str, int | None]) -> None:
        """Watch these folders too, from the watcher's own thread within a tick (the caller does no
        file-system calls: a window must not stat a dead network share on its GUI thread). Call it
        before a folder's first scan, so changes made during the scan arrive as a batch after it."""
        with self.lock:
            self.roots.update({root: device for root, device in roots.items() if root not in self.roots})
        self.recheck.set()

    def adopt_new_roots(self) -> None:
        """Add the folders that ``roots_source`` names and this watcher does not know yet."""
        if self.roots_source is None:
            return
        try:
            current = self.roots_source()
        except Exception as error:  # noqa: BLE001 - a busy or moved index must not stop watching
            self.on_notice(f"could not read the indexed folders: {error}")
            return
        with self.lock:
            self.roots.update({root: device for root, device in current.items() if root not in self.roots})

    def check_roots(self, report: bool, catch_up: bool) -> None:
        """Watch roots that are online, unwatch those that are not; report transitions."""
        came, went = [], []
        with self.lock:
            for root, device in self.roots.items():
                online = root_online(root, device)
                watched = self.watches.get(root)
                identity = inode_of(root)
                if watched and (not online or watched[1] != identity):
                    self.unwatch(root)
                    watched = None
                if not online:
                    # Reported once, also when it vanished before it was ever watched (a fast first run).
                    if root not in self.away:
                        went.append(root)
                        self.away.add(root)
                    continue
                self.away.discard(root)
                if watched is None and self.watch(root, identity):
                    came.append(root)
        if catch_up:
            for root in came:
                self.collector.add(to_os(root))
        if report and (went or came):
            self.on_batch(ChangeBatch(online=came, offline=went))

    def watch(self, root: str, identity: int) -> bool:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                watcher.seen(event)

        try:
            handle = self.observer.schedule(Handler(), to_os(root), recursive=True)
        except OSError as error:
            self.on_notice(f"cannot watch {root} for changes ({error.strerror or error}); "
                           "it is brought up to date when the app starts")
            return False
        self.watches[root] = (handle, identity)
        return True

    def unwatch(self, root: str) -> None:
        handle, _ = self.watches.pop(root)
        try:
            self.observer.unschedule(handle)
        except (KeyError, OSError):
            pass

    def seen(self, event: object) -> None:
        """Keep the paths an event names when they could hold indexable files."""
        if event.event_type in ("opened", "closed_no_write") or (event.is_directory and event.event_type == "modified"):
            return
        paths = [os.fsdecode(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        wanted = []
        for path in paths:
            root = owning_root(to_text(path), list(self.roots))  # the event's OS path, in the store's form once
            if root is not None and Path(path).name == GITIGNORE and self.settings.honour_gitignore:
                # New rules: forget the cached ones and re-check the folder they govern.
                self.excluders.pop(root, None)
                wanted.append(str(Path(path).parent))
            elif root is not None and self.wants(path, event.is_directory, root):
                wanted.append(path)
        if wanted:
            self.collector.add(*wanted)

    def wants(self, path: str, is_directory: bool, root: str | None = None) -> bool:
        """True for an OS ``path`` inside the indexed folder ``root`` (found here when not given) that
        could hold indexable files and that no exclusion leaves out."""
        if is_within(path, self.ignored):
            return False
        root = root or owning_root(to_text(path), list(self.roots))
        if root is None:
            return False
        excluder = self.excluder(root)
        if path != str(excluder.root) and excluder.excluded_with_folders(Path(path), is_directory):
            return False
        if is_directory:
            return True
        return is_supported(Path(path), self.settings.ocr) and self.settings.wants_suffix(Path(path).suffix)

    def excluder(self, root: str) -> Excluder:
        if root not in self.excluders:
            self.excluders[root] = Excluder(Path(to_os(root)), self.settings.exclude_patterns,
                                            self.settings.honour_gitignore)
        return self.excluders[root]


def inode_of(path: str) -> int:
    try:
        return os.stat(to_os(path)).st_ino
    except OSError:
        return -1


class RootsReader:
    """The indexed folders, read through a connection of its own (it is called from the watcher's thread)."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / "index.sqlite3"
        self.store = None

    def __call__(self) -> dict[str, int | None]:
        from desktop_app.core.storage.store import Store

        if self.store is None:
            self.store = Store(self.path)
        return self.store.root_devices()


class UpdateJobs(Protocol):
    """Where :class:`LiveSync` puts its work: :class:`desktop_app.core.jobs.JobQueue` (named by its shape here,
    as that module imports the indexer, which imports this one)."""

    def submit(self, paths: list[str], wait: bool = True, kind: Literal["update"] = "update", rebuild: bool = False,
               events: int = 0, first: bool = False) -> object: ...


class LiveSync:
    """Keeps an index in step with its folders, the same way for the window, ``desktop-search watch`` and any
    other front-end: each batch the watcher collects becomes an update job in the front-end's job queue (where
    it merges into one still waiting), and folders that go offline or come back are told to ``on_roots``."""

    def __init__(self, settings: Settings, jobs: UpdateJobs, on_roots: Callable[[ChangeBatch], None] | None = None,
                 on_notice: Callable[[str], None] | None = None, wait: bool = True, quiet_s: float = QUIET_S,
                 max_wait_s: float = MAX_WAIT_S) -> None:
        """``on_roots`` and ``on_notice`` are called from the watcher's thread; ``wait`` is the update jobs'
        (wait for the writer lock, or fail at once naming its holder)."""
        self._jobs, self._wait = jobs, wait
        self._on_roots = on_roots or (lambda batch: None)
        self._watcher = FolderWatcher(settings, self._arrived, on_notice, quiet_s, max_wait_s,
                                      roots_source=RootsReader(settings.index_dir))

    def start(self, roots: dict[str, int | None]) -> None:
        """Watch ``roots`` (stored path -> recorded device) and the folders the index gains. Their checks run
        in the calling thread: a window passes none and names them with :meth:`add_roots`."""
        self._watcher.start(roots)

    def add_roots(self, roots: dict[str, int | None]) -> None:
        """Watch these folders too, from the watcher's thread; call it before a folder's first scan so that
        changes made during the scan arrive as an update after it."""
        self._watcher.add_roots(roots)

    def watched(self) -> list[str]:
        """The folders watched now (an offline one is not)."""
        with self._watcher.lock:
            return list(self._watcher.watches)

    def stop(self) -> None:
        self._watcher.stop()

    def _arrived(self, batch: ChangeBatch) -> None:
        if batch.online or batch.offline:
            self._on_roots(batch)
        if batch.paths:
            self._jobs.submit(batch.paths, self._wait, kind="update", events=batch.events)
