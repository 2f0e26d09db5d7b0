"""The index's tables as SQL, and how a connection to them is opened.

Small helpers for statements over many ids live here too: SQLite caps the variables of one
statement, so ``IN (...)`` lists go in batches of ``SQLITE_VARIABLES``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from desktop_app.core.errors import mounted_read_only

SCHEMA_VERSION = "1"
SQLITE_VARIABLES = 900
CACHE_KIB = 64 * 1024
MMAP_BYTES = 4 << 30

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots(path TEXT PRIMARY KEY, added_at REAL NOT NULL, device INTEGER);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL,
    error TEXT,
    note TEXT,
    chunks INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL,
    indexed_at REAL NOT NULL,
    unit TEXT NOT NULL DEFAULT 'page',
    ocr_pages TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL,
    page INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    text TEXT NOT NULL,
    dense BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE TABLE IF NOT EXISTS sparse(
    chunk_id INTEGER NOT NULL,
    token_id INTEGER NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY(chunk_id, token_id)
) WITHOUT ROWID;
DROP INDEX IF EXISTS sparse_impact;
CREATE TABLE IF NOT EXISTS excluded(path TEXT PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones(chunk_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_generation ON tombstones(generation);
-- Stage 2's work list: chunks stored without vectors yet. Small files before big ones, then the
-- newest first; a claim (``claimed_by`` a process id, until ``claimed_until``) keeps a second
-- process from encoding what one is encoding now, and dies with its process.
CREATE TABLE IF NOT EXISTS pending(
    chunk_id INTEGER PRIMARY KEY,
    big INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    claimed_by INTEGER NOT NULL DEFAULT 0,
    claimed_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pending_order ON pending(big, mtime_ns DESC, chunk_id);
-- Copies (storage/copies.py): each file's MinHash signature and the band keys that find alike ones.
CREATE TABLE IF NOT EXISTS likeness(file_id INTEGER PRIMARY KEY, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS likeness_bands(
    key INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    PRIMARY KEY(key, file_id)
) WITHOUT ROWID;
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode; on a read-only disk, one that can only read (see :func:`_read_only_address`)."""
    address = _read_only_address(path)
    conn = sqlite3.connect(address or str(path), isolation_level=None, check_same_thread=False, timeout=30,
                           uri=address is not None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return conn


def log_bytes(path: Path) -> int:
    """The size of the database's write-ahead log, 0 where it has none (OSError where it cannot be read)."""
    log = path.with_name(path.name + "-wal")
    return log.stat().st_size if log.exists() else 0


def _read_only_address(path: Path) -> str | None:
    """The URI that opens ``path`` immutable when its disk is mounted read-only and SQLite could not open
    it otherwise: a WAL-mode database there needs its ``-shm`` file, which cannot be created, and an index
    on a disk that turned read-only must stay searchable. None where the disk is writable, or where the
    ``-shm`` file is there to read the WAL's commits with (an immutable open would not see them).

    Without the ``-shm`` file the WAL's commits (those since its last checkpoint) cannot be read at all:
    the index is opened as of that checkpoint, and the log says so; they come back once the disk is
    writable again.
    """
    if not mounted_read_only(path.parent):
        return None
    try:
        unread = log_bytes(path)
    except OSError:
        return None
    if unread:
        if path.with_name(path.name + "-shm").exists():
            return None
        logging.getLogger(__name__).warning(
            "%s: the disk is read-only and the -shm file is missing, so the last %.1f MB of commits (in %s) "
            "cannot be read; searching the index as of its last checkpoint", path, unread / 1e6, f"{path.name}-wal")
    return f"file:{quote(str(path))}?immutable=1"


def batched(items: list, size: int = SQLITE_VARIABLES) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)
