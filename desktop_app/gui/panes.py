"""The window's panes: search bar (with the fusion weights), folders, results, preview, progress.

Each pane owns its widgets and says what the user did through signals; the window's controllers
(model, indexing, searching, sharing) drive them, and the window holds no widget code of its own.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core import CHANNELS, MODES, Filters, Weights, filters_from
from desktop_app.gui.plain import plain_label, plain_tooltip
from desktop_app.gui.results import HitDelegate, ResultsModel

MODE_LABELS = {"hybrid": "Hybrid", "dense": "Dense", "sparse": "Sparse", "colbert": "ColBERT", "keyword": "Keyword"}
OFFLINE_NOTE = ("\nOffline (folder missing or drive unplugged): its files stay searchable and are brought up to "
                "date when it returns")


class SearchBar(QWidget):
    """Query box, mode, and the weights panel (sliders, the model's defaults, ColBERT re-rank)."""

    typed = Signal()
    search_now = Signal()
    reset_weights = Signal()
    help_wanted = Signal()

    def __init__(self, weights: Weights) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setObjectName("query")
        self.query.setPlaceholderText("Search your documents by meaning — e.g. how do wings stall")
        self.query.setClearButtonEnabled(True)
        self.query.textChanged.connect(lambda _: self.typed.emit())
        self.query.returnPressed.connect(self.search_now)
        row.addWidget(self.query, 1)
        self.mode = QComboBox()
        for mode in MODES:
            self.mode.addItem(MODE_LABELS[mode], mode)
        self.mode.setToolTip("Hybrid fuses the channels; the others rank by one channel alone")
        self.mode.currentIndexChanged.connect(lambda _: self.search_now.emit())
        row.addWidget(self.mode)
        self.weights_button = QPushButton("Weights")
        self.weights_button.setCheckable(True)
        row.addWidget(self.weights_button)
        layout.addLayout(row)
        layout.addLayout(self.build_filter_row())
        self.weights_panel = self.build_weights_panel()
        self.weights_button.toggled.connect(self.weights_panel.setVisible)
        layout.addWidget(self.weights_panel)
        self.show_weights(weights)

    def build_filter_row(self) -> QHBoxLayout:
        """Type, folder and date range, the chips of every active filter (typed ones too), and help."""
        row = QHBoxLayout()
        self.type_box = QComboBox()
        self.type_box.setEditable(True)
        self.type_box.addItems(["", "pdf", "docx", "md", "txt", "html", "py"])
        self.type_box.lineEdit().setPlaceholderText("any type")
        self.type_box.setMinimumWidth(100)
        self.folder_box = QComboBox()
        self.folder_box.setEditable(True)
        self.folder_box.lineEdit().setPlaceholderText("any folder")
        self.folder_box.setMinimumWidth(180)
        self.after_edit, self.before_edit = QLineEdit(), QLineEdit()
        for label, widget in (("Type", self.type_box), ("Folder", self.folder_box), ("After", self.after_edit),
                              ("Before", self.before_edit)):
            row.addWidget(QLabel(label))
            row.addWidget(widget)
        for edit in (self.after_edit, self.before_edit):
            edit.setPlaceholderText("YYYY-MM-DD")
            edit.setFixedWidth(100)
            edit.editingFinished.connect(self.search_now)
        for box in (self.type_box, self.folder_box):
            box.currentTextChanged.connect(lambda _: self.typed.emit())
        self.chips = QHBoxLayout()
        row.addLayout(self.chips)
        row.addStretch(1)
        help_button = QPushButton("?")
        help_button.setFixedWidth(28)
        help_button.setToolTip("Search syntax: phrases, exclusions, OR, ext:, in:, name:, after:, before:")
        help_button.clicked.connect(self.help_wanted)
        row.addWidget(help_button)
        return row

    def set_folders(self, folders: list[str]) -> None:
        current = self.folder_box.currentText()
        self.folder_box.blockSignals(True)
        self.folder_box.clear()
        self.folder_box.addItems([""] + folders)
        self.folder_box.setCurrentText(current)
        self.folder_box.blockSignals(False)

    def filters(self) -> Filters:
        """The filter row as the core's filters (a malformed date is a UsageError, shown like any other)."""
        options = {"ext": [self.type_box.currentText().strip()] if self.type_box.currentText().strip() else [],
                   "in": [self.folder_box.currentText().strip()] if self.folder_box.currentText().strip() else [],
                   "after": [self.after_edit.text().strip()] if self.after_edit.text().strip() else [],
                   "before": [self.before_edit.text().strip()] if self.before_edit.text().strip() else []}
        return filters_from(options, [])

    def row_filters(self) -> list[tuple[str, QWidget]]:
        """(chip text, widget) for each filled-in field of the filter row."""
        fields = (("ext", self.type_box, self.type_box.currentText()), ("in", self.folder_box,
                  self.folder_box.currentText()), ("after", self.after_edit, self.after_edit.text()),
                  ("before", self.before_edit, self.before_edit.text()))
        return [(f"{key}:{value.strip()}", widget) for key, widget, value in fields if value.strip()]

    def show_chips(self, typed: list[str], row_filters: list[tuple[str, QWidget]]) -> None:
        """One chip per active filter; its ✕ clears it (from the filter row, or out of the typed query)."""
        while self.chips.count():
            widget = self.chips.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for text, widget in row_filters:
            self.chips.addWidget(self.chip(text, lambda w=widget: self.clear_widget(w)))
        for token in typed:
            self.chips.addWidget(self.chip(token, lambda t=token: self.remove_token(t)))

    def chip(self, text: str, close: object) -> QPushButton:
        button = QPushButton(f"{text}  ✕")
        button.setObjectName("chip")
        button.setToolTip(plain_tooltip(f"Remove the filter {text}"))
        button.clicked.connect(lambda _checked=False: close())  # clicked passes "checked": not for close
        return button

    def clear_widget(self, widget: QWidget) -> None:
        if isinstance(widget, QComboBox):
            widget.setCurrentText("")
        else:
            widget.clear()
        self.search_now.emit()

    def remove_token(self, token: str) -> None:
        words = self.query.text().split()
        if token in words:
            words.remove(token)
        self.query.setText(" ".join(words))
        self.search_now.emit()

    def build_weights_panel(self) -> QFrame:
        panel = QFrame()
        panel.setObjectName("weights")
        row = QHBoxLayout(panel)
        row.setContentsMargins(4, 0, 4, 0)
        self.sliders: dict[str, QSlider] = {}
        for channel in CHANNELS:
            row.addWidget(QLabel({"colbert": "ColBERT", "keyword": "Keyword"}.get(channel, channel.title())))
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setFixedWidth(110)
            value = QLabel("0.00")
            slider.valueChanged.connect(lambda v, label=value: label.setText(f"{v / 100:.2f}"))
            slider.sliderReleased.connect(self.search_now)
            self.sliders[channel] = slider
            row.addWidget(slider)
            row.addWidget(value)
            row.addSpacing(8)
        reset = QPushButton("Model's defaults")
        reset.setToolTip("The fusion the loaded model is trusted with (Settings keep your own weights otherwise)")
        reset.clicked.connect(self.reset_weights)
        row.addWidget(reset)
        self.colbert_box = QCheckBox("Re-rank with ColBERT")
        self.colbert_box.setToolTip("Re-encodes the top 30 chunks: instant on a GPU, a few seconds on a CPU")
        self.colbert_box.toggled.connect(lambda _: self.search_now.emit())
        row.addWidget(self.colbert_box)
        row.addStretch(1)
        panel.hide()
        return panel

    def show_weights(self, weights: Weights) -> None:
        for channel, slider in self.sliders.items():
            slider.setValue(round(getattr(weights, channel) * 100))

    def weights(self) -> Weights:
        return Weights(*(self.sliders[c].value() / 100 for c in CHANNELS))


class FoldersPane(QWidget):
    """The indexed folders (files, chunks, offline ones greyed) and the files that failed, with why."""

    add_folder = Signal()
    reindex = Signal()
    remove = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.addWidget(QLabel("<b>Indexed folders</b>"))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Files", "Chunks"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setStretchLastSection(False)
        layout.addWidget(self.tree, 2)
        hint = QLabel("Drop folders or files here to index them")
        hint.setObjectName("hint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint)
        buttons = QHBoxLayout()
        self.add_button, reindex_button, remove_button = (QPushButton(label) for label in
                                                          ("Add folder…", "Re-index", "Remove"))
        for button, signal in ((self.add_button, self.add_folder), (reindex_button, self.reindex),
                               (remove_button, self.remove)):
            button.clicked.connect(signal)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.problems_label = QLabel("<b>Problems</b> (none)")
        layout.addWidget(self.problems_label)
        self.problems = QListWidget()
        self.problems.setWordWrap(True)
        layout.addWidget(self.problems, 1)

    def show_view(self, folders: list[dict[str, object]], failures: list[tuple[str, str]]) -> None:
        self.tree.clear()
        for root in folders:
            online = root["online"]
            name = (Path(root["path"]).name or root["path"]) + ("" if online else " (offline)")
            item = QTreeWidgetItem([name, f"{root['files']:,}", f"{root['chunks']:,}"])
            item.setToolTip(0, plain_tooltip(root["path"] + ("" if online else OFFLINE_NOTE)))
            if not online:
                item.setForeground(0, QBrush(QColor("#8a8a8a")))
            item.setData(0, Qt.ItemDataRole.UserRole, root["path"])
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            self.tree.addTopLevelItem(item)
        self.problems.clear()
        for path, reason in failures:
            item = QListWidgetItem(f"{Path(path).name} — {reason}")
            item.setToolTip(plain_tooltip(path))
            self.problems.addItem(item)
        self.problems_label.setText(f"<b>Problems</b> ({len(failures) or 'none'})")

    def selected(self) -> Path | None:
        item = self.tree.currentItem()
        return Path(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else None


class ResultsPane(QWidget):
    """The header line (count, mode, time) and the result cards."""

    def __init__(self, model: ResultsModel) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self.header = plain_label("Type to search. Drop a folder on the window to index it.")
        self.header.setObjectName("resultsHeader")
        layout.addWidget(self.header)
        self.view = QListView()
        self.view.setModel(model)
        self.view.setItemDelegate(HitDelegate(self.view))
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setUniformItemSizes(False)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        layout.addWidget(self.view, 1)
        self.view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Cards re-wrap their text when the list changes width."""
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self.view.scheduleDelayedItemsLayout()
        return super().eventFilter(watched, event)


class PreviewPane(QWidget):
    """The selected hit in its page context, with Open and Show in folder."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 0, 0)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.setPlaceholderText("Select a result to see it in context.")
        layout.addWidget(self.browser, 1)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.reveal_button = QPushButton("Show in folder")
        for button in (self.open_button, self.reveal_button):
            button.setEnabled(False)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

    def enable(self, on: bool) -> None:
        self.open_button.setEnabled(on)
        self.reveal_button.setEnabled(on)


class ProgressPane(QFrame):
    """Files done, tokens/s, ETA and the file at hand, with Pause and Cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("progress")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 4, 0, 0)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(260)
        self.bar.setFormat("%v / %m files")
        row.addWidget(self.bar)
        self.label = plain_label()
        row.addWidget(self.label, 1)
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        row.addWidget(self.pause_button)
        row.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str) -> None:
        self.show()
        self.bar.setRange(0, 0)
        self.label.setText(text)
        self.pause_button.setText("Pause")
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)

    def show_progress(self, progress: object, paused: bool) -> None:
        if progress.phase == "waiting":
            self.label.setText(progress.current[:1].upper() + progress.current[1:] + " — Cancel stops waiting")
            return
        if progress.phase not in ("indexing", "encoding"):
            self.label.setText({"scanning": "Scanning for changes…", "saving": "Saving the index…",
                                "done": "Done"}.get(progress.phase, progress.phase))
            return
        self.bar.setRange(0, max(progress.files_total, 1))
        self.bar.setValue(progress.files_done)
        self.bar.setFormat("%v / %m files by meaning" if progress.phase == "encoding" else "%v / %m files by words")
        rate = f" · {progress.tokens_per_s:,.0f} tokens/s" if progress.phase == "encoding" else ""
        name = f" · {Path(progress.current).name}" if progress.current else ""
        self.label.setText(f"{'Paused · ' if paused else ''}{progress.line()}{rate}{name}")
