"""Errors that carry a message a person can act on; the CLI and GUI show them as they are."""

import errno


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
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "the disk is full: free some space, then index again (the index kept its last consistent state)"
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"unexpected {error.__class__.__name__}: {error}"
