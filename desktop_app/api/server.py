"""uvicorn serving the app on a socket bound first: a busy port is one readable error before the model loads.

``desktop-search serve`` runs it in the foreground (Ctrl+C stops it gracefully); the window runs the
same server in a background thread and stops it from its own.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import threading

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from desktop_app.core import DesktopSearchError, UsageError

BACKLOG = 128
MAX_CONNECTIONS = 256  # more at once get 503 from uvicorn instead of piling up
GRACE_S = 5  # in-flight requests get this long to finish when the server stops
# A request's line and headers must arrive within this long of the connection (or of the last answer on it):
# a client that sends nothing, or a byte a second (slowloris), is dropped instead of keeping its slot for ever.
HEADER_TIMEOUT_S = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one). Connections made before the server
    runs wait in its backlog, so it can be bound before the model loads."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                                 flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise UsageError(f"cannot serve on {host!r}: {error.strerror}") from None
    listening = socket.socket(family, kind, protocol)
    if os.name != "nt":  # elsewhere it lets a restart reuse the port at once; on Windows it would share a busy one
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(address)
        listening.listen(BACKLOG)
    except OSError as error:
        listening.close()
        raise DesktopSearchError(_busy_port_message(host, port, error)) from None
    return listening


def _busy_port_message(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use (another desktop-search serve, or another program): "
                f"choose another with --port, e.g. --port {port + 1}")
    if error.errno == errno.EACCES:
        return f"no permission to serve on port {port} (ports below 1024 need administrator rights): choose another " \
               "with --port"
    return f"cannot serve on {host} port {port}: {error.strerror}"


class _HeadersInTime(H11Protocol):
    """uvicorn's HTTP/1.1 connection, closed when a request's headers are not complete ``header_timeout_s``
    after it opened or answered its last request. uvicorn itself waits for them for ever: each silent or
    trickling connection counts towards ``MAX_CONNECTIONS``, and enough of them would leave only 503s."""

    def __init__(self, *args: object, header_timeout_s: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_headers()

    def _expect_headers(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self._header_timeout_s, self._drop_if_headers_incomplete)

    def _drop_if_headers_incomplete(self) -> None:
        # The client is IDLE until its request line and headers are whole; after that the app has the request.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class ApiServer:
    """``app`` served on an already bound socket, in the foreground (:meth:`run`) or a thread (:meth:`start`)."""

    def __init__(self, app: FastAPI, listening: socket.socket, header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
        self.socket = listening
        host, self.port = listening.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"
        config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                                limit_concurrency=MAX_CONNECTIONS, timeout_graceful_shutdown=GRACE_S,
                                http=functools.partial(_HeadersInTime, header_timeout_s=header_timeout_s))
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until Ctrl+C (or :meth:`stop` from another thread)."""
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="api-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to ``GRACE_S``), cancel the app's own indexing
        jobs (the window's go on in its queue); return once the server's thread has ended."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
