"""The first-run offer to download BAAI/bge-m3, with a progress bar and Cancel.

The lite model keeps working meanwhile: the offer is a strip in the window, not a modal
dialog, and the download runs in its own thread (the transfer itself in a child process),
started only when the user asks for it.
"""

from __future__ import annotations

import html
import threading

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from desktop_app.core import DEFAULT_MODEL
from desktop_app.gui.worker import DownloadWorker

OFFER_TEXT = (f"You are using the small built-in <b>lite model</b>. Download <b>{DEFAULT_MODEL}</b> "
              "(about 2.3 GB, once) for much better results? Indexed folders are then re-encoded with it.")


class ModelOfferPanel(QFrame):
    """Offer, progress and outcome of one model download; ``downloaded`` carries the repo id."""

    downloaded = Signal(str)
    declined = Signal()
    request_download = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("offer")
        self.stop: threading.Event | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        self.text = QLabel(OFFER_TEXT)
        self.text.setWordWrap(True)
        row.addWidget(self.text, 1)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(240)
        self.bar.setRange(0, 1000)
        self.bar.hide()
        row.addWidget(self.bar)
        self.download_button = QPushButton(f"Download {DEFAULT_MODEL}")
        self.download_button.clicked.connect(self.start)
        self.later_button = QPushButton("Not now")
        self.later_button.clicked.connect(self.decline)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        for button in (self.download_button, self.later_button, self.cancel_button):
            row.addWidget(button)
        self.worker = DownloadWorker()
        self.thread_: QThread | None = None
        self.request_download.connect(self.worker.download)
        self.worker.progress.connect(self.show_progress)
        self.worker.finished.connect(self.finished)
        self.worker.failed.connect(self.failed)
        self.worker.cancelled.connect(self.was_cancelled)
        self.hide()

    @property
    def downloading(self) -> bool:
        return self.stop is not None

    def offer(self) -> None:
        self.set_buttons(downloading=False)
        self.text.setText(OFFER_TEXT)
        self.show()

    def start(self) -> None:
        if self.thread_ is None:
            self.thread_ = QThread(self)
            self.thread_.setObjectName("download")
            self.worker.moveToThread(self.thread_)
            self.thread_.finished.connect(self.worker.deleteLater)
            self.thread_.start()
        self.stop = threading.Event()
        self.set_buttons(downloading=True)
        self.bar.setValue(0)
        self.bar.setFormat("starting…")
        self.text.setText(f"Downloading <b>{DEFAULT_MODEL}</b> into the Hugging Face cache; the lite model "
                          "keeps working meanwhile.")
        self.request_download.emit(DEFAULT_MODEL, self.stop)

    def show_progress(self, done: int, total: int) -> None:
        self.bar.setValue(int(1000 * min(done / max(total, 1), 1.0)))
        self.bar.setFormat(f"{done / 1e9:.2f} of {total / 1e9:.2f} GB")

    def cancel(self) -> None:
        if self.stop is not None:
            self.stop.set()
            self.cancel_button.setEnabled(False)
            self.bar.setFormat("cancelling…")

    def decline(self) -> None:
        self.hide()
        self.declined.emit()

    def finished(self, path: str) -> None:
        self.stop = None
        self.hide()
        self.downloaded.emit(DEFAULT_MODEL)

    def failed(self, message: str) -> None:
        self.stop = None
        self.set_buttons(downloading=False)
        self.download_button.setText("Try again")
        self.text.setText(f"The download stopped: {html.escape(message)}")

    def was_cancelled(self) -> None:
        self.stop = None
        self.set_buttons(downloading=False)
        self.download_button.setText("Resume download")
        self.text.setText("Download cancelled; what arrived is kept, so it resumes where it stopped.")

    def set_buttons(self, downloading: bool) -> None:
        self.bar.setVisible(downloading)
        self.cancel_button.setVisible(downloading)
        self.cancel_button.setEnabled(True)
        self.download_button.setVisible(not downloading)
        self.later_button.setVisible(not downloading)

    def shut_down(self) -> None:
        """Stop a running download and its thread (the window is closing)."""
        self.cancel()
        if self.thread_ is not None:
            self.thread_.quit()
            self.thread_.wait(30_000)


def offline_notice() -> str:
    return ("Offline (HF_HUB_OFFLINE is set): searching with the built-in lite model. For better results, "
            "copy a BGE-M3 model folder to this computer and choose it in File ▸ Settings.")
