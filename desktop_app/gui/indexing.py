"""Indexing in the window: the core's job queue and live sync, shown in the folders and progress panes.

Jobs run in the queue's own thread; its callbacks (and the watcher's) arrive on that thread and are
relayed to this one by queued signals, with the folder list already read there, so the window's
thread never runs SQL or stats a folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from desktop_app.core import Job, JobListener, JobQueue, Kind, UsageError
from desktop_app.gui.panes import FoldersPane, ProgressPane
from desktop_app.gui.worker import FolderView, Loaded

if TYPE_CHECKING:  # the indexer and the watcher load with the engine, in the background
    from desktop_app.core import ChangeBatch, IndexReport, LiveSync, Progress, Settings
    from desktop_app.gui.model_control import ModelController

log = logging.getLogger("desktop_search.gui")
PURPOSE = "the Desktop Search window"  # who holds the writer lock, for other processes waiting for it


class IndexingController(QObject):
    """Queues the window's jobs (held while the engine opens), shows their progress, pauses and cancels
    them, keeps the indexed folders in sync while the setting is on, and lists them."""

    progress = Signal(object)  # Progress of the running job
    finished = Signal(object)  # a job's IndexReport, or None when it failed
    roots_changed = Signal(list)  # the indexed folders, after a run or when one goes offline or returns
    message = Signal(str, int)
    banner = Signal(str, bool)
    # Relays from the queue's and the watcher's threads to this one.
    _started = Signal(object)
    _progressed = Signal(object)
    _ended = Signal(object, object)
    _roots_came_or_went = Signal(object, object)
    _noticed = Signal(str)

    def __init__(self, parent: QObject, model: ModelController, settings_of: Callable[[], Settings],
                 folders_pane: FoldersPane, progress_pane: ProgressPane) -> None:
        super().__init__(parent)
        self._model, self._settings_of = model, settings_of
        self._folders_pane, self._progress_pane = folders_pane, progress_pane
        self.known_roots: dict[str, int | None] = {}
        self.live_sync: LiveSync | None = None
        self._when_idle: Callable[[], None] | None = None
        self.jobs = JobQueue(lambda: model.engine, PURPOSE)
        self.jobs.hold()  # until the engine is loaded
        self.jobs.listen(JobListener(started=self._started.emit, progress=lambda job, p: self._progressed.emit(p),
                                     finished=lambda job: self._ended.emit(job, self._folder_view())))
        self._started.connect(self._show_start)
        self._progressed.connect(self._show_progress)
        self._ended.connect(self._show_end)
        self._roots_came_or_went.connect(self._show_roots)
        self._noticed.connect(lambda text: self.message.emit(text, 15000))
        folders_pane.reindex.connect(self.reindex_selected)
        folders_pane.remove.connect(self.remove_selected)
        progress_pane.pause_button.clicked.connect(self.toggle_pause)
        progress_pane.cancel_button.clicked.connect(self.cancel)
        model.ready.connect(self._engine_ready)
        model.closing.connect(self._engine_closing)

    @property
    def running(self) -> bool:
        """A job is being carried out (one that has ended is told to listeners, and so to this window,
        while the queue still holds it as its running job for a moment)."""
        job = self.jobs.running
        return job is not None and not job.finished

    def add_paths(self, paths: list[Path]) -> None:
        job = self.submit("index", [str(p) for p in paths])
        if job is not None and self.live_sync is not None:
            self.live_sync.add_roots(dict.fromkeys(job.paths))  # changes made during the scan come after it

    def submit(self, kind: Kind, paths: list[str], rebuild: bool = False) -> Job | None:
        """Queue a job; it runs when the jobs before it have, and once the engine is loaded (None: a path to
        index does not exist, and the banner says so)."""
        waiting = self.jobs.busy or self._model.engine is None
        try:
            job = self.jobs.submit(paths, kind=kind, rebuild=rebuild)
        except UsageError as error:
            self.banner.emit(str(error)[:1].upper() + str(error)[1:], False)
            return None
        if waiting:
            self.message.emit(f"Queued: {job.describe()}", 5000)
        return job

    def reindex_selected(self) -> None:
        root = self._folders_pane.selected()
        if root is not None:
            self.add_paths([root])

    def remove_selected(self) -> None:
        root = self._folders_pane.selected()
        if root is not None:
            self.submit("remove", [str(root)])

    def toggle_pause(self) -> None:
        if self.jobs.paused:
            self.jobs.resume()
            self._progress_pane.pause_button.setText("Pause")
        else:
            self.jobs.pause()
            self._progress_pane.pause_button.setText("Resume")
            self._progress_pane.label.setText("Paused — the current batch finishes, then indexing waits")

    def paused_state(self) -> bool | None:
        """Whether the run in progress is paused; None when nothing is being indexed."""
        return self.jobs.paused if self.running else None

    def pause_or_resume(self) -> None:
        """Pause or resume the run in progress; with none, say so (pausing an idle queue would hold the next run)."""
        if self.running:
            self.toggle_pause()
        else:
            self.message.emit("Nothing is being indexed", 5000)

    def cancel_running(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.message.emit("Nothing is being indexed", 5000)

    def cancel(self) -> None:
        """Stop the running job at its next batch and forget the queued ones."""
        self.jobs.cancel_all()
        self._progress_pane.label.setText("Cancelling…")
        self._progress_pane.pause_button.setEnabled(False)
        self._progress_pane.cancel_button.setEnabled(False)

    def when_idle(self, action: Callable[[], None]) -> None:
        """Run ``action`` (opening the engine again) now, or once the running job ends; no job starts
        meanwhile."""
        self.jobs.hold()
        if self.running:
            self._when_idle = action
            self.message.emit("The new settings apply when the current indexing run ends", 8000)
        else:
            action()

    def watch(self, on: bool) -> None:
        """Follow the live sync setting: start watching the indexed folders, or stop."""
        if not on:
            self._stop_watching()
        elif self.live_sync is None:
            self._start_watching()

    def close(self) -> None:
        """The window is closing: cancel the jobs and wait for the running one to stop at its next batch."""
        self._stop_watching()
        self.jobs.close()

    def _engine_ready(self, loaded: Loaded, rebuild: list[str]) -> None:
        self._show_folders(loaded.view)
        if rebuild:
            self.jobs.submit(rebuild, kind="index", rebuild=True, first=True)
        elif self._settings_of().watch_folders and self.known_roots:
            self.jobs.submit([], kind="refresh", first=True)  # catch up with what changed while the app was closed
        self._start_watching()
        self.jobs.release()

    def _engine_closing(self) -> None:
        self.jobs.hold()
        self._stop_watching()

    def _start_watching(self) -> None:
        from desktop_app.core import LiveSync

        settings = self._settings_of()
        if self._model.engine is None or not settings.watch_folders:
            return
        if self.live_sync is None:
            self.live_sync = LiveSync(settings, self.jobs, on_roots=lambda batch: self._roots_came_or_went.emit(
                batch, self._folder_view()), on_notice=self._noticed.emit)
            self.live_sync.start({})  # the watcher's thread checks the folders: this one never stats them
        self.live_sync.add_roots(self.known_roots)

    def _stop_watching(self) -> None:
        if self.live_sync is not None:
            self.live_sync.stop()
            self.live_sync = None

    def _folder_view(self) -> FolderView | None:
        """The folder list, read on the calling (worker) thread."""
        engine = self._model.engine
        try:
            return FolderView.of(engine) if engine is not None else None
        except Exception:  # noqa: BLE001 - the list stays as it was
            log.exception("reading the folder list failed")
            return None

    def _show_start(self, job: Job) -> None:
        self._progress_pane.start(job.describe())

    def _show_progress(self, progress: Progress) -> None:
        self._progress_pane.show_progress(progress, self.jobs.paused)
        self.progress.emit(progress)

    def _show_end(self, job: Job, view: FolderView | None) -> None:
        if view is not None:
            self._show_folders(view)
        if job.state == "failed":
            self.banner.emit(f"Indexing stopped: {job.error}", False)
        elif job.kind == "index" or _changed_anything(job.report):
            # A watcher's or a launch's catch-up that found nothing changed keeps the line about the last
            # change ("4 added") rather than saying "0 added, 4 unchanged".
            report = job.report
            outcome = "Cancelled" if report.cancelled else "Indexed"
            offline = f"; offline, kept as they were: {', '.join(report.offline)}" if report.offline else ""
            self.message.emit(f"{outcome}: {report.added} added, {report.updated} updated, {report.unchanged} "
                              f"unchanged, {report.removed} removed, {report.failed} failed{offline}", 15000)
        if self.jobs.running in (None, job):  # no other job started meanwhile
            self._progress_pane.hide()
            if self._when_idle is not None:
                action, self._when_idle = self._when_idle, None
                action()
            elif self.live_sync is not None:
                self.live_sync.add_roots(self.known_roots)
        self.finished.emit(job.report if job.state != "failed" else None)

    def _show_roots(self, batch: ChangeBatch, view: FolderView | None) -> None:
        for root in batch.offline:
            self.message.emit(f"{root} is offline: its files stay in the index until it returns", 15000)
        if view is not None:
            self._show_folders(view)

    def _show_folders(self, view: FolderView) -> None:
        self.known_roots = {root["path"]: root["device"] for root in view.folders}
        self._folders_pane.show_view(view.folders, view.failures)
        self.roots_changed.emit(list(self.known_roots))


def _changed_anything(report: IndexReport) -> bool:
    return bool(report.added or report.updated or report.removed or report.failed or report.cancelled
                or report.offline)
