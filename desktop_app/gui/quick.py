"""The quick search box: a small box centred on the screen, searched and acted on by keyboard alone.

Type, move through the hits with the arrow keys while the text keeps the focus, Enter opens the hit,
Ctrl+Enter shows it in its folder, Esc hides the box. It asks the window's engine as the window does:
the same pause in typing before a search, and an answer to an older request is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QFrame, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from desktop_app.core import Filters, SearchRequest
from desktop_app.gui.plain import plain_label
from desktop_app.gui.results import also_in
from desktop_app.gui.searching import SEARCH_DEBOUNCE_MS
from desktop_app.gui.worker import SearchWorker, start_in_thread

if TYPE_CHECKING:
    from desktop_app.core import Engine, Hit, SearchResult, Weights

QUICK_RESULTS = 8
BOX_WIDTH = 680
SNIPPET_CHARS = 160
HINT = "↑↓ choose · Enter open · Ctrl+Enter show in folder · Esc hide"


class QuickSearchBox(QFrame):
    """The box's widgets: the query, the hits (name and folder, then one line of snippet), a hint.

    The keys are read on the query line, so the text keeps the focus while the arrows move the choice.
    """

    typed = Signal()
    open_wanted = Signal(int)  # the chosen row
    reveal_wanted = Signal(int)
    hidden = Signal()

    def __init__(self) -> None:
        super().__init__(None, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint)
        self.setObjectName("quick")
        self.setWindowTitle("Desktop Search — quick search")
        self.setFixedWidth(BOX_WIDTH)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 8)
        self.query = QLineEdit()
        self.query.setObjectName("query")
        self.query.setPlaceholderText("Search your documents")
        self.query.textChanged.connect(lambda _: self.typed.emit())
        self.query.installEventFilter(self)
        layout.addWidget(self.query)
        self.hits = QListWidget()
        self.hits.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hits.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.hits.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.hits.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.hits.itemActivated.connect(lambda item: self.open_wanted.emit(self.hits.row(item)))
        self.hits.hide()
        layout.addWidget(self.hits)
        self.status = plain_label(HINT)
        self.status.setObjectName("quickHint")
        layout.addWidget(self.status)

    def show_hits(self, hits: list[Hit], status: str) -> None:
        """One two-line row per hit, the first chosen; the box grows to fit up to :data:`QUICK_RESULTS`."""
        self.hits.clear()
        for hit in hits:
            path = Path(hit.path)
            snippet = " ".join(hit.snippet.split())[:SNIPPET_CHARS]
            copies = f"  ·  {also_in(hit.duplicates_total)}" if hit.duplicates else ""
            item = QListWidgetItem(f"{path.name}  —  {path.parent}{copies}\n{snippet}")
            item.setToolTip("\n".join([hit.path, *hit.duplicates]))
            self.hits.addItem(item)
        self.hits.setVisible(bool(hits))
        if hits:
            self.hits.setCurrentRow(0)
            rows = sum(self.hits.sizeHintForRow(row) for row in range(min(len(hits), QUICK_RESULTS)))
            self.hits.setFixedHeight(rows + 2 * self.hits.frameWidth())
        self.status.setText(status)
        self.adjustSize()

    def chosen(self) -> int:
        return self.hits.currentRow()

    def present(self) -> None:
        """Show the box centred on the primary screen, its text selected so that typing replaces it."""
        self.adjustSize()
        screen = QGuiApplication.primaryScreen().availableGeometry()
        self.move(screen.center().x() - self.width() // 2, screen.top() + screen.height() // 4)
        self.show()
        self.raise_()
        self.activateWindow()
        self.query.setFocus()
        self.query.selectAll()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.query and event.type() == QEvent.Type.KeyPress:
            return self._key(event)
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        """Like a launcher's box, it goes away when the user turns to another window."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isVisible() and not self.isActiveWindow():
            self.hide()

    def hideEvent(self, event: QEvent) -> None:  # noqa: N802
        super().hideEvent(event)
        self.hidden.emit()

    def _key(self, event: QKeyEvent) -> bool:
        """Arrows and page keys move the choice, Enter acts on it, Esc hides; other keys edit the text."""
        key, rows = event.key(), self.hits.count()
        steps = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: QUICK_RESULTS,
                 Qt.Key.Key_PageUp: -QUICK_RESULTS}
        if key in steps:
            if rows:
                self.hits.setCurrentRow(max(0, min(rows - 1, self.chosen() + steps[key])))
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if rows and self.chosen() >= 0:
                wanted = self.reveal_wanted if event.modifiers() & Qt.KeyboardModifier.ControlModifier \
                    else self.open_wanted
                wanted.emit(self.chosen())
            return True
        if key == Qt.Key.Key_Escape:
            self.hide()
            return True
        return False


