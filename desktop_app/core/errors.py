"""Errors that carry a message a person can act on; the CLI and GUI show them as they are."""

import errno
import math
import os
import shutil
import sqlite3
from pathlib import Path


def shown(value: object, limit: int = 60) -> str:
    """``value`` as a message quotes it (``repr``), cut after ``limit`` characters: an error about a megabyte of
    input names its start and its length, not all of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value)):,} characters)"


class DesktopSearchError(Exception):
    """Base for every error the user should see as a sentence, not a traceback."""


class UsageError(DesktopSearchError):
    """The request itself is malformed (bad query, weights, k, path); CLI exit code 2."""


class ModelError(DesktopSearchError):
    """The model cannot be found, loaded or is incomplete."""


class IndexMissingError(DesktopSearchError):
    """No index exists where one was expected."""


class IndexMismatchError(DesktopSearchError):
    """The index was built with another model or dimension than the one requested."""


class IndexClosedError(DesktopSearchError):
    """The engine was closed while a front-end still held it (the window switching models or folders)."""


class IndexLockedError(DesktopSearchError):
    """Another process is writing to this index."""


class ExtractionError(DesktopSearchError):
    """A file could not be turned into text; the message says why."""


class OcrNeeded(ExtractionError):
    """The file's text is in images and OCR is turned off; turning it on reads the file again."""


class Cancelled(DesktopSearchError):
    """The user cancelled a running job."""


class StorageError(DesktopSearchError):
    """The index could not be written (disk full, read-only, I/O error); it keeps its last commit."""


def readable(error: BaseException) -> str:
    """One sentence for the user about any error; those nobody expected keep their type so they can be
    reported (the log keeps the traceback)."""
    if isinstance(error, DesktopSearchError):
        return str(error)
    if storage_reason(error) in ("full", "read-only"):
        return storage_message(error, Path(error.filename).parent if getattr(error, "filename", None) else None)
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"unexpected {error.__class__.__name__}: {error}"


def storage_reason(error: BaseException) -> str:
    """Why a write failed, in one word: "full", "read-only", "gone" (a file or folder vanished) or "other"."""
    code = getattr(error, "errno", None)
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error).lower()
    if code in (errno.ENOSPC, errno.EDQUOT) or name == "SQLITE_FULL" or "disk is full" in text:
        return "full"
    if code == errno.EROFS or name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return "read-only"
    if code == errno.ENOENT:
        return "gone"
    return "other"


def storage_message(error: BaseException, folder: Path | None, needed: int | None = None) -> str:
    """The one sentence for an index that could not be written: which disk or folder, why, how much room
    the rest of the run needs (``needed`` bytes, when known), and that nothing committed was lost.

    A folder that no longer exists is said to be gone whatever the error was: a drive unplugged (or a
    folder moved) mid-run fails on whichever write comes next, with errors that name no cause.
    """
    kept = "everything indexed so far stays searchable"
    reason = storage_reason(error)
    if folder is None:
        if reason == "full":
            return f"the disk is full: free some space, then index again — {kept}"
        if reason == "read-only":
            return f"the disk is read-only: make it writable, then index again — {kept}"
        return f"the index could not be written ({error}): fix the disk, then index again — {kept}"
    if reason == "gone" or not folder.is_dir():
        return (f"the index folder {folder} is gone (drive unplugged?): plug it back in (or choose another "
                f"index folder), then index again — {kept} once it is back")
    if reason == "other" and mounted_read_only(folder):  # SQLite says "unable to open database file"
        reason = "read-only"
    mount = _mount_point(folder)
    if reason == "full":
        room = f"{_size_text(shutil.disk_usage(folder).free)} free"
        if needed:
            room += f"; this run needs about {_size_text(needed, up=True)} more"
        return (f"the disk holding {folder} is full (mounted at {mount}: {room}): free some space, then index "
                f"again — {kept}")
    if reason == "read-only":
        return (f"the index folder {folder} is read-only (on the disk mounted at {mount}): make it writable or "
                f"choose another index folder, then index again — {kept}")
    return f"the index at {folder} could not be written ({error}): fix the disk, then index again — {kept}"


def is_storage_error(error: BaseException, folder: Path) -> bool:
    """The index folder (not a document, not the model) failed: any SQLite error, or an OS error of a
    full, read-only or failing disk, of a path inside ``folder``, or while ``folder`` is gone."""
    if isinstance(error, sqlite3.Error):
        return True
    if not isinstance(error, OSError):
        return False
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO) or not folder.is_dir():
        return True
    return bool(error.filename) and Path(os.fspath(error.filename)).is_relative_to(folder)


def _mount_point(path: Path) -> Path:
    """The mount point of the disk holding ``path`` (the nearest folder above it that is one)."""
    path = Path(os.path.abspath(path))
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def mounted_read_only(folder: Path) -> bool:
    """The disk holding ``folder`` is mounted read-only (False where that cannot be told: Windows, no folder)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows)
        return False


def _size_text(size: int, up: bool = False) -> str:
    """A size for people: "0.4 MB", "37 MB", "2.1 GB"; ``up`` rounds up (room to free: never too little)."""
    unit, scale = ("GB", 1e9) if size >= 1e9 else ("MB", 1e6)
    digits = 0 if unit == "MB" and size >= 1e7 else 1
    value = size / scale
    if up:
        value = math.ceil(value * 10 ** digits) / 10 ** digits
    return f"{value:.{digits}f} {unit}"
