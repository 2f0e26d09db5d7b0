"""Indexing as background jobs with ids, run one at a time and in order by one worker thread.

Every front-end queues its indexing here: the window, the HTTP server and ``desktop-search watch``.
A job runs on the engine ``engine_of`` returns when it starts and takes the writer lock like any
other writer: it waits for it (its progress says who holds it) or, with ``wait=False``, fails at
once naming the holder. Changes a watcher saw are *update* jobs: a new one merges into one still
queued, so a burst of batches costs one run. Front-ends observe jobs through :class:`JobListener`
callbacks, called from the worker thread (the window relays them to its own thread). A job's last
progress and its report stay readable after it ends.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from desktop_app.core.errors import DesktopSearchError, IndexClosedError, readable
from desktop_app.core.ingest.progress import IndexReport, Progress, RunControl

if TYPE_CHECKING:
    from desktop_app.core.engine import Engine

log = logging.getLogger("desktop_search.jobs")
FINISHED_JOBS_KEPT = 100
Kind = Literal["index", "refresh", "update", "remove"]


@dataclass
class Job:
    """One indexing request and what became of it: ``state`` goes queued -> running -> done, cancelled or
    failed (``error`` says why).

    ``index`` adds or re-checks ``paths``; ``refresh`` catches up every indexed folder; ``update``
    re-checks paths a watcher saw change (``events`` counts the raw events behind them); ``remove``
    forgets ``paths``. ``rebuild`` empties the index first (index: another model) or re-encodes
    unchanged files (update).
    """

    id: str
    kind: Kind
    paths: list[str]
    wait: bool = True
    rebuild: bool = False
    events: int = 0
    state: str = "queued"
    progress: Progress | None = None
    report: IndexReport | None = None
    error: str = ""
    control: RunControl = field(default_factory=RunControl)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "failed")

    def describe(self) -> str:
        """What the job does, in a few words for a progress line."""
        names = ", ".join(Path(p).name or p for p in self.paths[:3]) + ("…" if len(self.paths) > 3 else "")
        return {"index": f"Scanning {names}…", "refresh": "Checking every folder for changes…",
                "update": f"Updating {len(self.paths)} changed item(s): {names}",
                "remove": f"Removing {names} from the index…"}[self.kind]

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "state": self.state, "paths": self.paths,
                "progress": asdict(self.progress) if self.progress is not None else None,
                "report": self.report.to_dict() if self.report is not None else None, "error": self.error}


def _ignore(*_: object) -> None:
    """A callback for what a listener does not follow."""


@dataclass(frozen=True)
class JobListener:
    """Callbacks a front-end gets from the queue's worker thread: a job started, made progress, finished
    (its ``state``, ``report`` and ``error`` say how)."""

    started: Callable[[Job], None] = _ignore
    progress: Callable[[Job, Progress], None] = _ignore
    finished: Callable[[Job], None] = _ignore


class JobQueue:
    """Runs indexing jobs one after another on the engine ``engine_of`` returns at the time (None: the
    front-end has no engine open just now, and the job fails saying so, unless the queue is held)."""

    def __init__(self, engine_of: Callable[[], Engine | None], purpose: str) -> None:
        """``purpose`` tells other processes waiting for the writer lock who holds it."""
        self._engine_of = engine_of
        self._purpose = purpose
        self._jobs: dict[str, Job] = {}
        self._queued: list[Job] = []
        self._running: Job | None = None
        self._listeners: list[JobListener] = []
        self._paused = self._held = self._closing = False
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, paths: list[str], wait: bool = True, kind: Kind = "index", rebuild: bool = False,
               events: int = 0, first: bool = False) -> Job:
        """Queue a job (``first``: ahead of those waiting). Paths to index must exist, as the CLI checks;
        an update merges into an update still queued. The running job's encoding stage steps aside, so
        the new job's words come first."""
        if kind == "index":
            from desktop_app.core.ingest.scan import normalise_root  # the readers behind it load on first use

            paths = [str(normalise_root(Path(p))) for p in paths]
        with self._changed:
            self._forget_old_jobs()
            if self._running is not None:
                self._running.control.make_way()
            merged = self._merge_update(paths, events) if kind == "update" and not rebuild else None
            if merged is not None:
                return merged
            job = Job(uuid.uuid4().hex, kind, list(paths), wait, rebuild, events)
            self._jobs[job.id] = job
            self._queued.insert(0 if first else len(self._queued), job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="index-jobs", daemon=True)
                self._worker.start()
            self._changed.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._changed:
            return self._jobs.get(job_id)

    def listen(self, listener: JobListener) -> None:
        with self._changed:
            self._listeners.append(listener)

    @property
    def busy(self) -> bool:
        """A job is running or waiting to."""
        with self._changed:
            return self._running is not None or bool(self._queued)

    @property
    def running(self) -> Job | None:
        """The job in progress, until its listeners have heard that it finished."""
        return self._running

    def cancel(self, job_id: str) -> Job | None:
        """Stop the job at its next batch (or before it starts, or while it waits for the writer lock)."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is not None and job.state == "queued":
                self._queued.remove(job)
                job.state = "cancelled"
        if job is not None and not job.finished:
            job.control.cancel()
        return job

    def cancel_all(self) -> None:
        """Cancel the running job and drop the queued ones; a paused queue goes on with the next job."""
        with self._changed:
            jobs = [*self._queued, *([self._running] if self._running is not None else [])]
            self._paused = False
            self._changed.notify_all()
        for job in jobs:
            self.cancel(job.id)

    def pause(self) -> None:
        """Hold the running job after its current batch, and start no other, until :meth:`resume`."""
        with self._changed:
            self._paused = True
            if self._running is not None:
                self._running.control.pause()

    def resume(self) -> None:
        with self._changed:
            self._paused = False
            if self._running is not None:
                self._running.control.resume()
            self._changed.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def hold(self) -> None:
        """Start no new job until :meth:`release` (the front-end is opening its engine again); the running
        one goes on."""
        with self._changed:
            self._held = True

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()

    def close(self) -> None:
        """Cancel what is queued or running and wait for the worker to stop."""
        self.cancel_all()
        with self._changed:
            self._closing = True
            worker = self._worker
            self._changed.notify_all()
        if worker is not None:
            worker.join()

    def _merge_update(self, paths: list[str], events: int) -> Job | None:
        """The queued update (one that re-encodes unchanged files keeps to its own), now with ``paths`` too."""
        pending = next((job for job in self._queued if job.kind == "update" and not job.rebuild), None)
        if pending is not None:
            pending.paths = sorted(set(pending.paths) | set(paths))
            pending.events += events
        return pending

    def _forget_old_jobs(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[:-FINISHED_JOBS_KEPT]:
            del self._jobs[job_id]

    def _next(self) -> Job | None:
        with self._changed:
            while not self._closing and (not self._queued or self._paused or self._held):
                self._changed.wait()
            if self._closing:
                return None
            job = self._running = self._queued.pop(0)
            job.state = "running"
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            self._tell("started", job)
            self._run(job)
            self._tell("finished", job)  # still the running job: a listener may read the engine it ran on
            with self._changed:
                self._running = None

    def _tell(self, event: str, job: Job, *details: object) -> None:
        with self._changed:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                getattr(listener, event)(job, *details)
            except Exception:  # noqa: BLE001 - a front-end's mistake must not stop the queue
                log.exception("a job listener failed")

    def _run(self, job: Job) -> None:
        def keep(progress: Progress) -> None:
            job.progress = progress
            self._tell("progress", job, progress)

        try:
            engine = self._engine_of()
            if engine is None:
                raise IndexClosedError("the index is being opened again (its model or folder changed): try again in "
                                       "a moment")
            job.report = self._carry_out(engine, job, keep)
            job.state = "cancelled" if job.report.cancelled else "done"
        except DesktopSearchError as error:
            job.error, job.state = str(error), "failed"
        except Exception as error:  # noqa: BLE001 - the job says what happened; the log keeps the detail
            log.exception("an indexing job failed")
            job.error, job.state = readable(error), "failed"

    def _carry_out(self, engine: Engine, job: Job, keep: Callable[[Progress], None]) -> IndexReport:
        if job.kind == "remove":
            waiting = lambda text: keep(Progress("waiting", current=text))  # noqa: E731
            return IndexReport(removed=engine.remove([Path(p) for p in job.paths], job.wait, on_wait=waiting))
        indexer = engine.indexer(self._purpose, job.wait)
        if job.kind == "refresh":
            return indexer.refresh(progress=keep, control=job.control)
        if job.kind == "update":
            return indexer.update(job.paths, progress=keep, control=job.control, force=job.rebuild)
        return indexer.run([Path(p) for p in job.paths], progress=keep, control=job.control, rebuild=job.rebuild)
