"""Background workers: model loading, indexing and searching each run off the GUI thread.

Each worker is a QObject moved to its own QThread; requests arrive as queued signals and
results leave as signals, so the window never blocks. Errors become readable messages.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.core.config import Settings
from desktop_app.core.errors import DesktopSearchError


@dataclass
class Engine:
    """What the loader hands the window: the index, the loaded encoder and a reading searcher."""

    settings: Settings
    index: object
    encoder: object
    searcher: object
    offer: str = ""

    def describe(self) -> str:
        return self.encoder.describe()


def readable(error: BaseException) -> str:
    """One sentence for the user; unexpected errors keep their type so they can be reported."""
    if isinstance(error, DesktopSearchError):
        return str(error)
    if isinstance(error, OSError) and error.errno == 28:
        return "the disk is full: free some space, then index again (the index kept its last consistent state)"
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"unexpected {error.__class__.__name__}: {error}"


class ModelLoader(QObject):
    """Opens the index and loads the model (imports torch) in the background."""

    loaded = Signal(object)
    failed = Signal(str)
    status = Signal(str)

    @Slot(object)
    def load(self, settings: Settings) -> None:
        try:
            from desktop_app.core import models
            from desktop_app.core.encoder import Encoder
            from desktop_app.core.index import DB_NAME, Index
            from desktop_app.core.search import Searcher
            from desktop_app.core.store import Store

            index = Index.open(settings.index_dir, create=True)
            info = index.model_info
            if settings.model:
                spec = models.resolve(settings.model)
            elif info is not None:
                spec = models.resolve_recorded(info, settings)
            else:
                spec = models.resolve_default(settings)
            where = "CUDA / CPU" if settings.device == "auto" else settings.device.upper()
            self.status.emit(f"loading model {spec.display_name} on {where}…")
            encoder = Encoder(spec, settings.device, settings.dtype, on_notice=self.status.emit).load()
            searcher = Searcher(index, encoder, store=Store(Path(index.folder) / DB_NAME))
            self.loaded.emit(Engine(settings, index, encoder, searcher, model_offer(spec, settings)))
        except Exception as error:  # noqa: BLE001 - every failure must reach the window as text
            traceback.print_exc()
            self.failed.emit(readable(error))


@dataclass(frozen=True)
class Job:
    """One request for the index worker.

    ``index`` adds or re-checks ``paths``; ``refresh`` catches up every indexed folder (at start);
    ``update`` re-checks paths the folder watcher saw change; ``remove`` forgets ``paths``.
    """

    kind: Literal["index", "refresh", "update", "remove"]
    paths: tuple[str, ...] = ()
    rebuild: bool = False

    def describe(self) -> str:
        names = ", ".join(Path(p).name or p for p in self.paths[:3]) + ("…" if len(self.paths) > 3 else "")
        return {"index": f"Scanning {names}…", "refresh": "Checking every folder for changes…",
                "update": f"Updating {len(self.paths)} changed item(s): {names}",
                "remove": f"Removing {names} from the index…"}[self.kind]


def model_offer(spec: object, settings: Settings) -> str:
    """What the window suggests about the model: "download" BGE-M3 when the lite model is in use
    only because none is cached, "offline" when the hub is off limits, else nothing."""
    from desktop_app.core.download import hub_offline

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
    def download(self, repo_id: str, stop: object) -> None:
        from desktop_app.core.download import ModelDownload
        from desktop_app.core.errors import Cancelled

        try:
            path = ModelDownload(repo_id).run(self.progress.emit, stop.is_set)
            self.finished.emit(str(path))
        except Cancelled:
            self.cancelled.emit()
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            self.failed.emit(readable(error))


class IndexWorker(QObject):
    """Runs one job at a time; the window queues the rest."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    @Slot(object, object, object)
    def run(self, engine: Engine, job: Job, control: object) -> None:
        """Carry out ``job``; ``control`` (a RunControl the window keeps) pauses or cancels it."""
        from desktop_app.core.indexer import Indexer, IndexReport, Progress, remove_paths

        try:
            indexer = Indexer(engine.index, engine.encoder, engine.settings, purpose="the Desktop Search window")
            options = {"progress": self.progress.emit, "control": control}
            if job.kind == "index":
                report = indexer.run([Path(p) for p in job.paths], rebuild=job.rebuild, **options)
            elif job.kind == "refresh":
                report = indexer.refresh(**options)
            elif job.kind == "update":
                report = indexer.update(list(job.paths), **options)
            else:
                waiting = lambda text: self.progress.emit(Progress("waiting", current=text))  # noqa: E731
                report = IndexReport(removed=remove_paths(engine.index, [Path(p) for p in job.paths], on_wait=waiting))
            self.finished.emit(report)
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            traceback.print_exc()
            self.failed.emit(readable(error))


class SearchWorker(QObject):
    """Runs searches in order; each result carries the id of the request it answers."""

    done = Signal(int, object)
    failed = Signal(int, str)

    @Slot(int, object, str, dict)
    def search(self, request: int, engine: Engine, query: str, options: dict) -> None:
        try:
            self.done.emit(request, engine.searcher.search(query, **options))
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            self.failed.emit(request, readable(error))
