"""The main window: folders on the left, search and results in the middle, preview on the right.

The window shows before torch is imported: the model loads in a worker thread and the
status line says which model and device are in use once it is ready.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QProcess, QSettings, Qt, QThread, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core import (
    BGE_M3_WEIGHTS,
    FILTER_KEYS,
    SYNTAX_HELP,
    Settings,
    UsageError,
    Weights,
    log_path,
    start_logging,
)
from desktop_app.gui.files_view import FilesDialog
from desktop_app.gui.model_offer import ModelOfferPanel, offline_notice
from desktop_app.gui.panes import FoldersPane, PreviewPane, ProgressPane, ResultsPane, SearchBar
from desktop_app.gui.plain import plain_label
from desktop_app.gui.platform_check import platform_problem
from desktop_app.gui.results import HitRole, PathRole, ResultsModel, preview_html
from desktop_app.gui.settings import SettingsDialog, load_settings, open_qsettings, save_settings
from desktop_app.gui.worker import FolderView, IndexWorker, Job, Loaded, ModelLoader, SearchWorker

if TYPE_CHECKING:  # the engine pulls in SQLite tooling: loaded in the background, not at start-up
    from desktop_app.api.server import ApiServer
    from desktop_app.core import Engine

log = logging.getLogger("desktop_search.gui")
RESOURCES = Path(__file__).resolve().parents[2] / "resources"
SEARCH_DEBOUNCE_MS = 250
RESULT_FILES = 30
PREVIEW_CHARS = 600


class MainWindow(QMainWindow):
    """Wires the widgets to three workers: model loader, indexer and searcher."""

    model_ready = Signal()
    indexing_finished = Signal(object)
    results_shown = Signal(object)
    folders_changed = Signal()
    error_shown = Signal(str)
    changes_seen = Signal(object)
    request_load = Signal(object, bool)
    request_index = Signal(object, object, object)
    request_search = Signal(int, object, str, dict)
    request_context = Signal(int, object, int)
    request_like = Signal(int, object, int)
    request_files = Signal(int, object, str, bool, int, int)
    request_folders = Signal(object)
    preview_shown = Signal()

    def __init__(self, qsettings: QSettings | None = None, autoload: bool = True) -> None:
        super().__init__()
        self.qsettings = qsettings or open_qsettings()
        self.settings: Settings = load_settings(self.qsettings)
        self.engine: Engine | None = None
        # The index opened before its model is loaded: searches are answered by words meanwhile.
        self.search_engine: Engine | None = None
        self.reranking = False  # the search shown was ranked by words; the model's ranking replaces it in place
        self.known_roots: dict[str, int | None] = {}
        self.adopt_model = False
        self.preview_request: tuple[object, int, int] | None = None
        self.files_dialog: FilesDialog | None = None
        self.control = None
        self.running = False
        self.reload_after_run = False
        self.queued_runs: list[Job] = []
        self.rebuild_on_load: list[str] = []
        self.watcher = None
        self.api_server: ApiServer | None = None
        self.api_token = ""
        self.request_id = 0
        self.results = ResultsModel()
        self.setWindowTitle("Desktop Search — loading model…")
        self.setAcceptDrops(True)
        self.build_ui()
        self.build_menu()
        self.start_threads()
        self.restore_geometry()
        if self.settings.api_enabled:
            self.start_sharing()
        if autoload:
            QTimer.singleShot(0, self.start_loading)

    # ----- construction -------------------------------------------------------------------------
    def build_ui(self) -> None:
        """Compose the panes and give the window's code the widgets it drives by name."""
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 10, 10, 6)
        self.search_bar = SearchBar(self.settings.weights or BGE_M3_WEIGHTS)
        self.search_bar.typed.connect(lambda: self.debounce.start())
        self.search_bar.search_now.connect(self.run_search)
        self.search_bar.reset_weights.connect(self.reset_weights)
        self.search_bar.help_wanted.connect(self.show_syntax_help)
        layout.addWidget(self.search_bar)
        bar = self.search_bar
        self.query, self.mode, self.colbert_box, self.sliders = bar.query, bar.mode, bar.colbert_box, bar.sliders
        self.banner = plain_label()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.rebuild_button = QPushButton("Rebuild with this model")
        self.rebuild_button.setToolTip("Re-encode every indexed folder with the model chosen in Settings")
        self.rebuild_button.clicked.connect(self.rebuild_with_model)
        self.rebuild_button.hide()
        layout.addWidget(self.rebuild_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.model_offer = ModelOfferPanel()
        self.model_offer.downloaded.connect(self.use_downloaded_model)
        self.model_offer.declined.connect(lambda: self.qsettings.setValue("model/offer_declined", "true"))
        layout.addWidget(self.model_offer)
        self.folders_pane = FoldersPane()
        self.folders_pane.add_folder.connect(self.choose_folder)
        self.folders_pane.reindex.connect(self.reindex_selected)
        self.folders_pane.remove.connect(self.remove_selected)
        self.folders_pane.changed.connect(self.folders_changed)
        self.folders, self.problems = self.folders_pane.tree, self.folders_pane.problems
        self.problems_label = self.folders_pane.problems_label
        self.results_pane = ResultsPane(self.results)
        self.results_view, self.results_header = self.results_pane.view, self.results_pane.header
        self.results_view.activated.connect(self.open_index)
        self.results_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.results_view.customContextMenuRequested.connect(self.result_menu)
        self.results_view.selectionModel().currentChanged.connect(lambda current, _: self.show_preview(current))
        self.preview_pane = PreviewPane()
        self.preview = self.preview_pane.browser
        self.preview.anchorClicked.connect(self.preview_link)
        self.open_button, self.reveal_button = self.preview_pane.open_button, self.preview_pane.reveal_button
        self.open_button.clicked.connect(lambda: self.open_index(self.results_view.currentIndex()))
        self.reveal_button.clicked.connect(self.reveal_current)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for pane, stretch in ((self.folders_pane, 0), (self.results_pane, 3), (self.preview_pane, 2)):
            splitter.addWidget(pane)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        splitter.setSizes([270, 620, 420])
        layout.addWidget(splitter, 1)
        self.progress_panel = ProgressPane()
        self.progress_label, self.progress_bar = self.progress_panel.label, self.progress_panel.bar
        self.pause_button, self.cancel_button = self.progress_panel.pause_button, self.progress_panel.cancel_button
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel_indexing)
        layout.addWidget(self.progress_panel)
        self.setCentralWidget(central)
        self.model_label = plain_label("Model: loading…")
        self.statusBar().addPermanentWidget(self.model_label)
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self.debounce.timeout.connect(self.run_search)
        self.changes_seen.connect(self.folder_changes)

    def show_weights(self, weights: Weights) -> None:
        self.search_bar.show_weights(weights)

    def reset_weights(self) -> None:
        """Back to the model's own fusion (dense + keyword for the lite model, BGE-M3's for BGE-M3)."""
        if self.engine is not None:
            self.show_weights(self.engine.default_weights())
            self.run_search()

    def build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for label, shortcut, slot in (("&Add folder…", QKeySequence.StandardKey.Open, self.choose_folder),
                                      ("&Settings…", QKeySequence.StandardKey.Preferences, self.edit_settings),
                                      ("&Quit", QKeySequence.StandardKey.Quit, self.close)):
            action = QAction(label, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        files_action = QAction("Indexed &files…", self)
        files_action.setShortcut(QKeySequence("Ctrl+L"))
        files_action.triggered.connect(self.show_files)
        file_menu.insertAction(file_menu.actions()[1], files_action)
        self.rebuild_action = QAction("&Rebuild with this model…", self)
        self.rebuild_action.setToolTip("Re-encode every indexed folder with the model chosen in Settings")
        self.rebuild_action.triggered.connect(self.rebuild_with_model)
        self.rebuild_action.setEnabled(False)
        file_menu.insertAction(file_menu.actions()[-1], self.rebuild_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Desktop Search", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def start_threads(self) -> None:
        self.threads: list[QThread] = []
        self.loader = self.in_thread(ModelLoader(), "model")
        self.loader.opened.connect(self.engine_opened)
        self.loader.loaded.connect(self.engine_loaded)
        self.loader.failed.connect(self.engine_failed)
        self.loader.status.connect(self.model_status)
        self.request_load.connect(self.loader.load)
        self.indexer = self.in_thread(IndexWorker(), "index")
        self.indexer.progress.connect(self.show_progress)
        self.indexer.finished.connect(self.index_finished)
        self.indexer.failed.connect(self.index_failed)
        self.request_index.connect(self.indexer.run)
        self.searcher = self.in_thread(SearchWorker(), "search")
        self.searcher.done.connect(self.search_done)
        self.searcher.failed.connect(self.search_failed)
        self.request_search.connect(self.searcher.search)
        self.searcher.context_ready.connect(self.show_context)
        self.request_context.connect(self.searcher.context)
        self.request_like.connect(self.searcher.like)
        self.request_files.connect(self.searcher.files_page)
        self.searcher.folders_ready.connect(self.show_folders)
        self.request_folders.connect(self.searcher.folders)

    def in_thread(self, worker: object, name: str) -> object:
        thread = QThread(self)
        thread.setObjectName(name)
        worker.moveToThread(thread)
        thread.finished.connect(worker.deleteLater)
        thread.start()
        self.threads.append(thread)
        return worker

    # ----- model -------------------------------------------------------------------------------
    def start_loading(self) -> None:
        self.engine = self.search_engine = None
        self.model_status("loading model…")
        self.request_load.emit(self.settings, self.adopt_model)
        self.adopt_model = False

    def model_status(self, message: str) -> None:
        self.model_label.setText(message)
        self.statusBar().showMessage(message, 8000)

    def engine_opened(self, engine: Engine) -> None:
        """The index is open and its model loading: a query typed now is answered by its words."""
        self.search_engine = engine
        if self.query.text().strip():
            self.run_search()  # the model loads once its answer is on screen
        else:
            self.loader.go_on.set()

    def engine_loaded(self, loaded: Loaded) -> None:
        engine = self.engine = self.search_engine = loaded.engine
        description = engine.describe()
        self.setWindowTitle(f"Desktop Search — {description}")
        self.model_label.setText(f"Model: {description}")
        self.colbert_box.setChecked(engine.encoder.device.startswith("cuda"))
        self.show_weights(self.settings.weights or engine.default_weights())
        self.hide_banner()
        self.show_folders(loaded.view)
        self.suggest_model(loaded.offer)
        self.rebuild_action.setEnabled(bool(engine.mismatch))
        self.rebuild_button.setVisible(bool(engine.mismatch))
        if engine.mismatch:
            self.show_banner(engine.mismatch[:1].upper() + engine.mismatch[1:] + ".", notice=True)
        self.model_ready.emit()
        if self.rebuild_on_load:
            self.queued_runs.insert(0, Job("index", tuple(self.rebuild_on_load), rebuild=True))
            self.rebuild_on_load = []
        elif self.settings.watch_folders and self.known_roots:
            self.queued_runs.insert(0, Job("refresh"))
        self.start_watching()
        self.start_next()
        if self.query.text().strip():
            self.reranking = True  # the same list again, ranked by meaning: selection and scroll stay
            self.run_search()

    def rebuild_with_model(self) -> None:
        """Re-encode every indexed folder with the model the settings name (after a yes)."""
        if self.engine is None or not self.engine.mismatch:
            return
        wanted = self.engine.choice.wanted.display_name
        answer = QMessageBox.question(
            self, "Rebuild with this model",
            f"Re-encode the {len(self.known_roots)} indexed folder(s) with {wanted}?\n\nThe index is emptied "
            "first: until the run ends, search finds only what is already re-encoded. Progress shows below.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.rebuild_on_load = list(self.known_roots)
        self.adopt_model = True
        self.close_engine()
        self.start_loading()

    def suggest_model(self, offer: str) -> None:
        """Offer BGE-M3 while the lite model stands in for it, or say why it cannot be fetched."""
        declined = str(self.qsettings.value("model/offer_declined", "")) == "true"
        if offer == "download" and not declined and not self.model_offer.downloading:
            self.model_offer.offer()
        elif offer == "offline":
            self.show_banner(offline_notice(), notice=True)

    def use_downloaded_model(self, repo_id: str) -> None:
        """Switch to the downloaded model; folders encoded by the old one are re-encoded first thing."""
        self.rebuild_on_load = list(self.known_roots)
        self.adopt_model = True
        self.statusBar().showMessage(f"{repo_id} downloaded: loading it…", 8000)
        self.apply_settings(self.settings.with_(model=repo_id))

    def engine_failed(self, message: str) -> None:
        self.setWindowTitle("Desktop Search — no model")
        self.model_label.setText("Model: not loaded")
        self.show_banner(f"Cannot start the search engine: {message}. Open File ▸ Settings to choose another "
                         "model or index folder.")

    # ----- indexing ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and all(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to index", str(Path.home()))
        if folder:
            self.add_paths([Path(folder)])

    def add_paths(self, paths: list[Path], rebuild: bool = False) -> None:
        self.queue_job(Job("index", tuple(str(p) for p in paths), rebuild))

    def queue_job(self, job: Job) -> None:
        """Run ``job`` now if the worker is free, else after the jobs before it."""
        self.queued_runs.append(job)
        if self.engine is None or self.running:
            self.statusBar().showMessage(f"Queued: {job.describe()}", 5000)
        if self.running and self.control is not None:
            self.control.make_way()  # a run's encoding stage steps aside; the new job's words come first
        self.start_next()

    def start_next(self) -> None:
        if self.queued_runs and self.engine is not None and not self.running:
            self.start_run(self.queued_runs.pop(0))

    def start_run(self, job: Job) -> None:
        from desktop_app.core import RunControl

        self.control = RunControl()
        self.running = True
        self.progress_panel.start(job.describe())
        if job.kind == "index" and self.watcher is not None:
            self.watcher.add_roots(dict.fromkeys(job.paths))  # watch first, so changes during the scan count
        self.request_index.emit(self.engine, job, self.control)

    def start_watching(self) -> None:
        """Watch the indexed folders (when the setting is on) so changes reach search by themselves."""
        from desktop_app.core import FolderWatcher, RootsReader

        if self.engine is None or not self.settings.watch_folders:
            return
        if self.watcher is None:
            # Watching starts in the watcher's own thread: the window's thread never stats a folder.
            self.watcher = FolderWatcher(self.settings, self.changes_seen.emit, on_notice=self.changes_seen.emit,
                                         roots_source=RootsReader(self.settings.index_dir))
            self.watcher.start({})
        self.watcher.add_roots(self.known_roots)

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def folder_changes(self, change: object) -> None:
        """A batch from the watcher (or a notice string): queue one update job for its paths."""
        if isinstance(change, str):
            self.statusBar().showMessage(change, 15000)
            return
        for root in change.offline:
            self.statusBar().showMessage(f"{root} is offline: its files stay in the index until it returns", 15000)
        if change.online or change.offline:
            self.refresh_folders()
        if not change.paths:
            return
        pending = next((job for job in self.queued_runs if job.kind == "update"), None)
        if pending is not None:
            merged = Job("update", tuple(sorted(set(pending.paths) | set(change.paths))))
            self.queued_runs[self.queued_runs.index(pending)] = merged
        else:
            self.queue_job(Job("update", tuple(change.paths)))

    def show_progress(self, progress: object) -> None:
        self.progress_panel.show_progress(progress, self.control is not None and self.control.paused)

    def toggle_pause(self) -> None:
        if self.control is None:
            return
        if self.control.paused:
            self.control.resume()
            self.pause_button.setText("Pause")
        else:
            self.control.pause()
            self.pause_button.setText("Resume")
            self.progress_label.setText("Paused — the current batch finishes, then indexing waits")

    def cancel_indexing(self) -> None:
        if self.control is not None:
            self.control.cancel()
            self.queued_runs.clear()
            self.progress_label.setText("Cancelling…")
            self.pause_button.setEnabled(False)
            self.cancel_button.setEnabled(False)

    def index_finished(self, report: object, view: FolderView) -> None:
        self.running = False
        self.show_folders(view)
        outcome = "Cancelled" if report.cancelled else "Indexed"
        offline = f"; offline, kept as they were: {', '.join(report.offline)}" if report.offline else ""
        self.statusBar().showMessage(
            f"{outcome}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.removed} removed, {report.failed} failed{offline}", 15000)
        self.after_run()
        self.indexing_finished.emit(report)

    def index_failed(self, message: str) -> None:
        self.running = False
        self.show_banner(f"Indexing stopped: {message}")
        self.after_run()
        self.indexing_finished.emit(None)

    def after_run(self) -> None:
        self.control = None
        self.progress_panel.hide()
        if self.reload_after_run:
            self.reload_after_run = False
            self.close_engine()
            self.start_loading()
            return
        self.start_watching()
        if self.query.text().strip():
            self.run_search()
        self.start_next()

    def selected_root(self) -> Path | None:
        return self.folders_pane.selected()

    def reindex_selected(self) -> None:
        root = self.selected_root()
        if root is not None:
            self.add_paths([root])

    def remove_selected(self) -> None:
        root = self.selected_root()
        if root is not None:
            self.queue_job(Job("remove", (str(root),)))

    def refresh_folders(self) -> None:
        """Ask the search thread for the folder list (SQL and a stat per folder: never on this thread)."""
        if self.engine is not None:
            self.request_folders.emit(self.engine)

    def show_folders(self, view: FolderView) -> None:
        self.known_roots = {root["path"]: root["device"] for root in view.folders}
        self.search_bar.set_folders(list(self.known_roots))
        self.folders_pane.show_view(view.folders, view.failures)

    # ----- searching ---------------------------------------------------------------------------
    def search_options(self) -> dict:
        weights = self.search_bar.weights()
        return {"k": RESULT_FILES, "mode": self.mode.currentData(), "weights": weights,
                "colbert": self.colbert_box.isChecked(), "filters": self.search_bar.filters()}

    def update_chips(self) -> None:
        """Chips for the filter row's values and the operators typed into the box."""
        typed = [word for word in self.query.text().split()
                 if ":" in word and word.split(":", 1)[0].lower() in FILTER_KEYS]
        self.search_bar.show_chips(typed, self.search_bar.row_filters())

    def show_files(self) -> None:
        """The Files view (one per window): pages of the file list are read on the search thread."""
        if self.files_dialog is None:
            dialog = self.files_dialog = FilesDialog(self)
            dialog.model.need_page.connect(
                lambda request, text, failed, offset, limit: self.engine is not None and self.request_files.emit(
                    request, self.engine, text, failed, offset, limit))
            self.searcher.files_ready.connect(dialog.model.add_page)
            dialog.open_file.connect(lambda path: self.open_path(Path(path), 1))
            dialog.reveal_file.connect(lambda path: self.reveal_path(Path(path)))
            dialog.reindex_file.connect(lambda path: self.queue_job(Job("update", (path,), rebuild=True)))
            dialog.remove_file.connect(lambda path: self.queue_job(Job("remove", (path,))))
            self.indexing_finished.connect(lambda _: dialog.isVisible() and dialog.reload())
        self.files_dialog.show()
        self.files_dialog.raise_()
        self.files_dialog.reload()

    def result_menu(self, position: object) -> None:
        """Right-click on a hit: more like this, open, show in folder."""
        index = self.results_view.indexAt(position)
        hit = index.data(HitRole) if index.isValid() else None
        if hit is None:
            return
        menu = QMenu(self)
        menu.addAction("More like this", lambda: self.more_like(hit))
        menu.addAction("Open", lambda: self.open_index(index))
        menu.addAction("Show in folder", self.reveal_current)
        menu.exec(self.results_view.viewport().mapToGlobal(position))

    def more_like(self, hit: object) -> None:
        """Search by the hit's own stored vectors; the results replace the list like a search."""
        if self.engine is None:
            return
        self.request_id += 1
        self.results_header.setText(f"Looking for passages like {Path(hit.path).name}…")
        self.request_like.emit(self.request_id, self.engine, hit.chunk_id)

    def show_syntax_help(self) -> None:
        QMessageBox.information(self, "Search syntax", SYNTAX_HELP)

    def run_search(self) -> None:
        self.debounce.stop()
        self.update_chips()
        query = self.query.text().strip()
        try:
            has_filters = self.search_bar.filters().active
        except UsageError as error:
            self.results.set_hits([])
            self.results_header.setText(str(error)[:1].upper() + str(error)[1:])
            return
        if not query and not has_filters:
            self.results.set_hits([])
            self.results_header.setText("Type to search.")
            return
        if self.search_engine is None:
            self.results_header.setText("The index is opening: your search runs in a moment.")
            return
        self.request_id += 1
        if not self.reranking:
            self.results_header.setText("Searching…")
        self.request_search.emit(self.request_id, self.search_engine, query, self.search_options())

    def search_done(self, request: int, result: object) -> None:
        try:
            if request == self.request_id:
                self.show_result(result)
        finally:
            self.loader.go_on.set()  # an answer is on screen: the model may take Python's lock now

    def show_result(self, result: object) -> None:
        if self.reranking:
            self.rerank_in_place(result)
        else:
            self.results.set_hits(result.hits, result.channels)
            self.preview.clear()
            self.open_button.setEnabled(False)
            self.reveal_button.setEnabled(False)
        channels = ", ".join(result.channels)
        count = len(result.hits)
        self.results_header.setText(
            (f"{count} file{'s' if count != 1 else ''} · {result.mode} ({channels}) · {result.took_ms:.0f} ms"
             if count else f"No matches for “{result.query}” ({result.mode}: {channels})")
            + (f" — {result.note}" if result.note else ""))
        self.results_shown.emit(result)

    def rerank_in_place(self, result: object) -> None:
        """Show the model's ranking of the query whose word-ranked hits are on screen, keeping the
        selected hit selected and the list where the user scrolled it."""
        self.reranking = False
        selected = self.results_view.currentIndex().data(PathRole)
        scrolled = self.results_view.verticalScrollBar().value()
        self.results.set_hits(result.hits, result.channels)
        rows = [row for row, hit in enumerate(result.hits) if hit.path == selected]
        if rows:
            self.results_view.setCurrentIndex(self.results.index(rows[0]))
        self.results_view.verticalScrollBar().setValue(scrolled)

    def search_failed(self, request: int, message: str) -> None:
        if request == self.request_id:
            self.results.set_hits([])
            self.results_header.setText(message[:1].upper() + message[1:])

    # ----- preview and opening -----------------------------------------------------------------
    def show_preview(self, index: QModelIndex) -> None:
        hit = index.data(HitRole) if index.isValid() else None
        self.preview_pane.enable(hit is not None)
        if hit is not None:
            self.render_preview(hit, hit.chunk_id, hit.page)

    def render_preview(self, hit: object, chunk_id: int, page: int) -> None:
        """Ask the search thread for the hit's page context; :meth:`show_context` draws it."""
        if self.search_engine is None:
            return
        self.preview_request = (hit, chunk_id, page)
        self.request_context.emit(chunk_id, self.search_engine, PREVIEW_CHARS)

    def show_context(self, chunk_id: int, parts: tuple[str, str, str]) -> None:
        if self.preview_request is None or self.preview_request[1] != chunk_id:
            return  # the selection moved on meanwhile
        hit, _, page = self.preview_request
        before, text, after = parts
        others = [(hit.chunk_id, hit.page, hit.snippet)] + [(m.chunk_id, m.page, m.snippet) for m in hit.more]
        others = [o for o in others if o[0] != chunk_id]
        self.preview.setHtml(preview_html(hit.path, page, before, text, after, hit.terms, others, hit.unit))
        self.preview_shown.emit()

    def preview_link(self, url: QUrl) -> None:
        hit = self.results_view.currentIndex().data(HitRole)
        if hit is None or not url.toString().startswith("chunk:"):
            return
        chunk_id = int(url.toString().split(":", 1)[1])
        pages = {hit.chunk_id: hit.page, **{m.chunk_id: m.page for m in hit.more}}
        self.render_preview(hit, chunk_id, pages.get(chunk_id, hit.page))

    def open_index(self, index: QModelIndex) -> None:
        hit = index.data(HitRole) if index.isValid() else None
        if hit is not None:
            self.open_path(Path(hit.path), hit.page)

    def open_path(self, path: Path, page: int) -> None:
        """Open a file at a page with its application; scripts and programs are only shown in their folder."""
        from desktop_app.core import plan_open

        plan = plan_open(path, page)
        if plan.command is None:
            self.statusBar().showMessage(plan.reason, 8000)
            self.reveal_path(path)
            return
        if not QProcess.startDetached(plan.command[0], plan.command[1:]):
            self.show_banner(f"Could not open {path}: no application is set up to open it")

    def reveal_current(self) -> None:
        hit = self.results_view.currentIndex().data(HitRole)
        if hit is not None:
            self.reveal_path(Path(hit.path))

    def reveal_path(self, path: Path) -> None:
        from desktop_app.core import plan_show_in_folder

        command = plan_show_in_folder(path)
        QProcess.startDetached(command[0], command[1:])

    # ----- settings, messages, lifecycle -------------------------------------------------------
    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self, self.api_server.url if self.api_server else "", self.api_token)
        if not dialog.exec():
            return
        try:
            new = dialog.result_settings()
        except UsageError as error:
            QMessageBox.warning(self, "Settings", str(error))
            return
        self.apply_settings(new)

    def apply_settings(self, new: Settings) -> None:
        """Save settings; reload the engine when the model, device, index or chunking changed."""
        old, self.settings = self.settings, new
        save_settings(self.qsettings, new)
        if new.weights is not None:
            self.show_weights(new.weights)
        elif self.engine is not None:
            self.show_weights(self.engine.default_weights())
        if not new.watch_folders:
            self.stop_watching()
        elif not old.watch_folders:
            self.start_watching()
        if any(getattr(old, f) != getattr(new, f) for f in ("api_enabled", "api_port", "index_dir")):
            self.stop_sharing()
            if new.api_enabled:
                self.start_sharing()
        engine_fields = ("model", "device", "dtype", "index_dir", "chunk_tokens", "chunk_overlap",
                         "file_types", "exclude_patterns", "honour_gitignore", "ocr", "ocr_max_pages",
                         "ocr_max_seconds", "extract_workers")
        if any(getattr(old, f) != getattr(new, f) for f in engine_fields):
            if self.running:
                self.reload_after_run = True
                self.statusBar().showMessage("The new settings apply when the current indexing run ends", 8000)
                return
            self.close_engine()
            self.start_loading()

    def start_sharing(self) -> None:
        """"Allow other apps to search": the server of `desktop-search serve` on this window's engine, in a
        background thread (requests that come while the model loads or switches get 503 and a reason)."""
        from desktop_app.api.app import ServeOptions, create_app
        from desktop_app.api.server import ApiServer, bind
        from desktop_app.api.token import api_token
        from desktop_app.core import API_HOST, DesktopSearchError

        try:
            token = api_token(self.settings.index_dir)
            listening = bind(API_HOST, self.settings.api_port)
            options = ServeOptions(token.value, API_HOST, purpose="the Desktop Search window's API")
            self.api_server = ApiServer(create_app(lambda: self.engine, options), listening)
        except DesktopSearchError as error:
            self.show_banner(f"Other apps cannot search: {error}. Choose another port in File ▸ Settings.")
            return
        self.api_server.start()
        self.api_token = token.value
        self.statusBar().showMessage(f"Other apps can search at {self.api_server.url} (the token is in Settings)",
                                     10000)

    def stop_sharing(self) -> None:
        """Stop the API server: it finishes the requests in flight and cancels an indexing job it started
        (both brief: a job stops at its next batch)."""
        if self.api_server is not None:
            self.api_server.stop()
            self.api_server, self.api_token = None, ""

    def show_banner(self, message: str, notice: bool = False) -> None:
        """A message above the results: an error (red), or a notice (blue) that is not a failure."""
        self.banner.setText(message)
        self.banner.setProperty("notice", notice)
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner.show()
        if not notice:
            log.warning("shown to the user: %s", message)
            self.error_shown.emit(message)

    def hide_banner(self) -> None:
        self.banner.hide()

    def show_about(self) -> None:
        from desktop_app.gui.about import about_html

        QMessageBox.about(self, "About Desktop Search",
                          about_html(self.engine, str(self.settings.index_dir), self.qsettings.fileName(),
                                     str(log_path())))

    def activate(self, paths: list[str]) -> None:
        """Another launch asked for this window: bring it to the front and index its folders."""
        self.setWindowState((self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive)
        self.show()
        self.raise_()
        self.activateWindow()
        if paths:
            self.add_paths([Path(p) for p in paths])

    def restore_geometry(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)

    def close_engine(self) -> None:
        self.stop_watching()
        for engine in {id(e): e for e in (self.engine, self.search_engine) if e is not None}.values():
            engine.close()
        self.engine = self.search_engine = None

    def closeEvent(self, event: object) -> None:  # noqa: N802
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.model_offer.shut_down()
        if self.control is not None:
            self.control.cancel()
        self.stop_sharing()
        for thread in self.threads:
            thread.quit()
        for thread in self.threads:
            thread.wait()  # a cancelled run stops at its next batch; the store closes only after it
        self.close_engine()
        super().closeEvent(event)


def load_style(app: QApplication) -> None:
    style = RESOURCES / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def run(argv: list[str] | None = None) -> int:
    """Open the window (or hand ``argv``'s folders to the one already open) and run until it closes."""
    from desktop_app.core import share_the_interpreter_finely
    from desktop_app.gui.single_instance import SingleInstance, instance_name

    argv = sys.argv if argv is None else argv
    problem = None if QApplication.instance() else platform_problem()
    if problem:
        print(f"desktop-search: {problem}", file=sys.stderr)
        return 1
    start_logging()
    share_the_interpreter_finely()
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Desktop Search")
    app.setOrganizationName("DesktopSearch")
    app.setDesktopFileName("desktop-search")
    paths = [Path(arg) for arg in argv[1:] if not arg.startswith("-")]
    instance = SingleInstance(instance_name(load_settings(open_qsettings()).index_dir))
    if not instance.claim(paths):
        return 0
    app.aboutToQuit.connect(instance.release)
    load_style(app)
    app.setWindowIcon(QIcon.fromTheme("desktop-search", QIcon(str(RESOURCES / "icons" / "desktop-search.svg"))))
    window = MainWindow()
    instance.activated.connect(window.activate)
    window.show()
    if paths:
        window.add_paths(paths)
    return app.exec()
