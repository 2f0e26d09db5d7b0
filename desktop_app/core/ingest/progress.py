"""What an indexing run and its front-end tell each other: progress snapshots and the final report
one way, pause, resume, cancel and "make way" the other.

The meters turn what a run has done so far into those snapshots: bytes read for stage 1 (files
differ too much in size to count them), tokens encoded for stage 2.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

from desktop_app.core.errors import Cancelled
from desktop_app.core.storage.records import PendingChunk


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass
class Progress:
    """A snapshot for progress bars: counts, throughput and an ETA in seconds (None = unknown).

    ``phase`` is ``indexing`` in stage 1 (words; the ETA is reading's) and ``encoding`` in stage 2
    (meaning; ``files_done`` / ``files_total`` then count files with all their vectors, and the ETA
    is the model's); ``words_done`` / ``words_total`` count the files findable by their words.
    """

    phase: str
    files_done: int = 0
    files_total: int = 0
    current: str = ""
    chunks_done: int = 0
    tokens_done: int = 0
    tokens_per_s: float = 0.0
    eta_s: float | None = None
    paused: bool = False
    words_done: int = 0
    words_total: int = 0

    def line(self) -> str:
        """Both stages in words: "keyword: 5,000 of 5,000 files · meaning: 1,234 of 5,000 files, ETA 2 h 10 min"."""
        if self.phase == "encoding":
            words = f"keyword: {self.words_done:,} of {self.words_total:,} files · " if self.words_total else ""
            return f"{words}meaning: {self.files_done:,} of {self.files_total:,} files, {format_eta(self.eta_s)}"
        return f"keyword: {self.files_done:,} of {self.files_total:,} files, {format_eta(self.eta_s)}"


def format_eta(seconds: float | None) -> str:
    """"ETA 2 h 10 min", "ETA 4 min", "ETA 40 s" (or "ETA …" before there is a rate to go by)."""
    if seconds is None:
        return "ETA …"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"ETA {seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"ETA {round(seconds / 60)} min"
    return f"ETA {seconds} s"


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    chunks_added: int = 0
    chunks_encoded: int = 0
    chunks_shared: int = 0  # of those, how many took the vectors of an exact copy instead of being encoded
    pending_chunks: int = 0  # left for a later run: cancelled, paused by a newer change, or a full disk
    tokens: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    offline: list[str] = field(default_factory=list)
    model: str = ""
    device: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def report_done(report: IndexReport) -> int:
    return report.added + report.updated + report.failed


class RunControl:
    """Shared between a run and its UI: pause, resume and cancel take effect between batches."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.newer_work = threading.Event()

    def make_way(self) -> None:
        """Newer work waits (a watcher's changes, a folder just dropped): stage 2 stops after its batch
        and leaves the rest pending for the run that follows, which resumes it after its own words."""
        self.newer_work.set()

    def cancel(self) -> None:
        self.cancelled.set()
        self.running.set()

    def pause(self) -> None:
        if not self.cancelled.is_set():  # a Pause that arrives after Cancel must not hold the run forever
            self.running.clear()

    def resume(self) -> None:
        self.running.set()

    @property
    def paused(self) -> bool:
        return not self.running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise :class:`Cancelled` once cancelled."""
        while not self.running.wait(0.1) and not self.cancelled.is_set():
            pass
        if self.cancelled.is_set():
            raise Cancelled("indexing cancelled")


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


class EncodeMeter:
    """Stage 2's progress: files whose chunks all have vectors, tokens per second and the ETA."""

    def __init__(self, pending_by_file: dict[int, int], pending_tokens: int, indexed_files: int) -> None:
        self.files = pending_by_file
        self.total = max(indexed_files, len(pending_by_file))
        self.done = self.total - len(pending_by_file)
        self.tokens_left = pending_tokens
        self.tokens = self.chunks = 0
        self.started = time.monotonic()

    def encoded(self, batch: list[PendingChunk]) -> None:
        for chunk in batch:
            self.tokens += chunk.tokens
            self.tokens_left -= chunk.tokens
            self.chunks += 1
            left = self.files.get(chunk.file_id)
            if left is not None:
                self.files[chunk.file_id] = left - 1
                if left == 1:
                    self.done += 1

    def snapshot(self, paused: bool) -> Progress:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.tokens / elapsed
        eta = max(self.tokens_left, 0) / rate if self.tokens else None
        return Progress("encoding", self.done, self.total, "", self.chunks, self.tokens, rate, eta, paused,
                        words_done=self.total, words_total=self.total)
