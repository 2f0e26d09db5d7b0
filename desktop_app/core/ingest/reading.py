"""The reading stage of a run: files -> text -> chunks, feeding the encoder through a bounded queue.

Text files are read in this thread; the slow formats (PDF, OCR, office archives, mail) go to an
:class:`ExtractionPool` of worker processes, several at a time, so extraction keeps up with a GPU
encoder and a file that crashes its reader costs that file only.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.core import likeness
from desktop_app.core.errors import Cancelled, ExtractionError, OcrNeeded
from desktop_app.core.ingest.chunk import Chunk, Chunker
from desktop_app.core.ingest.extract import HEAVY_SUFFIXES, Extracted, Options, extract
from desktop_app.core.ingest.extract.pool import ExtractionPool

POLL_S = 0.2


@dataclass(frozen=True)
class Candidate:
    """A file found on disk, in both forms: ``path`` as the store keeps it (text), ``os_path`` for the
    file system. Converted once, when the scan finds it; nothing downstream converts again."""

    path: str
    size: int
    mtime_ns: int
    os_path: str


@dataclass
class FileTask:
    """One file on its way through the reading stage: queued as a candidate, then its chunks, or why it failed."""

    file: Candidate
    sha256: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    note: str | None = None
    error: str | None = None
    is_new: bool = True
    unit: str = "page"
    ocr_pages: list[int] = field(default_factory=list)
    ocr_matters: bool = False  # its text depends on the OCR setting (scanned pages, images)
    signature: bytes | None = None  # its text's MinHash, to find its near copies (core/likeness.py)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class FileReader:
    """Reads ``todo`` into ``ready`` (then None); ``activity`` says what the workers are doing now."""

    def __init__(self, chunker: Chunker, options: Options, workers: int,
                 pool: Callable[[Options, int], ExtractionPool] = ExtractionPool) -> None:
        self.chunker, self.options, self.workers, self.make_pool = chunker, options, workers, pool
        self.activity = ""
        self.pool: ExtractionPool | None = None

    def pause(self, paused: bool) -> None:
        """Hold the worker processes between pages (or let them go on)."""
        if self.pool is not None:
            self.pool.pause(paused)

    def run(self, todo: list[FileTask], ready: queue.Queue[FileTask | None], stop: threading.Event) -> None:
        pool: ExtractionPool | None = None
        inflight: dict[Future[Extracted], FileTask] = {}
        try:
            for task in todo:
                if stop.is_set():
                    return
                if Path(task.file.os_path).suffix.lower() not in HEAVY_SUFFIXES:
                    self.read_here(task)
                    ready.put(task)
                    continue
                if pool is None:
                    pool = self.pool = self.make_pool(self.options, self.workers)
                while len(inflight) >= 2 * pool.workers and not stop.is_set():
                    self.collect(pool, inflight, ready)
                if hashed(task):
                    inflight[pool.submit(task.file.os_path)] = task
                else:
                    ready.put(task)
            while inflight and not stop.is_set():
                self.collect(pool, inflight, ready)
        finally:
            if pool is not None:
                pool.close()
            if not stop.is_set():
                ready.put(None)

    def read_here(self, task: FileTask) -> None:
        if hashed(task):
            self.settle(task, lambda: extract(Path(task.file.os_path), self.options))  # no OCR in these formats

    def collect(self, pool: ExtractionPool, inflight: dict[Future[Extracted], FileTask], ready: queue.Queue) -> None:
        """Wait a moment for finished files and hand them on; after a worker crash, read the files
        that were in flight again one at a time, so only the one that crashes it fails."""
        done, _ = wait(list(inflight), timeout=POLL_S, return_when=FIRST_COMPLETED)
        pool.drain()
        self.activity = pool.activity
        broken = []
        for future in done:
            task = inflight.pop(future)
            if isinstance(future.exception(), BrokenProcessPool):
                broken.append(task)
                continue
            self.settle(task, future.result)
            ready.put(task)
        if broken:
            broken.extend(inflight.values())
            inflight.clear()
            pool.restart()
            for task in broken:
                self.settle(task, lambda task=task: pool.read_alone(task.file.os_path))
                ready.put(task)

    def settle(self, task: FileTask, read: Callable[[], Extracted]) -> None:
        """Run ``read`` and put its text, as chunks, or its failure reason on ``task``."""
        try:
            extracted = read()
            task.chunks = self.chunker.chunk(extracted.pages)
            task.note, task.unit, task.ocr_pages = extracted.note, extracted.unit, extracted.ocr_pages
            task.ocr_matters = extracted.ocr_matters
            task.signature = likeness.signature(likeness.head(page.text for page in extracted.pages))
        except OcrNeeded as error:
            task.error, task.ocr_matters = str(error), True
        except ExtractionError as error:
            task.error = str(error)
        except Cancelled:
            task.error = "indexing cancelled while reading"
        except Exception as error:  # noqa: BLE001 - one bad file must never stop a run
            task.error = f"unexpected error while reading ({error.__class__.__name__}: {error})"


def hashed(task: FileTask) -> bool:
    """Fill in the file's checksum; on failure record why and say no."""
    try:
        task.sha256 = sha256_of(task.file.os_path)
        return True
    except FileNotFoundError:
        task.error = "file vanished before it could be read"
    except OSError as error:
        task.error = f"cannot read: {error.strerror or error}"
    return False
