"""One writer per index: an OS file lock that vanishes with the process, even on SIGKILL."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from desktop_app.core.errors import IndexLockedError


class WriterLock:
    """``with WriterLock(folder):`` holds ``folder/index.lock`` exclusively or raises at once."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / "index.lock"
        self.handle = None

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+b")
        try:
            lock_file(self.handle)
        except OSError:
            self.handle.close()
            self.handle = None
            raise IndexLockedError(
                f"another Desktop Search process is writing to the index at {self.path.parent}; "
                "wait for it to finish or close it"
            ) from None
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.handle is not None:
            unlock_file(self.handle)
            self.handle.close()
            self.handle = None


if os.name == "nt":
    import msvcrt

    def lock_file(handle: object) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def unlock_file(handle: object) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def lock_file(handle: object) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def unlock_file(handle: object) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
