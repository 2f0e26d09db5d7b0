""""Allow other apps to search": the server of `desktop-search serve`, on the window's engine, in a
background thread; requests that come while the model loads or switches get 503 and a reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from desktop_app.core import Settings

if TYPE_CHECKING:  # the web stack loads only when sharing is switched on
    from desktop_app.api.server import ApiServer
    from desktop_app.core import Engine, JobQueue

SETTINGS = ("api_enabled", "api_port", "index_dir")  # a change to any of these restarts the server


class SharingController(QObject):
    """Starts and stops the window's API server; ``server`` and ``token`` are set while it runs."""

    message = Signal(str, int)
    banner = Signal(str, bool)

    def __init__(self, parent: QObject, engine_of: Callable[[], Engine | None], jobs: JobQueue) -> None:
        """``jobs``: the window's queue, where the API's indexing jobs run too (one writer at a time, shown
        in the window, and never on an engine the window is closing)."""
        super().__init__(parent)
        self._engine_of, self._jobs = engine_of, jobs
        self.server: ApiServer | None = None
        self.token = ""

    def follow(self, old: Settings | None, new: Settings) -> None:
        """Serve as ``new`` says (``old``: the settings it served by, None at start)."""
        if old is not None and all(getattr(old, name) == getattr(new, name) for name in SETTINGS):
            return
        self.stop()
        if new.api_enabled:
            self.start(new)

    def start(self, settings: Settings) -> None:
        from desktop_app.api.app import ServeOptions, create_app
        from desktop_app.api.server import ApiServer, bind
        from desktop_app.api.token import api_token
        from desktop_app.core import API_HOST, DesktopSearchError

        try:
            token = api_token(settings.index_dir)
            listening = bind(API_HOST, settings.api_port)
            options = ServeOptions(token.value, API_HOST, purpose="the Desktop Search window's API")
            self.server = ApiServer(create_app(self._engine_of, options, self._jobs), listening)
        except DesktopSearchError as error:
            self.banner.emit(f"Other apps cannot search: {error}. Choose another port in File ▸ Settings.", False)
            return
        self.server.start()
        self.token = token.value
        self.message.emit(f"Other apps can search at {self.server.url} (the token is in Settings)", 10000)

    def stop(self) -> None:
        """Stop the server: it finishes the requests in flight; indexing jobs it queued go on in the window."""
        if self.server is not None:
            self.server.stop()
            self.server, self.token = None, ""
