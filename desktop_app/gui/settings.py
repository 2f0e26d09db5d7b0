"""QSettings-backed preferences and the dialog that edits them.

Stored values override the core defaults; ``DESKTOP_SEARCH_*`` variables still apply
underneath, so a packaged app and the CLI agree on the index location by default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop_app.core import API_HOST, DEVICES, DTYPES, EXTRACTORS, Settings, UsageError, Weights
from desktop_app.gui.plain import plain_label

ORGANIZATION = "DesktopSearch"
APPLICATION = "Desktop Search"


def open_qsettings(path: Path | None = None) -> QSettings:
    """The app's QSettings: the platform's native store, or an INI file (tests, portable use)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


@dataclass(frozen=True)
class WindowPrefs:
    """The window's own habits, which the core never needs: the tray, the search history, and whether each
    copy of a document is a hit of its own (``dup:show`` for every search) or copies are one hit."""

    keep_in_tray: bool = False
    remember_searches: bool = True
    every_copy: bool = False


def load_window_prefs(store: QSettings) -> WindowPrefs:
    flag = lambda key, default: str(store.value(key, "") or default) == "true"  # noqa: E731 - tiny accessor
    return WindowPrefs(keep_in_tray=flag("window/keep_in_tray", "false"),
                       remember_searches=flag("history/remember", "true"),
                       every_copy=flag("search/every_copy", "false"))


def save_window_prefs(store: QSettings, prefs: WindowPrefs) -> None:
    store.setValue("window/keep_in_tray", "true" if prefs.keep_in_tray else "false")
    store.setValue("history/remember", "true" if prefs.remember_searches else "false")
    store.setValue("search/every_copy", "true" if prefs.every_copy else "false")
    store.sync()


def split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())


def load_settings(store: QSettings) -> Settings:
    """Core settings from QSettings on top of the environment and defaults.

    Each stored value is applied on its own, so a bad one is skipped without losing the others
    (losing ``index_dir`` that way once opened another index without a word).
    """
    base = Settings.from_env()
    changes: dict[str, object] = {}
    text = lambda key: str(store.value(key, "") or "")  # noqa: E731 - tiny accessor
    if text("model"):
        changes["model"] = text("model")
    if text("index_dir"):
        changes["index_dir"] = Path(text("index_dir")).expanduser()
    if text("device") in DEVICES:
        changes["device"] = text("device")
    if text("dtype") in DTYPES:
        changes["dtype"] = text("dtype")
    for key, field_name in (("chunk_tokens", "chunk_tokens"), ("chunk_overlap", "chunk_overlap")):
        if text(key).isdigit():
            changes[field_name] = int(text(key))
    if text("weights"):
        try:
            changes["weights"] = Weights.parse(text("weights"))
        except UsageError:
            pass
    if store.contains("file_types"):
        changes["file_types"] = tuple(s.lower() if s.startswith(".") else "." + s.lower()
                                      for s in split_list(text("file_types")))
    if store.contains("exclude_patterns"):
        changes["exclude_patterns"] = split_list(text("exclude_patterns"))
    if text("watch_folders") in ("true", "false"):
        changes["watch_folders"] = text("watch_folders") == "true"
    if text("honour_gitignore") in ("true", "false"):
        changes["honour_gitignore"] = text("honour_gitignore") == "true"
    if text("ocr") in ("true", "false"):
        changes["ocr"] = text("ocr") == "true"
    if text("api_enabled") in ("true", "false"):
        changes["api_enabled"] = text("api_enabled") == "true"
    for key in ("ocr_max_pages", "extract_workers", "api_port"):
        if text(key).isdigit():
            changes[key] = int(text(key))
    try:
        changes["ocr_max_seconds"] = float(text("ocr_max_seconds"))
    except ValueError:
        pass
    settings = base
    for name, value in changes.items():  # chunk_tokens before chunk_overlap, which is checked against it
        try:
            settings = settings.with_(**{name: value})
        except UsageError:
            continue
    return settings


def save_settings(store: QSettings, settings: Settings) -> None:
    store.setValue("model", settings.model or "")
    store.setValue("index_dir", str(settings.index_dir))
    store.setValue("device", settings.device)
    store.setValue("dtype", settings.dtype)
    store.setValue("chunk_tokens", str(settings.chunk_tokens))
    store.setValue("chunk_overlap", str(settings.chunk_overlap))
    store.setValue("weights", settings.weights.as_text() if settings.weights else "")
    store.setValue("file_types", ", ".join(settings.file_types))
    store.setValue("exclude_patterns", ", ".join(settings.exclude_patterns))
    store.setValue("watch_folders", "true" if settings.watch_folders else "false")
    store.setValue("honour_gitignore", "true" if settings.honour_gitignore else "false")
    store.setValue("ocr", "true" if settings.ocr else "false")
    store.setValue("ocr_max_pages", str(settings.ocr_max_pages))
    store.setValue("ocr_max_seconds", f"{settings.ocr_max_seconds:g}")
    store.setValue("extract_workers", str(settings.extract_workers))
    store.setValue("api_enabled", "true" if settings.api_enabled else "false")
    store.setValue("api_port", str(settings.api_port))
    store.sync()


