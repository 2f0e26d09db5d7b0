"""OS file locks that vanish with their process, even on SIGKILL: one writer per index at a time
(:class:`WriterLock`), and one process at a time for work done once per machine, such as converting the
model for the CPU (:func:`one_at_a_time`).

Other writers wait their turn (or fail at once with ``wait=False``), told who holds the lock:
the holder writes its pid, purpose and start time into the lock file. Turns are first come,
first served: a waiting writer leaves a ticket file (``index.lock.wait-<ns>-<pid>``), and a
writer that finds older tickets of live processes lets them go first. Without tickets a busy
watcher, re-taking the lock between batches within microseconds, would starve a terminal's
``index`` that polls every few tenths of a second.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from desktop_app.core.errors import Cancelled, IndexLockedError

log = logging.getLogger(__name__)

POLL_S = 0.05
TELL_EVERY_S = 10.0
# A ticket left by a process that still runs but stopped waiting (it hung, or a debugger holds it)
# blocks nobody for longer than this.
TICKET_PATIENCE_S = 120.0
# What locking a file another process holds raises: flock's EWOULDBLOCK, msvcrt's EACCES or EDEADLK.
_HELD_ELSEWHERE = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


class WriterLock:
    """``with WriterLock(folder):`` holds ``folder/index.lock`` exclusively, waiting for it if needed.

    ``on_wait`` hears (at once, then every ``TELL_EVERY_S``) who holds the lock; ``cancelled``
    is polled while waiting and raises :class:`Cancelled` when it turns true.
    """

    def __init__(self, folder: Path, purpose: str = "indexing", wait: bool = True,
                 on_wait: Callable[[str], None] | None = None, cancelled: Callable[[], bool] | None = None) -> None:
        self.path = Path(folder) / "index.lock"
        self.purpose = purpose
        self.wait = wait
        self.on_wait = on_wait
        self.cancelled = cancelled
        self.handle = None
        self.ticket: Path | None = None

    def acquire(self) -> WriterLock:
        if not self.path.parent.is_dir():  # never made anew: on an unplugged drive it would land on the system disk
            raise FileNotFoundError(errno.ENOENT, "the index folder is gone", str(self.path.parent))
        told = 0.0
        try:
            while True:
                if self.first_in_line() and self.try_lock():
                    return self
                if not self.wait:
                    raise IndexLockedError(f"the index at {self.path.parent} is being written by {self.holder()}; "
                                           "wait for it to finish, or leave out --no-wait to wait for it")
                if self.ticket is None:
                    self.ticket = self.path.with_name(f"{self.path.name}.wait-{time.time_ns()}-{os.getpid()}")
                    self.ticket.touch()
                if self.cancelled is not None and self.cancelled():
                    raise Cancelled()
                if self.on_wait is not None and time.monotonic() - told >= TELL_EVERY_S:
                    told = time.monotonic()
                    self.on_wait(f"waiting for the index: {self.holder()} is writing to it")
                time.sleep(POLL_S)
        finally:
            if self.ticket is not None:
                self.ticket.unlink(missing_ok=True)
                self.ticket = None

    def first_in_line(self) -> bool:
        """True when no live process has waited longer than this one (stale tickets are removed)."""
        mine = self.ticket.name if self.ticket is not None else None
        for ticket in self.path.parent.glob(f"{self.path.name}.wait-*"):
            if ticket.name == mine:
                continue
            try:
                _, stamp, pid = ticket.name.rsplit("-", 2)
                older = mine is None or (int(stamp), int(pid)) < tuple(map(int, mine.rsplit("-", 2)[1:]))
                age = time.time() - ticket.stat().st_mtime
            except (ValueError, OSError):
                continue
            if not process_alive(int(pid)) or age > TICKET_PATIENCE_S:
                ticket.unlink(missing_ok=True)
            elif older:
                return False
        return True

    def try_lock(self) -> bool:
        """Take the lock if it is free. Who holds it is written unbuffered and only if the disk takes it: on
        a full disk the lock must still be held (and later released), never left taken by a failed write."""
        handle = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - held open while the lock is held
        try:
            lock_file(handle)
        except OSError:
            handle.close()
            return False
        self.handle = handle
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "purpose": self.purpose, "since": time.time(),
                                     "thread": threading.current_thread().name}).encode())
        except OSError:
            pass  # waiting writers then say "another Desktop Search process" without its name
        return True

    def holder(self) -> str:
        """Who holds the lock, in words, from what the holder wrote into the lock file."""
        try:
            info = json.loads(self.path.read_bytes() or b"{}")
            since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
            return f"another Desktop Search process (pid {info['pid']}, {info['purpose']}, since {since})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another Desktop Search process"

    def release(self) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            unlock_file(self.handle)
            self.handle.close()
            self.handle = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


@contextmanager
def one_at_a_time(lock: Path, doing: str, on_wait: Callable[[str], None]) -> Iterator[bool]:
    """Hold ``lock``, an OS file lock that vanishes with its process (even on SIGKILL), telling
    ``on_wait`` once when another process holds it (it is ``doing`` something this one needs).

    Yields whether the lock is held: where it cannot be had (an unwritable folder, a file system
    without locks) this process goes on alone rather than wait for ever.
    """
    handle = _locked(lock, doing, on_wait)
    try:
        yield handle is not None
    finally:
        if handle is not None:
            unlock_file(handle)
            handle.close()


def _locked(lock: Path, doing: str, on_wait: Callable[[str], None]) -> BinaryIO | None:
    """``lock``'s file, locked once any other holder lets go; None where it cannot be locked."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+b")  # noqa: SIM115 - held open while the lock is held
    except OSError as error:
        log.info("no lock at %s (%s): going on without one", lock, error)
        return None
    told = False
    while True:
        try:
            lock_file(handle)
            return handle
        except OSError as error:
            if error.errno not in _HELD_ELSEWHERE:
                handle.close()
                log.info("cannot lock %s (%s): going on without the lock", lock, error)
                return None
        if not told:
            on_wait(f"waiting for another Desktop Search process that is {doing}")
            told = True
        time.sleep(POLL_S)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


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
