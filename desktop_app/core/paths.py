"""File names as text the index can store, and back.

On POSIX a file name is bytes; Python decodes undecodable bytes to lone surrogates, which
SQLite (UTF-8) refuses. Such bytes are stored as ``\\xNN`` escapes instead: readable, stable
(the same file always gives the same text, so incremental indexing still matches it) and
reversible for opening the file.
"""

from __future__ import annotations

import os
import re

ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def to_text(path: str) -> str:
    """A path as storable text: unchanged unless it holds bytes that are not UTF-8."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def to_os(text: str) -> str:
    """The real path of a stored text path (undoes :func:`to_text`)."""
    if "\\x" not in text or os.name == "nt":
        return text
    return os.fsdecode(ESCAPED_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8")))


def folder_prefix(folder: str) -> str:
    """``folder`` with one trailing separator: what every path inside it starts with."""
    return folder.rstrip("/\\") + os.sep


def is_within(path: str, folder: str) -> bool:
    """True for ``folder`` itself and every path below it (not for ``folder-2`` beside it)."""
    return path == folder or path.startswith(folder_prefix(folder))
