"""The engine's life in the window: the index opens and its model loads in the background, a model
that failed is explained, another one is offered, downloaded or adopted (its folders re-encoded).

The window shows before torch is imported: the model loads in the loader's thread and the status
line says which model and device are in use once it is ready.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QPushButton

from desktop_app.core import Settings
from desktop_app.gui.model_offer import ModelOfferPanel, offline_notice
from desktop_app.gui.worker import Loaded, ModelLoader, start_in_thread

if TYPE_CHECKING:  # the engine pulls in SQLite tooling: loaded in the background, not at start-up
    from desktop_app.core import Engine


class ModelController(QObject):
    """Holds the window's engine: ``search_engine`` answers by words while the model loads, ``engine``
    once it is loaded (both None while the index opens again)."""

    opened = Signal(object)  # the index is open and searchable by its words; the model is loading
    ready = Signal(object, list)  # Loaded, and the folders to re-encode with a model just adopted
    closing = Signal()
    reload_wanted = Signal()  # a reload once indexing is idle: the window asks the indexing controller
    settings_wanted = Signal(object)  # new Settings for the window to apply (a downloaded model)
    message = Signal(str, int)
    banner = Signal(str, bool)  # text, and whether it is a notice rather than an error
    banner_cleared = Signal()
    request_load = Signal(object, bool)

    def __init__(self, window: QMainWindow, settings_of: Callable[[], Settings], qsettings: QSettings,
                 folders_of: Callable[[], list[str]], model_label: QLabel, rebuild_button: QPushButton,
                 rebuild_action: QAction, model_offer: ModelOfferPanel) -> None:
        super().__init__(window)
        self._window, self._settings_of, self._qsettings, self._folders_of = window, settings_of, qsettings, folders_of
        self._label, self._rebuild_button, self._rebuild_action = model_label, rebuild_button, rebuild_action
        self._offer = model_offer
        self.engine: Engine | None = None
        self.search_engine: Engine | None = None
        self._adopt_model = False
        self._closed = False  # the window closed: what the loader hands over afterwards is closed, not used
        self._rebuild_on_load: list[str] = []
        self._loader = ModelLoader()
        self._thread = start_in_thread(self._loader, "model", self)
        self._loader.opened.connect(self._opened)
        self._loader.loaded.connect(self._loaded)
        self._loader.failed.connect(self._failed)
        self._loader.status.connect(self._show_status)
        self.request_load.connect(self._loader.load)
        rebuild_button.clicked.connect(self.rebuild_with_model)
        rebuild_action.triggered.connect(self.rebuild_with_model)
        model_offer.downloaded.connect(self.use_downloaded_model)
        model_offer.declined.connect(lambda: qsettings.setValue("model/offer_declined", "true"))

    def start_loading(self) -> None:
        self.engine = self.search_engine = None
        self._show_status("loading model…")
        self.request_load.emit(self._settings_of(), self._adopt_model)
        self._adopt_model = False

    def reload(self) -> None:
        """Open the index again with the settings as they are now (call it when indexing is idle)."""
        self.close_engine()
        self.start_loading()

    def answer_shown(self) -> None:
        """A query typed at launch has its answer on screen: the model may take Python's lock now."""
        self._loader.go_on.set()

    def rebuild_with_model(self) -> None:
        """Re-encode every indexed folder with the model the settings name (after a yes)."""
        if self.engine is None or not self.engine.mismatch:
            return
        folders = self._folders_of()
        wanted = self.engine.wanted_model.display_name
        answer = QMessageBox.question(
            self._window, "Rebuild with this model",
            f"Re-encode the {len(folders)} indexed folder(s) with {wanted}?\n\nThe index is emptied "
            "first: until the run ends, search finds only what is already re-encoded. Progress shows below.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._rebuild_on_load, self._adopt_model = folders, True
        self.reload_wanted.emit()

    def use_downloaded_model(self, repo_id: str) -> None:
        """Switch to the downloaded model; folders encoded by the old one are re-encoded first thing."""
        self._rebuild_on_load, self._adopt_model = self._folders_of(), True
        self.message.emit(f"{repo_id} downloaded: loading it…", 8000)
        self.settings_wanted.emit(self._settings_of().with_(model=repo_id))

    def close_engine(self) -> None:
        self.closing.emit()
        for engine in {id(e): e for e in (self.engine, self.search_engine) if e is not None}.values():
            engine.close()
        self.engine = self.search_engine = None

    def close(self) -> None:
        """The window is closing: wait for a model load under way (one not started yet is skipped), then
        close the index."""
        self._closed = True
        self._loader.stopping.set()
        self._loader.go_on.set()
        self._thread.quit()
        self._thread.wait()
        self.close_engine()

    def _show_status(self, message: str) -> None:
        self._label.setText(message)
        self.message.emit(message, 8000)

    def _opened(self, engine: Engine) -> None:
        if self._closed:  # queued while close() waited for the loader
            engine.close()
            return
        self.search_engine = engine
        self.opened.emit(engine)

    def _loaded(self, loaded: Loaded) -> None:
        if self._closed:
            loaded.engine.close()
            return
        engine = self.engine = self.search_engine = loaded.engine
        description = engine.describe()
        self._window.setWindowTitle(f"Desktop Search — {description}")
        self._label.setText(f"Model: {description}")
        self.message.emit(f"Model ready: {description}", 4000)  # in place of "loading model …"
        self.banner_cleared.emit()
        self._suggest_model(loaded.offer)
        self._rebuild_action.setEnabled(bool(engine.mismatch))
        self._rebuild_button.setVisible(bool(engine.mismatch))
        if engine.mismatch:
            self.banner.emit(engine.mismatch[:1].upper() + engine.mismatch[1:] + ".", True)
        rebuild, self._rebuild_on_load = self._rebuild_on_load, []
        self.ready.emit(loaded, rebuild)

    def _suggest_model(self, offer: str) -> None:
        """Offer BGE-M3 while the lite model stands in for it, or say why it cannot be fetched."""
        declined = str(self._qsettings.value("model/offer_declined", "")) == "true"
        if offer == "download" and not declined and not self._offer.downloading:
            self._offer.offer()
        elif offer == "offline":
            self.banner.emit(offline_notice(), True)

    def _failed(self, message: str) -> None:
        if self._closed:
            return
        self._window.setWindowTitle("Desktop Search — no model")
        self._label.setText("Model: not loaded")
        self.banner.emit(f"Cannot start the search engine: {message}. Open File ▸ Settings to choose another "
                         "model or index folder.", False)
