"""Searching in the window: queries as you type, filters and their chips, results, the preview of a hit
in its page, opening a file, more like this, and the file list's pages.

Every read runs in the search thread, in order; an answer carries the id of the request it answers,
so one that arrives after a newer query is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QObject, QPoint, QProcess, Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from desktop_app.core import FILTER_KEYS, SYNTAX_HELP, Filters, SearchRequest, Settings, UsageError, Weights
from desktop_app.gui.files_view import FilesDialog
from desktop_app.gui.panes import PreviewPane, ResultsPane, SearchBar
from desktop_app.gui.results import HitRole, PathRole, ResultsModel, preview_html
from desktop_app.gui.worker import Loaded, SearchWorker, start_in_thread

if TYPE_CHECKING:
    from desktop_app.core import Engine, Hit, SearchResult
    from desktop_app.gui.model_control import ModelController

SEARCH_DEBOUNCE_MS = 250
RESULT_FILES = 30
PREVIEW_CHARS = 600


class SearchController(QObject):
    """Drives the search bar, the results and the preview pane over the search thread."""

    results_shown = Signal(object)  # the SearchResult now on screen
    settled = Signal(str)  # a query the user acted on (Enter, or opening a hit): worth remembering
    preview_shown = Signal()
    message = Signal(str, int)
    banner = Signal(str, bool)
    request_search = Signal(int, object, str, dict)
    request_context = Signal(int, object, int)
    request_like = Signal(int, object, int)
    request_files = Signal(int, object, str, bool, int, int)

    def __init__(self, window: QWidget, model: ModelController, settings_of: Callable[[], Settings],
                 search_bar: SearchBar, results_pane: ResultsPane, preview_pane: PreviewPane,
                 results: ResultsModel, every_copy_of: Callable[[], bool] = lambda: False,
                 answered_elsewhere: Callable[[], bool] = lambda: False) -> None:
        """``every_copy_of`` says whether each copy of a document is shown as a hit of its own;
        ``answered_elsewhere`` whether another box (the quick search) holds a query typed at launch, whose
        answer lets the model load instead."""
        super().__init__(window)
        self._window, self._model, self._settings_of = window, model, settings_of
        self._every_copy_of, self._answered_elsewhere = every_copy_of, answered_elsewhere
        self._bar, self._view, self._header = search_bar, results_pane.view, results_pane.header
        self._preview_pane, self.results = preview_pane, results
        self.request_id = 0
        self._reranking = False  # the list shown was ranked by words; the model's ranking replaces it in place
        self._preview_request: tuple[Hit, int, int] | None = None
        self._worker = SearchWorker(newest=lambda: self.request_id)
        self._thread = start_in_thread(self._worker, "search", self)
        self._worker.done.connect(self._search_done)
        self._worker.failed.connect(self._search_failed)
        self._worker.context_ready.connect(self._show_context)
        self.request_search.connect(self._worker.search)
        self.request_context.connect(self._worker.context)
        self.request_like.connect(self._worker.like)
        self.request_files.connect(self._worker.files_page)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.run_search)
        search_bar.typed.connect(self._debounce.start)
        search_bar.search_now.connect(self.run_search)
        search_bar.query.returnPressed.connect(lambda: self.settled.emit(search_bar.query.text()))
        search_bar.reset_weights.connect(self.reset_weights)
        search_bar.help_wanted.connect(self.show_syntax_help)
        self._view.activated.connect(self.open_index)
        self._view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._view.customContextMenuRequested.connect(self._result_menu)
        self._view.selectionModel().currentChanged.connect(lambda current, _: self._show_preview(current))
        preview_pane.browser.anchorClicked.connect(self._preview_link)
        preview_pane.open_button.clicked.connect(lambda: self.open_index(self._view.currentIndex()))
        preview_pane.reveal_button.clicked.connect(self.reveal_current)
        model.opened.connect(self._engine_opened)
        model.ready.connect(self._engine_ready)

    def run_search(self) -> None:
        self._debounce.stop()
        self._update_chips()
        query = self._bar.query.text().strip()
        try:
            has_filters = self._bar.filters().active
        except UsageError as error:
            self._show_problem(str(error))
            return
        if not query and not has_filters:
            self.results.set_hits([])
            self._header.setText("Type to search.")
            return
        if self._model.search_engine is None:
            self._header.setText("The index is opening: your search runs in a moment.")
            return
        self.request_id += 1
        if not self._reranking:
            self._header.setText("Searching…")
        self.request_search.emit(self.request_id, self._model.search_engine, query, self._request(query).options())

    def search_again(self) -> None:
        """The index changed (a run ended): the query on screen is answered again."""
        if self._bar.query.text().strip() and self._model.search_engine is not None:
            self.run_search()

    def more_like(self, hit: Hit) -> None:
        """Search by the hit's own stored vectors; the results replace the list like a search."""
        if self._model.engine is None:
            return
        self.request_id += 1
        self._header.setText(f"Looking for passages like {Path(hit.path).name}…")
        self.request_like.emit(self.request_id, self._model.engine, hit.chunk_id)

    def show_weights(self, weights: Weights) -> None:
        self._bar.show_weights(weights)

    def reset_weights(self) -> None:
        """Back to the model's own fusion (dense + keyword for the lite model, BGE-M3's for BGE-M3)."""
        if self._model.engine is not None:
            self.show_weights(self._model.engine.default_weights())
            self.run_search()

    def show_syntax_help(self) -> None:
        QMessageBox.information(self._window, "Search syntax", SYNTAX_HELP)

    def files_dialog(self) -> FilesDialog:
        """The Files view, its pages read on the search thread; it opens and reveals files like a hit."""
        dialog = FilesDialog(self._window)
        dialog.model.need_page.connect(
            lambda request, text, failed, offset, limit: self._model.engine is not None and self.request_files.emit(
                request, self._model.engine, text, failed, offset, limit))
        self._worker.files_ready.connect(dialog.model.add_page)
        dialog.open_file.connect(lambda path: self.open_path(Path(path), 1))
        dialog.reveal_file.connect(lambda path: self.reveal_path(Path(path)))
        return dialog

    def open_index(self, index: QModelIndex) -> None:
        hit = index.data(HitRole) if index.isValid() else None
        if hit is not None:
            self.settled.emit(self._bar.query.text())
            self.open_path(Path(hit.path), hit.page)

    def current_hit(self) -> Hit | None:
        return self._view.currentIndex().data(HitRole)

    def move_selection(self, step: int) -> None:
        """Select the next (``step`` 1) or previous (-1) hit, the first when none is; its preview follows."""
        rows = self.results.rowCount()
        if not rows:
            return
        row = self._view.currentIndex().row()
        row = 0 if row < 0 else max(0, min(rows - 1, row + step))
        self._view.setCurrentIndex(self.results.index(row))

    def open_current(self) -> None:
        """Open the selected hit, or the first one when none is selected."""
        current = self._view.currentIndex()
        self.open_index(current if current.isValid() else self.results.index(0))

    def toggle_copies_current(self) -> None:
        """List the selected hit's copies on its card, or fold them away (the card's "also in" link)."""
        current = self._view.currentIndex()
        if current.isValid():
            self.results.toggle_copies(current.row())

    def more_like_current(self) -> None:
        hit = self.current_hit()
        if hit is not None:
            self.more_like(hit)

    def open_path(self, path: Path, page: int) -> None:
        """Open a file at a page with its application; scripts and programs are only shown in their folder."""
        from desktop_app.core import plan_open

        plan = plan_open(path, page)
        if plan.command is None:
            self.message.emit(plan.reason, 8000)
            self.reveal_path(path)
            return
        if not QProcess.startDetached(plan.command[0], plan.command[1:]):
            self.banner.emit(f"Could not open {path}: no application is set up to open it", False)

    def reveal_current(self) -> None:
        hit = self.current_hit()
        if hit is not None:
            self.reveal_path(Path(hit.path))

    def reveal_path(self, path: Path) -> None:
        from desktop_app.core import plan_show_in_folder

        command = plan_show_in_folder(path)
        QProcess.startDetached(command[0], command[1:])

    def close(self) -> None:
        self._thread.quit()
        self._thread.wait()

    def _engine_opened(self, engine: Engine) -> None:
        """The index is open and its model loading: a query typed now is answered by its words first."""
        if self._bar.query.text().strip():
            self.run_search()  # the model loads once its answer is on screen
        elif not self._answered_elsewhere():
            self._model.answer_shown()

    def _engine_ready(self, loaded: Loaded, rebuild: list[str]) -> None:
        engine = loaded.engine
        self._bar.colbert_box.setChecked(engine.on_gpu)
        self.show_weights(self._settings_of().weights or engine.default_weights())
        if self._bar.query.text().strip():
            self._reranking = True  # the same list again, ranked by meaning: selection and scroll stay
            self.run_search()

    def _request(self, query: str) -> SearchRequest:
        """The search the bar asks for, as the CLI's flags and the API's JSON body are turned into one."""
        return SearchRequest(query, RESULT_FILES, self._bar.mode.currentData(), self._bar.weights(),
                             self._bar.colbert_box.isChecked(),
                             filters=self._bar.filters().merged(Filters(every_copy=self._every_copy_of())))

    def _update_chips(self) -> None:
        """Chips for the filter row's values and the operators typed into the box."""
        typed = [word for word in self._bar.query.text().split()
                 if ":" in word and word.split(":", 1)[0].lower() in FILTER_KEYS]
        self._bar.show_chips(typed, self._bar.row_filters())

    def _search_done(self, request: int, result: SearchResult) -> None:
        try:
            if request == self.request_id:
                self._show_result(result)
        finally:
            self._model.answer_shown()

    def _show_result(self, result: SearchResult) -> None:
        if self._reranking:
            self._rerank_in_place(result)
        else:
            self.results.set_hits(result.hits, result.channels)
            self._preview_pane.browser.clear()
            self._preview_pane.enable(False)
        channels = ", ".join(result.channels)
        count = len(result.hits)
        self._header.setText(
            (f"{count} file{'s' if count != 1 else ''} · {result.mode} ({channels}) · {result.took_ms:.0f} ms"
             if count else f"No matches for “{result.query}” ({result.mode}: {channels})")
            + (f" — {result.note}" if result.note else ""))
        self.results_shown.emit(result)

    def _rerank_in_place(self, result: SearchResult) -> None:
        """Show the model's ranking of the query whose word-ranked hits are on screen, keeping the
        selected hit selected and the list where the user scrolled it."""
        self._reranking = False
        selected = self._view.currentIndex().data(PathRole)
        scrolled = self._view.verticalScrollBar().value()
        self.results.set_hits(result.hits, result.channels)
        rows = [row for row, hit in enumerate(result.hits) if hit.path == selected]
        if rows:
            self._view.setCurrentIndex(self.results.index(rows[0]))
        self._view.verticalScrollBar().setValue(scrolled)

    def _search_failed(self, request: int, message: str) -> None:
        if request == self.request_id:
            self._show_problem(message)

    def _show_problem(self, message: str) -> None:
        self.results.set_hits([])
        self._header.setText(message[:1].upper() + message[1:])

    def _result_menu(self, position: QPoint) -> None:
        """Right-click on a hit: more like this, open, show in folder."""
        index = self._view.indexAt(position)
        hit = index.data(HitRole) if index.isValid() else None
        if hit is None:
            return
        menu = QMenu(self._window)
        menu.addAction("More like this", lambda: self.more_like(hit))
        menu.addAction("Open", lambda: self.open_index(index))
        menu.addAction("Show in folder", self.reveal_current)
        menu.exec(self._view.viewport().mapToGlobal(position))

    def _show_preview(self, index: QModelIndex) -> None:
        hit = index.data(HitRole) if index.isValid() else None
        self._preview_pane.enable(hit is not None)
        if hit is not None:
            self._render_preview(hit, hit.chunk_id, hit.page)

    def _render_preview(self, hit: Hit, chunk_id: int, page: int) -> None:
        """Ask the search thread for the hit's page context; :meth:`_show_context` draws it."""
        if self._model.search_engine is None:
            return
        self._preview_request = (hit, chunk_id, page)
        self.request_context.emit(chunk_id, self._model.search_engine, PREVIEW_CHARS)

    def _show_context(self, chunk_id: int, parts: tuple[str, str, str]) -> None:
        if self._preview_request is None or self._preview_request[1] != chunk_id:
            return  # the selection moved on meanwhile
        hit, _, page = self._preview_request
        before, text, after = parts
        others = [(hit.chunk_id, hit.page, hit.snippet)] + [(m.chunk_id, m.page, m.snippet) for m in hit.more]
        others = [o for o in others if o[0] != chunk_id]
        self._preview_pane.browser.setHtml(preview_html(hit.path, page, before, text, after, hit.terms, others,
                                                        hit.unit))
        self.preview_shown.emit()

    def _preview_link(self, url: QUrl) -> None:
        hit = self._view.currentIndex().data(HitRole)
        if hit is None or not url.toString().startswith("chunk:"):
            return
        chunk_id = int(url.toString().split(":", 1)[1])
        pages = {hit.chunk_id: hit.page, **{m.chunk_id: m.page for m in hit.more}}
        self._render_preview(hit, chunk_id, pages.get(chunk_id, hit.page))
