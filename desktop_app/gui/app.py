"""The main window: folders on the left, search and results in the middle, preview on the right.

The window lays out the panes, the menus and drops; four controllers do the rest: the model's
life (``model_control``), indexing (``indexing``), searching (``searching``) and sharing the index
with other apps (``sharing``). The quick search box (``quick``) and the tray icon (``tray``) ask
the same controllers. The window shows before torch is imported.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
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
from desktop_app.gui.history import SearchHistory
from desktop_app.gui.indexing import IndexingController
from desktop_app.gui.keys import keyed_action
from desktop_app.gui.menus import build_menus
from desktop_app.gui.model_control import ModelController
from desktop_app.gui.model_offer import ModelOfferPanel
from desktop_app.gui.panes import FoldersPane, PreviewPane, ProgressPane, ResultsPane, SearchBar
from desktop_app.gui.plain import plain_label
from desktop_app.gui.platform_check import platform_problem
from desktop_app.gui.quick import QuickSearch
from desktop_app.gui.results import ResultsModel
from desktop_app.gui.searching import SearchController
from desktop_app.gui.settings import (
    SettingsDialog,
    WindowPrefs,
    load_settings,
    load_window_prefs,
    open_qsettings,
    save_settings,
    save_window_prefs,
)
from desktop_app.gui.sharing import SharingController
from desktop_app.gui.tray import Tray, tray_available

log = logging.getLogger("desktop_search.gui")
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


class MainWindow(QMainWindow):
    """Lays out the panes and menus, takes drops, and wires the controllers to each other."""

    error_shown = Signal(str)
    shut_down = Signal()  # the window closed for good (not hidden in the tray): the app may end

    def __init__(self, qsettings: QSettings | None = None, autoload: bool = True) -> None:
        super().__init__()
        self.qsettings = qsettings or open_qsettings()
        self.settings: Settings = load_settings(self.qsettings)
        self.prefs: WindowPrefs = load_window_prefs(self.qsettings)
        self.history = SearchHistory(self.qsettings, self.prefs.remember_searches)
        self.files_dialog: FilesDialog | None = None
        self._quitting = self._closed = False
        self.setWindowTitle("Desktop Search — loading model…")
        self.setAcceptDrops(True)
        self._build_panes()
        self.rebuild_action = keyed_action(self, "&Rebuild with this model…", "Ctrl+Shift+R", None,
                                           tip="Re-encode every indexed folder with the model chosen in Settings")
        self.rebuild_action.setEnabled(False)
        self._build_controllers()
        build_menus(self)
        self._build_habits()
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

    def _build_controllers(self) -> None:
        """The controllers observe the core and each other; the window relays their messages."""
        self.model_control = ModelController(self, lambda: self.settings, self.qsettings,
                                             lambda: list(self.indexing.known_roots), self.model_label,
                                             self.rebuild_button, self.rebuild_action, self.model_offer)
        self.indexing = IndexingController(self, self.model_control, lambda: self.settings, self.folders_pane,
                                           self.progress_pane)
        self.searching = SearchController(self, self.model_control, lambda: self.settings, self.search_bar,
                                          self.results_pane, self.preview_pane, self.results,
                                          lambda: self.prefs.every_copy, lambda: self.quick.awaits_answer())
        self.sharing = SharingController(self, lambda: self.model_control.engine, self.indexing.jobs)
        for controller in (self.model_control, self.indexing, self.searching, self.sharing):
            controller.message.connect(self.statusBar().showMessage)
            controller.banner.connect(self.show_banner)
        self.model_control.banner_cleared.connect(self.banner.hide)
        self.model_control.reload_wanted.connect(lambda: self.indexing.when_idle(self.model_control.reload))
        self.model_control.settings_wanted.connect(self.apply_settings)
        self.indexing.roots_changed.connect(self.search_bar.set_folders)
        self.indexing.finished.connect(lambda _: self.searching.search_again())

    def _build_habits(self) -> None:
        """Recent searches offered as you type, the quick search box, and the tray icon where there is one."""
        self.history.offer_in(self.search_bar.query)
        self.searching.settled.connect(self.history.record)
        self.quick = QuickSearch(self, lambda: self.model_control.search_engine, lambda: self.settings.weights,
                                 self.searching.open_path, self.searching.reveal_path, lambda: self.prefs.every_copy)
        self.quick.settled.connect(self.history.record)
        self.quick.answered.connect(self.model_control.answer_shown)
        self.quick.box.hidden.connect(self._quick_hidden)
        self.model_control.opened.connect(lambda _: self.quick.search_again())
        self.indexing.finished.connect(lambda _: self.quick.search_again())
        self.tray = Tray(self, QApplication.windowIcon(), self.show_quick, lambda: self.activate([]),
                         self.indexing.pause_or_resume, self.indexing.paused_state, self.quit_app) \
            if tray_available() else None

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
        dialog = SettingsDialog(self.settings, self, sharing.server.url if sharing.server else "", sharing.token,
                                self.prefs, self.tray is not None)
        dialog.clear_history.connect(self.history.clear)
        if not dialog.exec():
            return
        self.apply_prefs(dialog.result_prefs())
        try:
            new = dialog.result_settings()
        except UsageError as error:
            QMessageBox.warning(self, "Settings", str(error))
            return
        self.apply_settings(new)

    def apply_prefs(self, prefs: WindowPrefs) -> None:
        """Save the window's own preferences; turning the history off forgets it, and showing copies
        otherwise searches again."""
        copies_changed = prefs.every_copy != self.prefs.every_copy
        self.prefs = prefs
        save_window_prefs(self.qsettings, prefs)
        self.history.set_remember(prefs.remember_searches)
        if copies_changed:
            self.searching.search_again()
            self.quick.search_again()

    # ----- the keyboard's ways in ------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search_bar.query.setFocus()
        self.search_bar.query.selectAll()

    def focus_filters(self) -> None:
        self.search_bar.type_box.setFocus()

    def focus_preview(self) -> None:
        self.preview_pane.browser.setFocus()

    def show_quick(self) -> None:
        self.quick.show()

    def quit_app(self) -> None:
        """End the app, even where closing the window only hides it in the tray."""
        self._quitting = True
        self.close()

    @property
    def keeps_running_in_tray(self) -> bool:
        return self.tray is not None and self.prefs.keep_in_tray and not self._quitting

    def _quick_hidden(self) -> None:
        """The box was all there was on screen: with no window and no tray to stay in, the app ends."""
        if not self._closed and not self.isVisible() and not self.keeps_running_in_tray:
            self.quit_app()

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
        """Hide in the tray when the user chose so (indexing and live sync go on), else shut everything down."""
        if self.isVisible():
            self.qsettings.setValue("window/geometry", self.saveGeometry())
        if self.keeps_running_in_tray:
            event.ignore()
            self.hide()
            return
        if self._closed:
            return
        self._closed = True
        self.quick.close()
        if self.tray is not None:
            self.tray.hide()
        self.model_offer.shut_down()
        self.sharing.stop()
        self.indexing.close()  # a cancelled run stops at its next batch; the index closes only after it
        self.searching.close()
        self.model_control.close()
        super().closeEvent(event)
        self.shut_down.emit()


def load_style(app: QApplication) -> None:
    style = RESOURCES / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def launch(window: MainWindow, paths: list[Path], quick: bool) -> None:
    """Show what the launch asked for: the quick search box alone (the window on demand), or the window;
    and index the folders it was given."""
    if quick:
        window.show_quick()
    else:
        window.show()
    if paths:
        window.indexing.add_paths(paths)


def run(argv: list[str] | None = None) -> int:
    """Open the window (or hand ``argv``'s folders to the one already open) and run until it closes;
    ``--quick`` shows the quick search box instead (the running instance's, when there is one)."""
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
    quick = "--quick" in argv[1:]
    instance = SingleInstance(instance_name(load_settings(open_qsettings()).index_dir))
    if not instance.claim(paths, quick):
        return 0
    app.aboutToQuit.connect(instance.release)
    load_style(app)
    app.setWindowIcon(QIcon.fromTheme("desktop-search", QIcon(str(RESOURCES / "icons" / "desktop-search.svg"))))
    app.setQuitOnLastWindowClosed(False)  # the window says when the app ends: it may live on in the tray
    window = MainWindow()
    window.shut_down.connect(app.quit)
    instance.activated.connect(window.activate)
    instance.quick_wanted.connect(window.show_quick)
    launch(window, paths, quick)
    return app.exec()