class QuickSearch(QObject):
    """Searches for the box on a search thread of its own, over the window's engine, and opens or
    reveals the chosen hit as the window does."""

    results_shown = Signal(object)  # the SearchResult now in the box
    answered = Signal()  # a search of the box's ended (hits, none, or a message): the model may load now
    settled = Signal(str)  # a query the user acted on: worth remembering
    request_search = Signal(int, object, str, dict)

    def __init__(self, parent: QObject, engine_of: Callable[[], Engine | None],
                 weights_of: Callable[[], Weights | None], open_path: Callable[[Path, int], None],
                 reveal_path: Callable[[Path], None], every_copy_of: Callable[[], bool] = lambda: False) -> None:
        super().__init__(parent)
        self._engine_of, self._weights_of, self._every_copy_of = engine_of, weights_of, every_copy_of
        self._open_path, self._reveal_path = open_path, reveal_path
        self.box = QuickSearchBox()
        self.request_id = 0
        self._hits: list[Hit] = []
        self._worker = SearchWorker(newest=lambda: self.request_id)
        self._thread = start_in_thread(self._worker, "quick search", self)
        self._worker.done.connect(self._search_done)
        self._worker.failed.connect(self._search_failed)
        self.request_search.connect(self._worker.search)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.run_search)
        self.box.typed.connect(self._debounce.start)
        self.box.open_wanted.connect(lambda row: self._act(row, reveal=False))
        self.box.reveal_wanted.connect(lambda row: self._act(row, reveal=True))

    def show(self) -> None:
        self.box.present()

    def run_search(self) -> None:
        self._debounce.stop()
        query = self.box.query.text().strip()
        engine = self._engine_of()
        if not query:
            self._show([], "")
            return
        if engine is None:
            self._show([], "The index is opening: your search runs in a moment.")
            return
        self.request_id += 1
        request = SearchRequest(query, QUICK_RESULTS, weights=self._weights_of(),
                                filters=Filters(every_copy=self._every_copy_of()))
        self.request_search.emit(self.request_id, engine, query, request.options())

    def awaits_answer(self) -> bool:
        """The box is up with a query in it (typed at launch, before the index opened)."""
        return self.box.isVisible() and bool(self.box.query.text().strip())

    def search_again(self) -> None:
        """The engine opened or the index changed: the query in the box is answered again."""
        if self.box.query.text().strip():
            self.run_search()

    def close(self) -> None:
        self.box.close()
        self._thread.quit()
        self._thread.wait()

    def _act(self, row: int, reveal: bool) -> None:
        """Open (or show in its folder) the hit at ``row``, remember the query and get out of the way."""
        if not 0 <= row < len(self._hits):
            return
        hit = self._hits[row]
        if reveal:
            self._reveal_path(Path(hit.path))
        else:
            self._open_path(Path(hit.path), hit.page)
        self.settled.emit(self.box.query.text())
        self.box.hide()

    def _show(self, hits: list[Hit], status: str) -> None:
        self._hits = list(hits)
        self.box.show_hits(self._hits, status or HINT)

    def _search_done(self, request: int, result: SearchResult) -> None:
        if request == self.request_id:
            self._show(result.hits, "" if result.hits else f"No matches for “{result.query}”")
            self.results_shown.emit(result)
            self.answered.emit()

    def _search_failed(self, request: int, message: str) -> None:
        if request == self.request_id:
            self._show([], message[:1].upper() + message[1:])
            self.answered.emit()
