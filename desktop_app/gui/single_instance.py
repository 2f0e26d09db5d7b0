"""One window per index: a second launch hands its folders to the first and quits.

The first instance listens on a local socket (a named pipe on Windows) named after the user
and the index folder; a later launch connects, sends the folders it was given on the command
line, and the first window comes to the front and indexes them; a later ``--quick`` launch asks it
for its quick search box instead, which answers at once from the index already open. A stale socket left by a
crashed instance is removed before listening; if listening still fails, this instance runs
anyway (two windows are better than none: the index lock keeps their writes apart).
"""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_TIMEOUT_MS = 500


def instance_name(index_dir: Path) -> str:
    digest = hashlib.sha256(str(Path(index_dir).expanduser().resolve()).encode()).hexdigest()[:12]
    return f"desktop-search-{getpass.getuser()}-{digest}"


class SingleInstance(QObject):
    """``claim()`` is True for the first instance; it then emits ``activated`` with each later
    launch's folders, and ``quick_wanted`` for each later ``--quick`` launch."""

    activated = Signal(list)
    quick_wanted = Signal()

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.server: QLocalServer | None = None

    def claim(self, paths: list[Path], quick: bool = False) -> bool:
        """Become the running instance, or pass ``paths`` (and the wish for the quick search box) to the
        one already running."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if socket.waitForConnected(CONNECT_TIMEOUT_MS):
            message = {"paths": [str(p.resolve()) for p in paths], "quick": quick}
            socket.write(json.dumps(message).encode() + b"\n")
            socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
            socket.disconnectFromServer()
            return False
        QLocalServer.removeServer(self.name)
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self.receive)
        self.server.listen(self.name)
        return True

    def receive(self) -> None:
        """Read each waiting launch's one-line message (it is written right after connecting): a quick
        launch without folders leaves the window as it is."""
        while self.server is not None and self.server.hasPendingConnections():
            connection = self.server.nextPendingConnection()
            paths, quick = [], False
            if connection.canReadLine() or connection.waitForReadyRead(CONNECT_TIMEOUT_MS):
                try:
                    message = json.loads(bytes(connection.readLine()).decode())
                    paths, quick = [str(p) for p in message.get("paths", [])], message.get("quick") is True
                except (ValueError, AttributeError, TypeError):
                    paths, quick = [], False
            connection.disconnectFromServer()
            connection.deleteLater()
            if paths or not quick:
                self.activated.emit(paths)
            if quick:
                self.quick_wanted.emit()

    def release(self) -> None:
        """Stop answering later launches (the window is closing)."""
        if self.server is not None:
            self.server.close()
            self.server = None
