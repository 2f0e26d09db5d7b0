"""Indexing as background jobs with ids: progress to poll, cancel, one run at a time, in order.

For a front-end without worker threads of its own (the HTTP server). A job runs
``engine.indexer(...).run`` in this queue's one worker thread and takes the writer lock like any
other writer: it waits for it (its progress says who holds it) or, with ``wait=False``, fails at
once naming the holder. Its last progress and its report stay readable after it ends.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.core.errors import DesktopSearchError, IndexClosedError
from desktop_app.core.ingest.indexer import IndexReport, Progress, RunControl, normalise_root

if TYPE_CHECKING:
    from desktop_app.core.engine import Engine

log = logging.getLogger("desktop_search.jobs")
FINISHED_JOBS_KEPT = 100


@dataclass
class Job:
    """One indexing request and what became of it: ``state`` goes queued -> running -> done, cancelled or
    failed (``error`` says why)."""

    id: str
    paths: list[str]
    wait: bool = True
    state: str = "queued"
    progress: Progress | None = None
    report: IndexReport | None = None
    error: str = ""
    control: RunControl = field(default_factory=RunControl)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "failed")

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "state": self.state, "paths": self.paths,
                "progress": asdict(self.progress) if self.progress is not None else None,
                "report": self.report.to_dict() if self.report is not None else None, "error": self.error}


class JobQueue:
    """Runs indexing jobs one after another on the engine ``engine_of`` returns at the time (None: the
    front-end has no engine open just now, and the job fails saying so)."""

    def __init__(self, engine_of: Callable[[], Engine | None], purpose: str) -> None:
        """``purpose`` tells other processes waiting for the writer lock who holds it."""
        self._engine_of = engine_of
        self._purpose = purpose
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._todo: queue.Queue[Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def submit(self, paths: list[str], wait: bool = True) -> Job:
        """Queue indexing of ``paths`` (folders or files; each must exist, as the CLI checks)."""
        job = Job(uuid.uuid4().hex, [str(normalise_root(Path(p))) for p in paths], wait)
        with self._lock:
            self._forget_old_jobs()
            for running in self._jobs.values():
                if running.state == "running":
                    running.control.make_way()  # its encoding stage steps aside: this job's words come first
            self._jobs[job.id] = job
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="index-jobs", daemon=True)
                self._worker.start()
        self._todo.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Stop the job at its next batch (or before it starts, or while it waits for the writer lock)."""
        job = self.get(job_id)
        if job is not None and not job.finished:
            job.control.cancel()
            if job.state == "queued":
                job.state = "cancelled"
        return job

    def close(self) -> None:
        """Cancel what is queued or running and wait for the worker to stop."""
        with self._lock:
            jobs, worker = list(self._jobs), self._worker
        for job_id in jobs:
            self.cancel(job_id)
        if worker is not None:
            self._todo.put(None)
            worker.join()

    def _forget_old_jobs(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[:-FINISHED_JOBS_KEPT]:
            del self._jobs[job_id]

    def _work(self) -> None:
        while (job := self._todo.get()) is not None:
            if job.state == "queued":
                self._run(job)

    def _run(self, job: Job) -> None:
        job.state = "running"

        def keep(progress: Progress) -> None:
            job.progress = progress

        try:
            engine = self._engine_of()
            if engine is None:
                raise IndexClosedError("the index is being opened again (its model or folder changed): try again in "
                                       "a moment")
            job.report = engine.indexer(self._purpose, job.wait).run([Path(p) for p in job.paths], progress=keep,
                                                                      control=job.control)
            job.state = "cancelled" if job.report.cancelled else "done"
        except DesktopSearchError as error:
            job.error, job.state = str(error), "failed"
        except Exception as error:  # noqa: BLE001 - the job says what happened; the log keeps the detail
            log.exception("an indexing job failed")
            job.error, job.state = f"unexpected {error.__class__.__name__}: {error}", "failed"
