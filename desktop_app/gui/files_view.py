"""The Files view: every indexed file with its folder, size, date, chunks and state, filterable as you type.

Rows arrive a page at a time (Qt's ``canFetchMore``/``fetchMore``): the view asks for the next
page when it scrolls near the end, and the page is read on the search thread, so a list of
100,000 files opens at once and the window's thread never runs SQL.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from desktop_app.gui.plain import plain_label, plain_tooltip

PAGE = 500
COLUMNS = ("Name", "Folder", "Size", "Modified", "Chunks", "State")


class FilesModel(QAbstractTableModel):
    """Rows of ``Engine.files`` dictionaries, fetched page by page through ``need_page``."""

    need_page = Signal(int, str, bool, int, int)  # request, text, failed only, offset, limit

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.text, self.failed_only = "", False
        self.request = 0
        self.complete = False
        self.waiting = False

    def restart(self, text: str, failed_only: bool) -> None:
        """A new filter: forget the rows and ask for the first page."""
        self.beginResetModel()
        self.rows, self.text, self.failed_only = [], text, failed_only
        self.request += 1
        self.complete, self.waiting = False, False
        self.endResetModel()
        self.fetchMore(QModelIndex())

    def add_page(self, request: int, offset: int, rows: list[dict[str, object]]) -> None:
        if request != self.request or offset != len(self.rows):
            return  # an answer to an older filter
        self.waiting = False
        self.complete = len(rows) < PAGE
        if rows:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
            self.rows.extend(rows)
            self.endInsertRows()

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and not self.complete and not self.waiting

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if self.canFetchMore(parent):
            self.waiting = True
            self.need_page.emit(self.request, self.text, self.failed_only, len(self.rows), PAGE)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return [Path(str(row["path"])).name, row["folder"], f"{row['size']:,}", str(row["mtime"])[:16].replace(
                "T", " "), row["chunks"], row["state"]][index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            reason = f"\n{row['reason']}" if row["reason"] else ""
            return plain_tooltip(f"{row['path']}{reason}")
        if role == Qt.ItemDataRole.UserRole:
            return row["path"]
        return None


class FilesDialog(QDialog):
    """The Files window: a filter box, "failed only", the table, and actions on the selected file."""

    open_file = Signal(str)
    reveal_file = Signal(str)
    reindex_file = Signal(str)
    remove_file = Signal(str)

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Indexed files")
        self.resize(1000, 600)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by path…")
        self.filter.setClearButtonEnabled(True)
        row.addWidget(self.filter, 1)
        self.failed_only = QCheckBox("Failed only")
        row.addWidget(self.failed_only)
        layout.addLayout(row)
        self.model = FilesModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        for label, signal in (("Open", self.open_file), ("Show in folder", self.reveal_file),
                              ("Re-index this file", self.reindex_file), ("Remove from the index", self.remove_file)):
            button = QPushButton(label)
            button.clicked.connect(lambda _checked=False, s=signal: self.act(s))
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.count = plain_label()
        buttons.addWidget(self.count)
        layout.addLayout(buttons)
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(200)
        self.debounce.timeout.connect(self.reload)
        self.filter.textChanged.connect(lambda _: self.debounce.start())
        self.failed_only.toggled.connect(lambda _: self.reload())
        self.model.rowsInserted.connect(self.show_count)
        self.model.modelReset.connect(self.show_count)

    def reload(self) -> None:
        self.model.restart(self.filter.text().strip(), self.failed_only.isChecked())

    def show_count(self) -> None:
        more = "" if self.model.complete else "+"
        self.count.setText(f"{len(self.model.rows):,}{more} files")

    def selected(self) -> str | None:
        index = self.table.currentIndex()
        return self.model.data(index, Qt.ItemDataRole.UserRole) if index.isValid() else None

    def act(self, signal: Signal) -> None:
        path = self.selected()
        if path is not None:
            signal.emit(path)