class SettingsDialog(QDialog):
    """Edits a :class:`Settings`; ``result_settings()`` returns the edited copy or raises UsageError,
    ``result_prefs()`` the window's own preferences."""

    clear_history = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None, api_url: str = "",
                 api_token: str = "", prefs: WindowPrefs | None = None, has_tray: bool = False) -> None:
        """``api_url`` and ``api_token`` are the running API server's, shown for other apps to use;
        ``has_tray``: the desktop shows tray icons, so the window may keep running in one."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.original = settings
        form = QFormLayout(self)
        self.model = QLineEdit(settings.model or "")
        self.model.setPlaceholderText("automatic: BAAI/bge-m3 if cached, else the lite model")
        form.addRow("Model (id or folder)", self.with_browse(self.model))
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device)
        form.addRow("Device", self.device)
        self.dtype = QComboBox()
        self.dtype.addItems(DTYPES)
        self.dtype.setCurrentText(settings.dtype)
        self.dtype.setToolTip("auto: fp16 on CUDA; on a CPU the runtime a one-time probe measured fastest among those\n"
                              "that keep the fp32 model's results (torch fp32/bf16, OpenVINO, ONNX Runtime int8)")
        form.addRow("Precision", self.dtype)
        self.chunk_tokens = QSpinBox()
        self.chunk_tokens.setRange(16, 8192)
        self.chunk_tokens.setValue(settings.chunk_tokens)
        form.addRow("Chunk size (tokens)", self.chunk_tokens)
        self.chunk_overlap = QSpinBox()
        self.chunk_overlap.setRange(0, 4095)
        self.chunk_overlap.setValue(settings.chunk_overlap)
        form.addRow("Chunk overlap (tokens)", self.chunk_overlap)
        self.weights = QLineEdit(settings.weights.as_text() if settings.weights else "")
        self.weights.setPlaceholderText("the model's defaults")
        self.weights.setToolTip("dense, sparse, ColBERT, keyword; empty: what the model is trusted with")
        form.addRow("Default weights D,S,C,K", self.weights)
        self.index_dir = QLineEdit(str(settings.index_dir))
        form.addRow("Index location", self.with_browse(self.index_dir))
        self.file_types = QLineEdit(", ".join(settings.file_types))
        self.file_types.setPlaceholderText("all supported: " + " ".join(sorted(EXTRACTORS))[:80] + "…")
        form.addRow("File types to include", self.file_types)
        self.exclude = QLineEdit(", ".join(settings.exclude_patterns))
        self.exclude.setToolTip(".gitignore patterns, comma-separated: 'build/' (folders), '*.log', '/top.txt' "
                                "(at the top of an indexed folder), 'docs/**/*.tmp', '!keep.log' (negation)")
        form.addRow("Exclude (.gitignore patterns)", self.exclude)
        self.gitignore = QCheckBox("Honour .gitignore files inside indexed folders")
        self.gitignore.setChecked(settings.honour_gitignore)
        form.addRow("", self.gitignore)
        self.watch = QCheckBox("Keep indexed folders in sync as files change")
        self.watch.setChecked(settings.watch_folders)
        form.addRow("Live sync", self.watch)
        self.ocr = QCheckBox("Read scanned pages and images (OCR, offline)")
        self.ocr.setChecked(settings.ocr)
        self.ocr.setToolTip("Scanned PDFs, scanned pages inside PDFs and PNG/JPEG/TIFF/WebP/BMP images are read "
                            "with RapidOCR on this computer. Off: images are left out of the index.")
        form.addRow("OCR", self.ocr)
        self.ocr_pages = QSpinBox()
        self.ocr_pages.setRange(1, 100_000)
        self.ocr_pages.setValue(settings.ocr_max_pages)
        self.ocr_pages.setSuffix(" pages")
        self.ocr_seconds = QSpinBox()
        self.ocr_seconds.setRange(1, 86_400)
        self.ocr_seconds.setValue(int(settings.ocr_max_seconds))
        self.ocr_seconds.setSuffix(" s")
        limits = _inline_row(self.ocr_pages, QLabel("or"), self.ocr_seconds)
        limits.setToolTip("OCR of one file stops at whichever comes first, so one huge scan cannot stall indexing")
        form.addRow("OCR limit per file", limits)
        form.addRow("Other apps", self.sharing_row(settings, api_url))
        self.api_token = QLineEdit(api_token)
        self.api_token.setReadOnly(True)
        self.api_token.setPlaceholderText("shown here while other apps may search")
        self.api_token.setToolTip("Requests need the header 'Authorization: Bearer TOKEN'. The token is kept in the "
                                  "index folder's api-token file (DESKTOP_SEARCH_API_TOKEN overrides it).")
        form.addRow("API token", self.api_token)
        self.add_window_rows(form, prefs or WindowPrefs(), has_tray)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def sharing_row(self, settings: Settings, api_url: str) -> QWidget:
        """"Allow other apps to search" and its port: the HTTP server of `desktop-search serve`, this computer only."""
        self.api = QCheckBox("Allow other apps to search")
        self.api.setChecked(settings.api_enabled)
        self.api.setToolTip(f"Serves this index over HTTP to programs on this computer ({API_HOST}): the search page "
                            "and the JSON API of `desktop-search serve`. Off by default.")
        self.api_port = QSpinBox()
        self.api_port.setRange(0, 65535)
        self.api_port.setSpecialValueText("any free port")
        self.api_port.setValue(settings.api_port)
        return _inline_row(self.api, QLabel("port"), self.api_port,
                           *([plain_label(f"serving {api_url}")] if api_url else []))

    def add_window_rows(self, form: QFormLayout, prefs: WindowPrefs, has_tray: bool) -> None:
        """Keep running in the tray, and the recent searches offered as you type (with a button to forget them)."""
        self.keep_in_tray = QCheckBox("Keep running in the tray when the window closes")
        self.keep_in_tray.setChecked(prefs.keep_in_tray)
        self.keep_in_tray.setEnabled(has_tray)
        self.keep_in_tray.setToolTip("Indexing and live sync go on, and the quick search box stays a key away; "
                                     "Quit in the tray's menu ends the app" if has_tray else
                                     "This desktop shows no tray icons: closing the window ends the app")
        form.addRow("Tray", self.keep_in_tray)
        self.remember_searches = QCheckBox("Remember recent searches")
        self.remember_searches.setChecked(prefs.remember_searches)
        self.remember_searches.setToolTip("Kept on this computer with these settings and offered as you type; "
                                          "turning it off forgets them")
        clear = QPushButton("Clear history")
        clear.clicked.connect(lambda: (self.clear_history.emit(), clear.setText("History cleared")))
        form.addRow("Search history", _inline_row(self.remember_searches, clear))
        self.every_copy = QCheckBox("Show every copy of a document as its own hit")
        self.every_copy.setChecked(prefs.every_copy)
        self.every_copy.setToolTip("Off: a document found in several places (the same file, or nearly the same "
                                   "text) is one hit that says \"also in N places\". dup:show in a search does "
                                   "this for that search only")
        form.addRow("Copies", self.every_copy)

    def result_prefs(self) -> WindowPrefs:
        return WindowPrefs(keep_in_tray=self.keep_in_tray.isChecked(),
                           remember_searches=self.remember_searches.isChecked(),
                           every_copy=self.every_copy.isChecked())

    def with_browse(self, line: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(line)
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self.browse_into(line))
        layout.addWidget(browse)
        return row

    def browse_into(self, line: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", line.text() or str(Path.home()))
        if folder:
            line.setText(folder)

    def result_settings(self) -> Settings:
        types = tuple(t.lower() if t.startswith(".") else "." + t.lower() for t in split_list(self.file_types.text()))
        weights = Weights.parse(self.weights.text()) if self.weights.text().strip() else None
        return replace(self.original, weights=weights).with_(
            model=self.model.text().strip(),
            device=self.device.currentText(),
            dtype=self.dtype.currentText(),
            chunk_tokens=self.chunk_tokens.value(),
            chunk_overlap=self.chunk_overlap.value(),
            index_dir=Path(self.index_dir.text()).expanduser(),
            file_types=types,
            exclude_patterns=split_list(self.exclude.text()),
            watch_folders=self.watch.isChecked(),
            honour_gitignore=self.gitignore.isChecked(),
            ocr=self.ocr.isChecked(),
            ocr_max_pages=self.ocr_pages.value(),
            ocr_max_seconds=float(self.ocr_seconds.value()),
            api_enabled=self.api.isChecked(),
            api_port=self.api_port.value(),
        )


def _inline_row(*widgets: QWidget) -> QWidget:
    """Widgets side by side in one form row, flush with the other rows."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return row
