"""Background workers: model loading, downloading and searching each run off the GUI thread.

Each worker is a QObject moved to its own QThread; requests arrive as queued signals and
results leave as signals, so the window never blocks. Errors become readable messages.
Indexing runs in the core's job queue (see ``gui/indexing.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop_app.core import DesktopSearchError, Settings, readable

if TYPE_CHECKING:  # the engine pulls in SQLite tooling: loaded in the background, not at start-up
    from desktop_app.core import Engine, ModelSpec

log = logging.getLogger("desktop_search.gui")
RESULT_LIMIT = 30
FIRST_ANSWER_WAIT_S = 2.0  # the longest a query typed at launch holds the model back


@dataclass(frozen=True)
class Loaded:
    """What the loader hands the window: the engine, the model suggestion, and the folder list it
    read on its own thread (the window's thread never runs SQL or stats a folder)."""

    engine: Engine
    offer: str
    view: FolderView


@dataclass(frozen=True)
class FolderView:
    """The sidebar's content: per folder path, files, chunks, device, online; and the failures."""

    folders: list[dict[str, object]]
    failures: list[tuple[str, str]]

    @classmethod
    def of(cls, engine: Engine) -> FolderView:
        return cls(engine.folders(), engine.failures())


def start_in_thread(worker: QObject, name: str, parent: QObject) -> QThread:
    """Move ``worker`` to a new thread of its own (ended with ``quit`` and ``wait`` by its owner)."""
    thread = QThread(parent)
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


class ModelLoader(QObject):
    """Opens the index and loads the model (imports torch) in the background.

    Importing torch holds Python's lock for seconds: a query typed at launch is answered by its
    words first (``go_on`` is set when that answer is on screen, or after
    :data:`FIRST_ANSWER_WAIT_S`), then the model loads.
    """

    opened = Signal(object)
    loaded = Signal(object)
    failed = Signal(str)
    status = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Event()
        self.stopping = threading.Event()  # the window is closing: a model not yet loading is not loaded

    @Slot(object, bool)
    def load(self, settings: Settings, adopt: bool) -> None:
        """Open the index with the model the core picks (``opened``: searchable by words at once), then
        load the model (``loaded``); ``adopt`` takes the settings' model even where the index was built
        with another (a rebuild follows)."""
        self.go_on.clear()  # before the index opens: a close meanwhile sets it after this
        try:
            from desktop_app.core import Engine

            engine = Engine.open(settings, adopt=adopt, create=True, load=False, on_notice=self.status.emit)
            engine.answer_by_words_until_loaded()
            self.opened.emit(engine)
            if not self.stopping.is_set():  # close() sets it before go_on
                self.go_on.wait(FIRST_ANSWER_WAIT_S)
            if self.stopping.is_set():
                return  # the window closes the engine it was handed; a model load would hold the exit for seconds
            where = "CUDA / CPU" if settings.device == "auto" else settings.device.upper()
            self.status.emit(f"loading model {engine.spec.display_name} on {where}…")
            engine.load_model()
            self.loaded.emit(Loaded(engine, model_offer(engine.spec, settings), FolderView.of(engine)))
        except Exception as error:  # noqa: BLE001 - every failure must reach the window as text
            log.exception("loading the model failed")
            self.failed.emit(readable(error))


def model_offer(spec: ModelSpec, settings: Settings) -> str:
    """What the window suggests about the model: "download" BGE-M3 when the lite model is in use
    only because none is cached, "offline" when the hub is off limits, else nothing."""
    from desktop_app.core import hub_offline

    if not spec.is_lite or settings.model:
        return ""
    return "offline" if hub_offline() else "download"


class DownloadWorker(QObject):
    """Downloads a model into the Hugging Face cache; ``stop`` (a threading.Event) cancels."""

    progress = Signal(object, object)
    finished = Signal(str)
    failed = Signal(str)
    cancelled = Signal()

    @Slot(str, object)
    def download(self, repo_id: str, stop: threading.Event) -> None:
        from desktop_app.core import Cancelled, ModelDownload

        try:
            path = ModelDownload(repo_id).run(self.progress.emit, stop.is_set)
            self.finished.emit(str(path))
        except Cancelled:
            self.cancelled.emit()
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            self.failed.emit(readable(error))


class SearchWorker(QObject):
    """Runs searches, preview contexts and pages of the file list in order, off the window's thread;
    each search result carries the id of the request it answers."""

    done = Signal(int, object)
    failed = Signal(int, str)
    context_ready = Signal(int, object)
    files_ready = Signal(int, int, object)

    def __init__(self, newest: Callable[[], int]) -> None:
        """``newest``: the id of the window's latest request; an older one still queued is dropped
        before it costs anything (search-as-you-type queues one per pause in typing)."""
        super().__init__()
        self._newest = newest

    @Slot(int, object, str, dict)
    def search(self, request: int, engine: Engine, query: str, options: dict) -> None:
        if request != self._newest():
            return
        try:
            self.done.emit(request, engine.search(query, **options))
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            if not isinstance(error, DesktopSearchError):
                log.exception("search failed")
            self.failed.emit(request, readable(error))

    @Slot(int, object, int)
    def like(self, request: int, engine: Engine, chunk_id: int) -> None:
        if request != self._newest():
            return
        try:
            self.done.emit(request, engine.more_like_chunk(chunk_id, RESULT_LIMIT))
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            if not isinstance(error, DesktopSearchError):
                log.exception("more like this failed")
            self.failed.emit(request, readable(error))

    @Slot(int, object, str, bool, int, int)
    def files_page(self, request: int, engine: Engine, text: str, failed_only: bool, offset: int, limit: int) -> None:
        try:
            self.files_ready.emit(request, offset, engine.files(text, failed_only, offset, limit))
        except Exception:  # noqa: BLE001 - the list stops growing; the log says why
            log.exception("reading the file list failed")

    @Slot(int, object, int)
    def context(self, chunk_id: int, engine: Engine, chars: int) -> None:
        try:
            self.context_ready.emit(chunk_id, engine.context(chunk_id, chars))
        except Exception:  # noqa: BLE001 - a preview that cannot be read stays empty
            log.exception("reading a hit's context failed")
            self.context_ready.emit(chunk_id, ("", "", ""))
