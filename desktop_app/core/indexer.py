"""scan -> diff -> extract -> chunk -> encode -> store, with progress, pause and cancel.

Extraction and chunking run in a producer thread feeding a bounded queue, so the encoder
(which releases the GIL inside torch) is never idle waiting for a PDF parser. Files are
committed in groups, each group in one transaction: a crash never leaves half a file.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from desktop_app.core.chunk import Chunker
from desktop_app.core.config import Settings
from desktop_app.core.encoder import Encoder
from desktop_app.core.errors import Cancelled, StorageError, UsageError
from desktop_app.core.exclude import Excluder
from desktop_app.core.extract import OcrLimits, Options, is_supported
from desktop_app.core.index import Index
from desktop_app.core.paths import to_os, to_text
from desktop_app.core.reading import Candidate, FileReader, Job, sha256_of
from desktop_app.core.store import NewChunk
from desktop_app.core.sync import device_of, outermost, owning_root, root_online

ENCODE_BATCH_CHUNKS = 64
QUEUE_FILES = 16
SAVE_EVERY_SECONDS = 60.0
GIL_TURN_S = 0.001
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass
class Progress:
    """A snapshot for progress bars: counts, throughput and an ETA in seconds (None = unknown)."""

    phase: str
    files_done: int = 0
    files_total: int = 0
    current: str = ""
    chunks_done: int = 0
    tokens_done: int = 0
    tokens_per_s: float = 0.0
    eta_s: float | None = None
    paused: bool = False


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    chunks_added: int = 0
    tokens: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    offline: list[str] = field(default_factory=list)
    model: str = ""
    device: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class RunControl:
    """Shared between a run and its UI: pause, resume and cancel take effect between batches."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.running = threading.Event()
        self.running.set()

    def cancel(self) -> None:
        self.cancelled.set()
        self.running.set()

    def pause(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    @property
    def paused(self) -> bool:
        return not self.running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise :class:`Cancelled` once cancelled."""
        while not self.running.wait(0.1):
            pass
        if self.cancelled.is_set():
            raise Cancelled("indexing cancelled")


def scan(root: Path, settings: Settings, base: Path | None = None,
         excluded: list[tuple[str, str]] | None = None) -> tuple[list[Candidate], list[Failure]]:
    """Supported files under ``root`` (or ``root`` itself) that the exclusions let through.

    ``base`` is the indexed folder ``root`` lies in (``root`` itself by default): exclusion
    patterns and ``.gitignore`` files apply relative to it, and a ``root`` inside an excluded
    folder finds nothing (so a watcher's update of an ignored file removes it, never adds it).
    ``excluded`` (when given) receives (path, rule) for each file or folder left out, a folder
    once for all it holds, so the file list can say what was excluded and why.
    """
    found: list[Candidate] = []
    problems: list[Failure] = []
    if not os.path.lexists(root):
        return found, problems
    excluder = Excluder(base or root, settings.exclude_patterns, settings.honour_gitignore)
    if base is not None and excluder.excluded_with_folders(root, root.is_dir()):
        return found, problems
    if root.is_file():
        paths = [root]
    else:
        paths = []

        def report(error: OSError) -> None:
            problems.append(Failure(to_text(str(error.filename)), f"cannot list folder: {error.strerror}"))

        def kept(path: Path, is_dir: bool) -> bool:
            rule = excluder.why(path, is_dir)
            if rule is not None and excluded is not None:
                excluded.append((to_text(str(path)) + (os.sep if is_dir else ""), rule))
            return rule is None

        for folder, dirs, files in os.walk(root, onerror=report):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if kept(here / d, True))
            paths.extend(here / name for name in sorted(files) if kept(here / name, False))
    for path in paths:
        if not is_supported(path, settings.ocr) or not settings.wants_suffix(path.suffix):
            continue
        try:
            stat = path.stat()
        except OSError as error:
            reason = "broken link: its target is missing" if path.is_symlink() else f"cannot read: {error.strerror}"
            problems.append(Failure(to_text(str(path)), reason))
            continue
        if path.is_file():
            found.append(Candidate(to_text(str(path)), stat.st_size, stat.st_mtime_ns, str(path)))
    return found, problems


class Indexer:
    """Brings an index up to date with folders on disk."""

    def __init__(self, index: Index, encoder: Encoder, settings: Settings, purpose: str = "indexing",
                 wait: bool = True) -> None:
        """``purpose`` tells other processes waiting for the writer lock what holds it; ``wait=False``
        fails at once when another process is writing."""
        self.index = index
        self.purpose = purpose
        self.wait = wait
        self.store = index.store
        self.encoder = encoder
        self.settings = settings
        self.checkpoint = RunControl().checkpoint
        self.max_tokens = min(settings.chunk_tokens, encoder.max_length - 2)
        key = {
            "model": encoder.spec.fingerprint(),
            "chunk_tokens": self.max_tokens,
            "overlap": settings.chunk_overlap,
            "max_chars": settings.max_chars_per_file,
        }
        self.settings_key = json.dumps(key, sort_keys=True)
        # Files whose text came from OCR, or needed it, are read again when OCR is turned on or off.
        self.ocr_key = json.dumps({**key, "ocr": settings.ocr}, sort_keys=True)

    def run(
        self,
        paths: list[Path],
        progress: Callable[[Progress], None] | None = None,
        control: RunControl | None = None,
        rebuild: bool = False,
    ) -> IndexReport:
        """Index ``paths`` (folders or files) incrementally and report what changed."""
        roots = [normalise_root(p) for p in paths]

        def plan(report: IndexReport) -> list[Job]:
            devices = self.store.root_devices()
            return [job for root in roots if self.reachable(to_text(str(root)), devices, report)
                    for job in self.diff(root, report)]

        return self.execute(plan, progress, control, rebuild)

    def refresh(self, progress: Callable[[Progress], None] | None = None,
                control: RunControl | None = None) -> IndexReport:
        """Catch up with every indexed folder that is reachable; unplugged ones stay as they are."""

        def plan(report: IndexReport) -> list[Job]:
            devices = self.store.root_devices()
            return [job for root in devices if self.reachable(root, devices, report)
                    for job in self.diff(Path(to_os(root)), report)]

        return self.execute(plan, progress, control)

    def update(self, touched: list[str], progress: Callable[[Progress], None] | None = None,
               control: RunControl | None = None, force: bool = False) -> IndexReport:
        """Re-check only the paths a watcher saw change: files or folders, present or gone.

        A path outside every indexed folder is ignored; one in an offline folder waits for it.
        """

        def plan(report: IndexReport) -> list[Job]:
            devices = self.store.root_devices()
            todo = []
            for path in outermost({to_text(p) for p in touched}):
                root = owning_root(path, list(devices))
                if root is not None and self.reachable(root, devices, report):
                    todo.extend(self.diff(Path(to_os(path)), report, register=False, base=Path(to_os(root)),
                                          force=force))
            return todo

        return self.execute(plan, progress, control)

    @staticmethod
    def reachable(root: str, devices: dict[str, int | None], report: IndexReport) -> bool:
        """False, and the folder noted offline, for an indexed folder that is unplugged or gone."""
        if root in devices and not root_online(root, devices[root]):
            if root not in report.offline:
                report.offline.append(root)
            return False
        return True

    def execute(self, plan: Callable[[IndexReport], list[Job]], progress: Callable[[Progress], None] | None,
                control: RunControl | None, rebuild: bool = False) -> IndexReport:
        """Under the writer lock: ``plan`` diffs disk against the store, then the jobs are encoded."""
        notify = progress or (lambda p: None)
        control = control or RunControl()
        self.checkpoint = control.checkpoint
        report = IndexReport(model=self.encoder.spec.display_name)
        started = time.monotonic()
        try:
            with self.index.writer(self.purpose, self.wait, lambda text: notify(Progress("waiting", current=text)),
                                   control.cancelled.is_set):
                self.write(plan, report, notify, control, rebuild)
        except Cancelled:
            report.cancelled = True
        report.seconds = round(time.monotonic() - started, 3)
        notify(Progress("done", report_done(report), report_done(report), tokens_done=report.tokens))
        return report

    def write(self, plan: Callable[[IndexReport], list[Job]], report: IndexReport,
              notify: Callable[[Progress], None], control: RunControl, rebuild: bool) -> None:
        """The part of a run that holds the writer lock."""
        self.index.bind_model(self.encoder.spec, rebuild=rebuild)
        notify(Progress("scanning"))
        todo = plan(report)
        try:
            self.process(todo, report, notify, control)
        except Cancelled:
            report.cancelled = True
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as error:
            raise StorageError(storage_message(error, self.index.folder)) from None
        finally:
            report.device = self.encoder.describe() if self.encoder.loaded else ""
            if self.index.dirty:
                notify(Progress("saving", report_done(report), len(todo) + report_done(report)))
                self.index.save_vectors()

    def diff(self, root: Path, report: IndexReport, register: bool = True, base: Path | None = None,
             force: bool = False) -> list[Job]:
        """Compare disk with the store under ``root``; apply removals, return files to encode.

        ``register`` records ``root`` as an indexed folder (with its device, to tell an
        unplugged drive later); a watcher's update of a path inside one (``base``) does not.
        Files that the exclusions now leave out count as gone, so changing the patterns removes
        them on the next run and adds newly included ones, re-encoding nothing else.
        """
        root_text = to_text(str(root))  # the store's form of this OS path, once
        if register:
            with self.store.transaction():
                self.store.add_root(root_text, device_of(str(root)))
        left_out: list[tuple[str, str]] = []
        found, problems = scan(root, self.settings, base, left_out)
        with self.store.transaction():
            self.store.set_excluded(root_text, left_out)
        report.failures.extend(problems)
        report.failed += len(problems)
        known = self.store.files_under(root_text)
        todo = []
        for candidate in found:
            record = known.pop(candidate.path, None)
            if record is None:
                todo.append(Job(candidate))
                continue
            # force: re-encode it anyway
            same_settings = record.settings in (self.settings_key, self.ocr_key) and not force
            if same_settings and (record.size, record.mtime_ns) == (candidate.size, candidate.mtime_ns):
                report.unchanged += 1
                continue
            if same_settings and record.status == "indexed" and safe_sha256(candidate.os_path) == record.sha256:
                with self.store.transaction():
                    self.store.touch_file(record.id, candidate.size, candidate.mtime_ns)
                report.unchanged += 1
                continue
            todo.append(Job(candidate, is_new=False))
        unreadable = {f.path for f in problems}
        gone = [record for path, record in known.items() if path not in unreadable]
        if gone:
            removed_chunks = []
            with self.store.transaction():
                for record in gone:
                    removed_chunks.extend(self.store.remove_file(record.id))
            self.index.delete_chunks(removed_chunks)
            report.removed += len(gone)
        return todo

    def process(self, todo: list[Job], report: IndexReport, notify: Callable[[Progress], None],
                control: RunControl) -> None:
        """Read files in a producer thread (and its worker processes); encode + commit in this one."""
        if not todo:
            return
        chunker = Chunker(self.encoder.spec.path / "tokenizer.json", self.max_tokens, self.settings.chunk_overlap)
        reader = FileReader(chunker, self.extract_options(), self.settings.extract_workers)
        ready: queue.Queue[Job | None] = queue.Queue(maxsize=QUEUE_FILES)
        stop = threading.Event()
        producer = threading.Thread(target=reader.run, args=(todo, ready, stop), name="extract", daemon=True)
        producer.start()
        meter = Meter(total_files=len(todo), total_bytes=sum(j.file.size for j in todo))
        last_save = time.monotonic()
        pending: list[Job] = []
        try:
            while True:
                try:
                    job = ready.get(timeout=PROGRESS_EVERY_S)
                except queue.Empty:  # a long read (OCR of a scan): say what the workers are doing
                    notify(meter.snapshot(reader.activity, control.paused))
                    wait_while_paused(control, reader)
                    continue
                if job is not None:
                    pending.append(job)
                    notify(meter.snapshot(job.file.path, control.paused))
                if pending and (job is None or sum(len(j.chunks) for j in pending) >= ENCODE_BATCH_CHUNKS):
                    wait_while_paused(control, reader)
                    self.commit(pending, report, meter)
                    notify(meter.snapshot(pending[-1].file.path, control.paused))
                    pending = []
                    if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                        self.index.save_vectors()
                        last_save = time.monotonic()
                if job is None:
                    break
        finally:
            stop.set()
            while producer.is_alive():
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass

    def extract_options(self) -> Options:
        settings = self.settings
        return Options(settings.max_chars_per_file,
                       OcrLimits(settings.ocr, settings.ocr_max_pages, settings.ocr_max_seconds))

    def key_of(self, job: Job) -> str:
        return self.ocr_key if job.ocr_matters else self.settings_key

    def commit(self, jobs: list[Job], report: IndexReport, meter: Meter) -> None:
        """Encode the chunks of ``jobs`` together, then store every file in one transaction."""
        texts = [chunk.text for job in jobs for chunk in job.chunks]
        encodings = iter(self.encoder.encode(texts, max_length=self.max_tokens + 2, checkpoint=self.checkpoint,
                                             colbert=self.index.keeps_colbert))
        removed: list[int] = []
        added: list[tuple[int, NewChunk]] = []
        with self.store.transaction():
            for job in jobs:
                file = job.file
                if job.error:
                    removed.extend(self.store.record_failure(
                        file.path, file.size, file.mtime_ns, self.key_of(job), job.error))
                    continue
                new_chunks = [
                    NewChunk(c.page, c.start, c.end, c.tokens, c.text, e.dense, e.sparse, e.colbert)
                    for c, e in zip(job.chunks, encodings)
                ]
                old_ids, new_ids = self.store.replace_file(
                    file.path, file.size, file.mtime_ns, job.sha256, self.key_of(job), new_chunks, job.note,
                    job.unit, job.ocr_pages)
                removed.extend(old_ids)
                added.extend(zip(new_ids, new_chunks))
        self.index.delete_chunks(removed)
        self.index.add_chunks([cid for cid, _ in added], [c for _, c in added])
        for job in jobs:
            if job.error:
                report.failed += 1
                report.failures.append(Failure(job.file.path, job.error))
            elif job.is_new:
                report.added += 1
            else:
                report.updated += 1
            meter.file_done(job.file.size)
        tokens = sum(c.tokens for job in jobs for c in job.chunks)
        report.chunks_added += len(added)
        report.tokens += tokens
        meter.chunks_done(len(added), tokens)


class Meter:
    """Throughput and ETA from bytes done so far (files differ too much in size to count them)."""

    def __init__(self, total_files: int, total_bytes: int) -> None:
        self.total_files, self.total_bytes = total_files, max(total_bytes, 1)
        self.files = self.bytes = self.chunks = self.tokens = 0
        self.started = time.monotonic()

    def file_done(self, size: int) -> None:
        self.files += 1
        self.bytes += size

    def chunks_done(self, chunks: int, tokens: int) -> None:
        self.chunks += chunks
        self.tokens += tokens

    def snapshot(self, current: str, paused: bool) -> Progress:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        eta = elapsed * (self.total_bytes - self.bytes) / self.bytes if self.bytes else None
        return Progress("indexing", self.files, self.total_files, current, self.chunks, self.tokens,
                        self.tokens / elapsed, eta, paused)


def wait_while_paused(control: RunControl, reader: FileReader) -> None:
    """Block while the run is paused, the reading workers too; raise Cancelled once cancelled."""
    reader.pause(control.paused)
    control.checkpoint()
    reader.pause(False)


def storage_message(error: BaseException, folder: Path) -> str:
    """Why the index could not be written, in words, and that nothing committed was lost."""
    text = str(error)
    if "full" in text or getattr(error, "errno", None) == errno.ENOSPC:
        reason = "the disk is full"
    elif "readonly" in text or "read-only" in text or getattr(error, "errno", None) == errno.EROFS:
        reason = "the index folder is read-only"
    else:
        reason = f"the index could not be written ({text})"
    return (f"{reason} at {folder}; indexing stopped and the index kept everything committed before "
            "this batch: free some space (or fix the folder), then index again to finish")


def share_the_interpreter_finely() -> None:
    """For a process that searches while it indexes (the window): Python hands the GIL over
    every 5 ms by default, so a search that needs it at each step queues behind the extraction
    and commit threads; measured, its worst case fell from ~110 ms to ~80 ms with 1 ms turns."""
    import sys

    sys.setswitchinterval(GIL_TURN_S)


def safe_sha256(path: str) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None


def report_done(report: IndexReport) -> int:
    return report.added + report.updated + report.failed


def normalise_root(path: Path) -> Path:
    """Absolute path without symlink resolution; a path that does not exist is a usage error."""
    full = absolute(path)
    if not full.exists():
        raise UsageError(f"path does not exist: {path}")
    return full


def absolute(path: Path) -> Path:
    """``~`` expanded and made absolute, symlinks kept as the user named them."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def remove_paths(index: Index, paths: list[Path], wait: bool = True,
                 on_wait: Callable[[str], None] | None = None) -> int:
    """Drop folders or files (and their chunks and vectors) from the index; return files removed."""
    targets = [to_text(str(absolute(p))) for p in paths]
    removed_files = 0
    removed_chunks: list[int] = []
    with index.writer("removing folders", wait, on_wait):
        with index.store.transaction():
            for target in targets:
                records = index.store.files_under(target)
                for record in records.values():
                    removed_chunks.extend(index.store.remove_file(record.id))
                removed_files += len(records)
                index.store.remove_root(target)
                index.store.set_excluded(target, [])
        if index.bound:
            index.delete_chunks(removed_chunks)
    return removed_files
