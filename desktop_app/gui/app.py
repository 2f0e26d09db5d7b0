"""The main window: folders on the left, search and results in the middle, preview on the right.

The window lays out the panes, the menus and drops; four controllers do the rest: the model's
life (``model_control``), indexing (``indexing``), searching (``searching``) and sharing the index
with other apps (``sharing``). The window shows before torch is imported.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core import BGE_M3_WEIGHTS, Settings, UsageError, log_path, start_logging
from desktop_app.gui.files_view import FilesDialog
from desktop_app.gui.indexing import IndexingController
from desktop_app.gui.model_control import ModelController
from desktop_app.gui.model_offer import ModelOfferPanel
from desktop_app.gui.panes import FoldersPane, PreviewPane, ProgressPane, ResultsPane, SearchBar
from desktop_app.gui.plain import plain_label
from desktop_app.gui.platform_check import platform_problem
from desktop_app.gui.results import ResultsModel
from desktop_app.gui.searching import SearchController
from desktop_app.gui.settings import SettingsDialog, load_settings, open_qsettings, save_settings
from desktop_app.gui.sharing import SharingController

log = logging.getLogger("desktop_search.gui")
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


class MainWindow(QMainWindow):
    """Lays out the panes and menus, takes drops, and wires the controllers to each other."""

    error_shown = Signal(str)

    def __init__(self, qsettings: QSettings | None = None, autoload: bool = True) -> None:
        super().__init__()
        self.qsettings = qsettings or open_qsettings()
        self.settings: Settings = load_settings(self.qsettings)
        self.files_dialog: FilesDialog | None = None
        self.setWindowTitle("Desktop Search — loading model…")
        self.setAcceptDrops(True)
        self._build_panes()
        self._build_menu()
        self._build_controllers()
        self._restore_geometry()
        self.sharing.follow(None, self.settings)
        if autoload:
            QTimer.singleShot(0, self.model_control.start_loading)

    def _build_panes(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 10, 10, 6)
        self.search_bar = SearchBar(self.settings.weights or BGE_M3_WEIGHTS)
        layout.addWidget(self.search_bar)
        self.banner = plain_label()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.rebuild_button = QPushButton("Rebuild with this model")
        self.rebuild_button.setToolTip("Re-encode every indexed folder with the model chosen in Settings")
        self.rebuild_button.hide()
        layout.addWidget(self.rebuild_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.model_offer = ModelOfferPanel()
        layout.addWidget(self.model_offer)
        self.folders_pane = FoldersPane()
        self.folders_pane.add_folder.connect(self.choose_folder)
        self.results = ResultsModel()
        self.results_pane = ResultsPane(self.results)
        self.preview_pane = PreviewPane()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for pane, stretch in ((self.folders_pane, 0), (self.results_pane, 3), (self.preview_pane, 2)):
            splitter.addWidget(pane)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        splitter.setSizes([270, 620, 420])
        layout.addWidget(splitter, 1)
        self.progress_pane = ProgressPane()
        layout.addWidget(self.progress_pane)
        self.setCentralWidget(central)
        self.model_label = plain_label("Model: loading…")
        self.statusBar().addPermanentWidget(self.model_label)

    def _build_menu(self) -> None:
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
        self.rebuild_action.setEnabled(False)
        file_menu.insertAction(file_menu.actions()[-1], self.rebuild_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Desktop Search", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def _build_controllers(self) -> None:
        """The controllers observe the core and each other; the window relays their messages."""
        self.model_control = ModelController(self, lambda: self.settings, self.qsettings,
                                             lambda: list(self.indexing.known_roots), self.model_label,
                                             self.rebuild_button, self.rebuild_action, self.model_offer)
        self.indexing = IndexingController(self, self.model_control, lambda: self.settings, self.folders_pane,
                                           self.progress_pane)
        self.searching = SearchController(self, self.model_control, lambda: self.settings, self.search_bar,
                                          self.results_pane, self.preview_pane, self.results)
        self.sharing = SharingController(self, lambda: self.model_control.engine, self.indexing.jobs)
        for controller in (self.model_control, self.indexing, self.searching, self.sharing):
            controller.message.connect(self.statusBar().showMessage)
            controller.banner.connect(self.show_banner)
        self.model_control.banner_cleared.connect(self.banner.hide)
        self.model_control.reload_wanted.connect(lambda: self.indexing.when_idle(self.model_control.reload))
        self.model_control.settings_wanted.connect(self.apply_settings)
        self.indexing.roots_changed.connect(self.search_bar.set_folders)
        self.indexing.finished.connect(lambda _: self.searching.search_again())

    # ----- drops and menus ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and all(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.indexing.add_paths(paths)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to index", str(Path.home()))
        if folder:
            self.indexing.add_paths([Path(folder)])

    def show_files(self) -> None:
        """The Files view (one per window), reloaded after each indexing run while it is open."""
        if self.files_dialog is None:
            dialog = self.files_dialog = self.searching.files_dialog()
            dialog.reindex_file.connect(lambda path: self.indexing.submit("update", [path], rebuild=True))
            dialog.remove_file.connect(lambda path: self.indexing.submit("remove", [path]))
            self.indexing.finished.connect(lambda _: dialog.isVisible() and dialog.reload())
        self.files_dialog.show()
        self.files_dialog.raise_()
        self.files_dialog.reload()

    def edit_settings(self) -> None:
        sharing = self.sharing
        dialog = SettingsDialog(self.settings, self, sharing.server.url if sharing.server else "", sharing.token)
        if not dialog.exec():
            return
        try:
            new = dialog.result_settings()
        except UsageError as error:
            QMessageBox.warning(self, "Settings", str(error))
            return
        self.apply_settings(new)

    def apply_settings(self, new: Settings) -> None:
        """Save settings and hand them to the controllers; the index opens again (once indexing is idle)
        when the model, device, index or chunking changed."""
        old, self.settings = self.settings, new
        save_settings(self.qsettings, new)
        engine = self.model_control.engine
        if new.weights is not None or engine is not None:
            self.searching.show_weights(new.weights or engine.default_weights())
        self.indexing.watch(new.watch_folders)
        self.sharing.follow(old, new)
        if old.reopens_engine(new):
            self.indexing.when_idle(self.model_control.reload)

    def show_about(self) -> None:
        from desktop_app.gui.about import about_html

        QMessageBox.about(self, "About Desktop Search",
                          about_html(self.model_control.engine, str(self.settings.index_dir),
                                     self.qsettings.fileName(), str(log_path())))

    # ----- messages and the window's life ---------------------------------------------------------
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

    def activate(self, paths: list[str]) -> None:
        """Another launch asked for this window: bring it to the front and index its folders."""
        self.setWindowState((self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive)
        self.show()
        self.raise_()
        self.activateWindow()
        if paths:
            self.indexing.add_paths([Path(p) for p in paths])

    def _restore_geometry(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.model_offer.shut_down()
        self.sharing.stop()
        self.indexing.close()  # a cancelled run stops at its next batch; the index closes only after it
        self.searching.close()
        self.model_control.close()
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
        window.indexing.add_paths(paths)
    return app.exec()
