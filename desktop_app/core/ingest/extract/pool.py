"""Worker processes that read the slow formats (PDF, OCR, office archives, mail) in parallel.

PDFium is not thread-safe and OCR is CPU-bound, so reading happens in other processes; the
indexing process only chunks and encodes. A worker that dies (a PDF that crashes PDFium) costs
one file, never the run: the pool is restarted and the files it held are read again one by one,
and the one that kills a worker again fails with that reason.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import multiprocessing.synchronize
import os
import queue
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from desktop_app.core.errors import Cancelled, ExtractionError
from desktop_app.core.ingest.extract import Extracted, OcrReader, Options, extract

FILES_PER_WORKER = 200  # a fresh process now and then returns what PDFium and onnxruntime hold on to
CRASH_REASON = "the reader crashed on this file (damaged, or made to crash PDF readers)"


def default_workers() -> int:
    """One process per spare core, at most four: the encoder needs the rest."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class ExtractionPool:
    """``submit`` a path, get a future of its :class:`Extracted`; ``activity`` tells what the workers do."""

    def __init__(self, options: Options, workers: int = 0) -> None:
        self.options = options
        self.workers = workers or default_workers()
        self.context = multiprocessing.get_context("spawn")
        self.messages = self.context.Queue()
        self.cancelled = self.context.Event()
        self.running = self.context.Event()  # cleared while the run is paused: OCR waits between pages
        self.running.set()
        self.executor = self._start()
        self.activity = ""

    def _start(self) -> ProcessPoolExecutor:
        threads = max(1, (os.cpu_count() or 2) // self.workers)
        return ProcessPoolExecutor(self.workers, mp_context=self.context, initializer=_start_worker,
                                   initargs=(self.messages, self.cancelled, self.running, threads),
                                   max_tasks_per_child=FILES_PER_WORKER)

    def submit(self, path: str) -> Future[Extracted]:
        return self.executor.submit(_read, path, self.options)

    def restart(self) -> None:
        """A worker died: the executor is broken for good, so start a new one."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._start()

    def read_alone(self, path: str) -> Extracted:
        """Read one file with no other in flight, so a crash is this file's; raises its error."""
        try:
            return self.submit(path).result()
        except BrokenProcessPool:
            self.restart()
            raise ExtractionError(CRASH_REASON) from None

    def pause(self, paused: bool) -> None:
        if paused:
            self.running.clear()
        else:
            self.running.set()

    def drain(self) -> None:
        """Take the workers' progress lines (keeping the newest) and pass their log records on."""
        while True:
            try:
                item = self.messages.get_nowait()
            except (queue.Empty, OSError, EOFError):
                return
            if isinstance(item, logging.LogRecord):
                logging.getLogger(item.name).handle(item)
            else:
                self.activity = item

    def close(self) -> None:
        """Stop the workers; a cancelled run stops them between pages instead of after the file."""
        self.cancelled.set()
        self.running.set()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.messages.close()
        self.messages.join_thread()


class _Worker:
    """What one worker process keeps between files: its OCR engine and the channel to the indexer."""

    def __init__(self, messages: multiprocessing.Queue, cancelled: multiprocessing.synchronize.Event,
                 running: multiprocessing.synchronize.Event, threads: int) -> None:
        self.messages, self.cancelled, self.running = messages, cancelled, running
        self.reader = OcrReader(threads)

    def progress(self, path: str, text: str) -> None:
        """Between pages: say where we are, wait while paused, stop when cancelled."""
        self.running.wait()
        if self.cancelled.is_set():
            raise Cancelled("indexing cancelled")
        self.messages.put(f"{Path(path).name}: {text}")


_worker: _Worker | None = None  # one per worker process, set by its initializer


def _start_worker(messages: multiprocessing.Queue, cancelled: multiprocessing.synchronize.Event,
                  running: multiprocessing.synchronize.Event, threads: int) -> None:
    global _worker
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(messages)]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    _worker = _Worker(messages, cancelled, running, threads)


def _read(path: str, options: Options) -> Extracted:
    assert _worker is not None, "called outside a pool worker"
    return extract(Path(path), options, lambda text: _worker.progress(path, text), _worker.reader)
