"""SQLite (through sqlite-utils) is the source of truth: files, chunks, vectors, postings, pending work.

WAL mode lets searches read while the indexer writes. Writers group their statements in
``with store.transaction():`` so a file's chunks are replaced all at once or not at all.

Indexing has two stages. Stage 1 stores a file's chunks with their text and keyword terms and no
vectors (an empty ``dense`` blob) and lists them in ``pending``; stage 2 writes each chunk's
vectors and lexical weights later, in place, and takes it off the list. A chunk past its file's
meaning cap (``files.meaning_cap``) is kept for its words only: no vectors, never pending.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from desktop_app.core import analyze
from desktop_app.core.paths import folder_prefix

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
"""
# The keyword index holds terms made by ``core.analyze`` (stemmed, folded, CJK bigrams);
# FTS5's ascii tokenizer only splits them at the spaces. Contentless: the text is in ``chunks``.
KEYWORD_TABLE = "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, name, content='', tokenize='ascii')"


@dataclass(frozen=True)
class Changes:
    """What other writers committed after a process's last look: enough to bring the caches up to date.

    ``added`` are new chunks (their words), ``encoded`` the chunks whose vectors arrived since, with
    their dense blob. ``full`` says the tombstones no longer reach back that far (or the index was
    cleared): compare everything instead.
    """

    generation: int
    added: list[int]
    encoded: list[tuple[int, bytes]]
    deleted: list[int]
    full: bool


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    error: str | None
    settings: str


@dataclass(frozen=True)
class ChunkRow:
    id: int
    path: str
    page: int
    start: int
    end: int
    text: str
    size: int = 0
    mtime_ns: int = 0
    unit: str = "page"
    ocr: bool = False  # the chunk's page was read by OCR
    meaning: str = "encoded"  # encoded, pending (vectors not made yet) or capped (words only)
    meaning_cap: int = 0  # capped: the file's first this many chunks have vectors


@dataclass(frozen=True)
class NewChunk:
    """What stage 1 stores per chunk: position and text; ``pending`` ones get vectors in stage 2."""

    page: int
    start: int
    end: int
    tokens: int
    text: str
    pending: bool = True


@dataclass(frozen=True)
class ChunkEncoding:
    """What stage 2 stores per chunk: its vectors (ColBERT's only for a backend that keeps them)."""

    chunk_id: int
    dense: np.ndarray
    sparse: dict[int, float]
    colbert: np.ndarray | None = None


@dataclass(frozen=True)
class PendingChunk:
    chunk_id: int
    text: str
    tokens: int
    file_id: int


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return conn


def batched(items: list, size: int = SQLITE_VARIABLES) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


class Store:
    """All SQL of the app lives here; callers get plain Python values back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.next_generation = 0
        self.chunks_changed = False
        self.db = sqlite_utils.Database(connect(path))
        self.db.executescript(SCHEMA)
        if self.get_meta("schema") is None:
            self.set_meta("schema", SCHEMA_VERSION)
        if "device" not in self.db["roots"].columns_dict:
            self.conn.execute("ALTER TABLE roots ADD COLUMN device INTEGER")
        file_columns = self.db["files"].columns_dict
        for column, kind in (("unit", "TEXT NOT NULL DEFAULT 'page'"), ("ocr_pages", "TEXT NOT NULL DEFAULT ''")):
            if column not in file_columns:  # indexes made before OCR and slides: every unit a page, none OCR
                self.conn.execute(f"ALTER TABLE files ADD COLUMN {column} {kind}")
        if "meaning_cap" not in file_columns:  # 0: every chunk gets vectors
            self.conn.execute("ALTER TABLE files ADD COLUMN meaning_cap INTEGER NOT NULL DEFAULT 0")
        if "encoded_at" not in self.db["chunks"].columns_dict:  # indexes from before the two stages: all encoded
            self.conn.execute("ALTER TABLE chunks ADD COLUMN encoded_at INTEGER NOT NULL DEFAULT 0")
        self.conn.execute("CREATE INDEX IF NOT EXISTS chunks_encoded ON chunks(encoded_at)")
        if self.get_meta("keyword_analyzer") != analyze.ANALYZER_VERSION:
            self.rebuild_keyword_index()

    def rebuild_keyword_index(self) -> None:
        """(Re)make the keyword index from the chunks: new indexes, and ones made by an older analyzer."""
        with self.transaction():
            self.conn.execute("DROP TABLE IF EXISTS chunks_fts")
            self.conn.execute(KEYWORD_TABLE)
            rows = self.conn.execute("SELECT c.id, c.text, f.path FROM chunks c JOIN files f ON f.id = c.file_id")
            while part := rows.fetchmany(1000):
                self.conn.executemany("INSERT INTO chunks_fts(rowid, text, name) VALUES (?,?,?)",
                                      [keyword_row(*row) for row in part])
            self.set_meta("keyword_analyzer", analyze.ANALYZER_VERSION)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

        A transaction that adds or removes chunks moves the index's generation on by one, so
        other processes can tell that their vector cache is behind (see :meth:`changes_since`).
        """
        self.conn.execute("BEGIN IMMEDIATE")
        self.next_generation = self.generation() + 1
        self.chunks_changed = False
        try:
            yield
            if self.chunks_changed:
                self.set_meta("generation", str(self.next_generation))
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """BEGIN ... COMMIT around reads: they all see one state of the index, whatever commits meanwhile."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def generation(self) -> int:
        """How many chunk-changing transactions this index has committed."""
        return int(self.get_meta("generation") or 0)

    def changes_since(self, generation: int, max_id: int) -> Changes:
        """Chunks added (ids above ``max_id``, with their vectors) and removed since ``generation``,
        read from one snapshot. Ids only grow (AUTOINCREMENT) and writers take turns, so every
        chunk committed after that generation has a higher id than any before it."""
        self.conn.execute("BEGIN")
        try:
            now = self.generation()
            if now == generation:
                return Changes(now, [], [], [], False)
            if generation < int(self.get_meta("tombstones_floor") or 0) or now < generation:
                return Changes(now, [], [], [], True)
            deleted = [r[0] for r in self.conn.execute("SELECT chunk_id FROM tombstones WHERE generation > ?",
                                                       (generation,))]
            added = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE id > ? ORDER BY id", (max_id,))]
            encoded = self.conn.execute("SELECT id, dense FROM chunks WHERE encoded_at > ? AND length(dense) > 0 "
                                        "ORDER BY id", (generation,)).fetchall()
            return Changes(now, added, encoded, deleted, False)
        finally:
            self.conn.execute("COMMIT")

    def prune_tombstones(self, up_to: int) -> None:
        """Forget removals up to generation ``up_to`` (a saved cache holds them); older views must compare in full."""
        with self.transaction():
            self.conn.execute("DELETE FROM tombstones WHERE generation <= ?", (up_to,))
            self.set_meta("tombstones_floor", str(up_to))

    def tombstone_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM tombstones").fetchone()[0]

    def clear(self) -> None:
        """Forget every file, chunk and the model record; roots are kept. Other processes see a
        new generation below which no tombstones reach, so they compare their caches in full."""
        with self.transaction():
            for table in ("sparse", "chunks", "files", "meta", "tombstones", "excluded", "pending"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')")
            self.set_meta("schema", SCHEMA_VERSION)
            self.set_meta("keyword_analyzer", analyze.ANALYZER_VERSION)
            self.set_meta("tombstones_floor", str(self.next_generation))
            self.chunks_changed = True

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def add_root(self, path: str, device: int | None = None) -> None:
        """Register an indexed folder and the device it lives on (to tell an unplugged drive)."""
        self.conn.execute(
            "INSERT INTO roots(path, added_at, device) VALUES (?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET device = coalesce(excluded.device, device)",
            (path, time.time(), device),
        )

    def remove_root(self, path: str) -> None:
        self.conn.execute("DELETE FROM roots WHERE path = ?", (path,))

    def roots(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT path FROM roots ORDER BY path")]

    def root_devices(self) -> dict[str, int | None]:
        """Indexed folder -> the device id it was last indexed on (None for old indexes)."""
        return dict(self.conn.execute("SELECT path, device FROM roots ORDER BY path"))

    def files_under(self, folder: str) -> dict[str, FileRecord]:
        """Every file record at ``folder`` itself or below it."""
        prefix = folder_prefix(folder)
        rows = self.conn.execute(
            "SELECT id, path, size, mtime_ns, sha256, status, error, settings FROM files "
            "WHERE path = ? OR substr(path, 1, ?) = ?",
            (folder, len(prefix), prefix),
        )
        return {row[1]: FileRecord(*row) for row in rows}

    def delete_chunks_of(self, file_id: int) -> list[int]:
        """Remove a file's chunks, postings and full-text rows; return the chunk ids removed."""
        rows = self.conn.execute(
            "SELECT c.id, c.text, f.path FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.file_id = ?",
            (file_id,),
        ).fetchall()
        if not rows:
            return []
        ids = [row[0] for row in rows]
        self.conn.executemany(
            "INSERT INTO chunks_fts(chunks_fts, rowid, text, name) VALUES('delete', ?, ?, ?)",
            [keyword_row(*row) for row in rows],
        )
        for part in batched(ids):
            marks = placeholders(len(part))
            self.conn.execute(f"DELETE FROM sparse WHERE chunk_id IN ({marks})", part)
            self.conn.execute(f"DELETE FROM pending WHERE chunk_id IN ({marks})", part)
            self.conn.execute(f"DELETE FROM chunks WHERE id IN ({marks})", part)
        self.conn.executemany("INSERT OR REPLACE INTO tombstones(chunk_id, generation) VALUES (?, ?)",
                              [(chunk_id, self.next_generation) for chunk_id in ids])
        self.chunks_changed = True
        return ids

    def upsert_file(self, path: str, size: int, mtime_ns: int, sha256: str | None, status: str,
                    settings: str, error: str | None = None, note: str | None = None, chunks: int = 0,
                    unit: str = "page", ocr_pages: list[int] | None = None, meaning_cap: int = 0) -> int:
        """Insert or update a file record (plain SQL: sqlite-utils' writers would commit early).

        ``unit`` names what its pages are (page, slide, sheet, ...); ``ocr_pages`` those read by OCR;
        ``meaning_cap`` how many of its chunks get vectors when not all of them do (0: all).
        """
        row = self.conn.execute(
            "INSERT INTO files(path, size, mtime_ns, sha256, status, error, note, chunks, settings, indexed_at, "
            "unit, ocr_pages, meaning_cap) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, status = excluded.status, "
            "error = excluded.error, note = excluded.note, chunks = excluded.chunks, "
            "settings = excluded.settings, indexed_at = excluded.indexed_at, unit = excluded.unit, "
            "ocr_pages = excluded.ocr_pages, meaning_cap = excluded.meaning_cap RETURNING id",
            (path, size, mtime_ns, sha256, status, error, note, chunks, settings, time.time(), unit,
             ",".join(map(str, ocr_pages or [])), meaning_cap),
        ).fetchone()
        return row[0]

    def replace_file(self, path: str, size: int, mtime_ns: int, sha256: str, settings: str,
                     chunks: list[NewChunk], note: str | None = None, unit: str = "page",
                     ocr_pages: list[int] | None = None, big: bool = False) -> tuple[list[int], list[int]]:
        """Store a file's new chunks (words now, vectors pending) in place of its old ones.
        Returns (removed ids, added ids).

        Call inside :meth:`transaction`: together with the deletes this is all-or-nothing. ``big``
        files' chunks are encoded after every small file's.
        """
        existing = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        removed = self.delete_chunks_of(existing[0]) if existing else []
        encoded = sum(chunk.pending for chunk in chunks)
        file_id = self.upsert_file(path, size, mtime_ns, sha256, "indexed", settings, note=note, chunks=len(chunks),
                                   unit=unit, ocr_pages=ocr_pages, meaning_cap=encoded if encoded < len(chunks) else 0)
        self.chunks_changed = True
        added = []
        for chunk in chunks:
            cursor = self.conn.execute(
                "INSERT INTO chunks(file_id, page, char_start, char_end, tokens, text, dense) VALUES (?,?,?,?,?,?,x'')",
                (file_id, chunk.page, chunk.start, chunk.end, chunk.tokens, chunk.text),
            )
            added.append(cursor.lastrowid)
        self.conn.executemany("INSERT INTO pending(chunk_id, big, mtime_ns) VALUES (?,?,?)",
                              [(cid, int(big), mtime_ns) for cid, chunk in zip(added, chunks) if chunk.pending])
        self.conn.executemany("INSERT INTO chunks_fts(rowid, text, name) VALUES (?,?,?)",
                              (keyword_row(cid, chunk.text, path) for cid, chunk in zip(added, chunks)))
        return removed, added

    def claim_pending(self, limit: int, lease_s: float) -> list[PendingChunk]:
        """Up to ``limit`` unclaimed pending chunks in stage 2's order, claimed for ``lease_s`` seconds
        (another process skips them meanwhile; a claim left by a killed process simply runs out)."""
        now = time.time()
        with self.transaction():
            claimants = [r[0] for r in self.conn.execute(
                "SELECT DISTINCT claimed_by FROM pending WHERE claimed_until >= ?", (now,))]
            gone = [pid for pid in claimants if pid != os.getpid() and not process_alive(pid)]
            self.conn.executemany("UPDATE pending SET claimed_until = 0 WHERE claimed_by = ?", [(p,) for p in gone])
            rows = self.conn.execute(
                "SELECT p.chunk_id, c.text, c.tokens, c.file_id FROM pending p JOIN chunks c ON c.id = p.chunk_id "
                "WHERE p.claimed_until < ? ORDER BY p.big, p.mtime_ns DESC, p.chunk_id LIMIT ?", (now, limit),
            ).fetchall()
            self.conn.executemany("UPDATE pending SET claimed_by = ?, claimed_until = ? WHERE chunk_id = ?",
                                  [(os.getpid(), now + lease_s, row[0]) for row in rows])
        return [PendingChunk(*row) for row in rows]

    def release_claims(self, chunk_ids: list[int]) -> None:
        """Give claimed chunks back (a paused or cancelled stage 2), so another process may take them."""
        with self.transaction():
            for part in batched(chunk_ids):
                self.conn.execute(f"UPDATE pending SET claimed_until = 0 WHERE chunk_id IN ({placeholders(len(part))})",
                                  part)

    def store_encodings(self, encodings: list[ChunkEncoding]) -> list[ChunkEncoding]:
        """Write stage 2's vectors and lexical weights for the chunks that are still pending (a chunk
        whose file changed or went since it was claimed is gone); return those written.

        Call inside :meth:`transaction`.
        """
        still = set()
        for part in batched([e.chunk_id for e in encodings]):
            still.update(r[0] for r in self.conn.execute(
                f"SELECT chunk_id FROM pending WHERE chunk_id IN ({placeholders(len(part))})", part))
        written = [e for e in encodings if e.chunk_id in still]
        self.conn.executemany("UPDATE chunks SET dense = ?, encoded_at = ? WHERE id = ?",
                              [(e.dense.astype(np.float16).tobytes(), self.next_generation, e.chunk_id)
                               for e in written])
        self.conn.executemany("INSERT OR REPLACE INTO sparse(chunk_id, token_id, weight) VALUES (?,?,?)",
                              [(e.chunk_id, token, weight) for e in written for token, weight in e.sparse.items()])
        self.conn.executemany("DELETE FROM pending WHERE chunk_id = ?", [(e.chunk_id,) for e in written])
        if written:
            self.chunks_changed = True
        return written

    def pending_counts(self) -> dict[str, int]:
        """Chunks waiting for their vectors, the files they belong to and their tokens (for an ETA)."""
        chunks, files, tokens = self.conn.execute(
            "SELECT count(*), count(DISTINCT c.file_id), coalesce(sum(c.tokens), 0) FROM pending p "
            "JOIN chunks c ON c.id = p.chunk_id").fetchone()
        return {"pending_chunks": chunks, "pending_files": files, "pending_tokens": tokens}

    def pending_by_file(self) -> dict[int, int]:
        """File id -> how many of its chunks wait for their vectors."""
        return dict(self.conn.execute(
            "SELECT c.file_id, count(*) FROM pending p JOIN chunks c ON c.id = p.chunk_id GROUP BY c.file_id"))

    def record_failure(self, path: str, size: int, mtime_ns: int, settings: str, reason: str) -> list[int]:
        """Mark a file as failed with its reason; its old chunks (now stale) are removed."""
        existing = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        removed = self.delete_chunks_of(existing[0]) if existing else []
        self.upsert_file(path, size, mtime_ns, None, "failed", settings, error=reason)
        return removed

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

    def remove_file(self, file_id: int) -> list[int]:
        removed = self.delete_chunks_of(file_id)
        self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return removed

    def chunk_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def max_chunk_id(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0]

    def all_chunk_ids(self) -> np.ndarray:
        return np.fromiter((r[0] for r in self.conn.execute("SELECT id FROM chunks")), dtype=np.int64)

    def encoded_chunk_ids(self) -> np.ndarray:
        """The chunks that have their vectors (stage 2 done)."""
        return np.fromiter((r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE length(dense) > 0")),
                           dtype=np.int64)

    def encoded_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM chunks WHERE length(dense) > 0").fetchone()[0]

    def iter_dense(self, ids: Iterable[int] | None = None,
                   batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) in batches: all chunks, or the given ids."""
        if ids is None:
            cursor = self.conn.execute("SELECT id, dense FROM chunks WHERE length(dense) > 0 ORDER BY id")
            while rows := cursor.fetchmany(batch):
                yield decode_dense(rows)
            return
        for part in batched(list(ids)):
            rows = self.conn.execute(
                f"SELECT id, dense FROM chunks WHERE id IN ({placeholders(len(part))}) AND length(dense) > 0", part
            ).fetchall()
            if rows:
                yield decode_dense(rows)

    def dense_for(self, ids: list[int]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for chunk_ids, vectors in self.iter_dense(ids):
            found.update(zip(chunk_ids.tolist(), vectors))
        return found

    def keyword_top(self, fts_query: str, limit: int, allowed: Collection[int] | None = None,
                    blocked: Collection[int] = ()) -> list[tuple[int, float]]:
        """BM25 over chunk text and file names; higher is better. ``allowed`` and ``blocked`` restrict
        the matches inside FTS5's own ranking (a filter never leaves fewer than ``limit`` when more exist)."""
        conditions, values = ["chunks_fts MATCH ?"], [fts_query]
        if allowed is not None:
            conditions.append("rowid IN (SELECT value FROM json_each(?))")
            values.append(json.dumps(sorted(allowed)))
        if blocked:
            conditions.append("rowid NOT IN (SELECT value FROM json_each(?))")
            values.append(json.dumps(sorted(blocked)))
        rows = self.conn.execute(
            f"SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE {' AND '.join(conditions)} "
            "ORDER BY bm25(chunks_fts) LIMIT ?", (*values, limit))
        return [(r[0], r[1]) for r in rows]

    def keyword_sources(self, chunk_ids: list[int] | None = None) -> Iterator[tuple[int, str, str]]:
        """(chunk id, text, file path) of every chunk, or of the given ones: what keyword terms come from."""
        sql = "SELECT c.id, c.text, f.path FROM chunks c JOIN files f ON f.id = c.file_id"
        if chunk_ids is None:
            yield from self.conn.execute(sql)
            return
        for part in batched(chunk_ids):
            yield from self.conn.execute(f"{sql} WHERE c.id IN ({placeholders(len(part))})", part).fetchall()

    def keyword_matches(self, fts_query: str) -> set[int]:
        """Every chunk an FTS5 expression matches (phrase and exclusion conditions)."""
        return {r[0] for r in self.conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
                                                (fts_query,))}

    def files_where(self, extensions: tuple[str, ...], folders: tuple[str, ...], after_ns: int | None,
                    before_ns: int | None) -> list[tuple[int, str, int, int]]:
        """(id, path, size, mtime_ns) of indexed files by extension, folder and modification time, newest first."""
        conditions, values = ["status = 'indexed'"], []
        if extensions:
            conditions.append("(" + " OR ".join("lower(path) LIKE ?" for _ in extensions) + ")")
            values += [f"%{e}" for e in extensions]
        if folders:
            prefixes = [folder_prefix(f) for f in folders]
            conditions.append("(" + " OR ".join("path = ? OR substr(path, 1, ?) = ?" for _ in folders) + ")")
            for folder, prefix in zip(folders, prefixes):
                values += [folder, len(prefix), prefix]
        if after_ns is not None:
            conditions.append("mtime_ns >= ?")
            values.append(after_ns)
        if before_ns is not None:
            conditions.append("mtime_ns < ?")
            values.append(before_ns)
        return [tuple(r) for r in self.conn.execute(
            f"SELECT id, path, size, mtime_ns FROM files WHERE {' AND '.join(conditions)} ORDER BY mtime_ns DESC",
            values)]

    def chunk_at(self, path: str, page: int | None = None) -> int | None:
        """The first chunk of ``path`` (on ``page`` when given), or None when it is not indexed there."""
        row = self.conn.execute(
            "SELECT min(c.id) FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ? "
            "AND (? IS NULL OR c.page = ?)", (path, page, page)).fetchone()
        return row[0] if row else None

    def postings_of(self, chunk_ids: list[int] | None = None) -> Iterator[tuple[int, int, float]]:
        """(chunk id, token id, weight) of the given chunks' lexical weights, or of every chunk."""
        if chunk_ids is None:
            yield from self.conn.execute("SELECT chunk_id, token_id, weight FROM sparse")
            return
        for part in batched(chunk_ids):
            yield from self.conn.execute(
                f"SELECT chunk_id, token_id, weight FROM sparse WHERE chunk_id IN ({placeholders(len(part))})", part)

    def sparse_of(self, chunk_id: int) -> dict[int, float]:
        """A chunk's own lexical weights (token id -> weight)."""
        return dict(self.conn.execute("SELECT token_id, weight FROM sparse WHERE chunk_id = ?", (chunk_id,)))

    def file_list(self, text: str = "", failed_only: bool = False, offset: int = 0,
                  limit: int = 1000) -> list[tuple[str, int, int, int, str, str | None]]:
        """(path, size, mtime_ns, chunks, status, reason) of files whose path contains ``text``, by path:
        indexed and failed files, and what the exclusions left out (status ``excluded``, the rule as reason).
        An indexed file's reason is its note (text capped, meaning for its first chunks only) and whether
        its meaning is still pending."""
        rows = self.conn.execute(
            "SELECT path, size, mtime_ns, chunks, status, CASE WHEN status = 'failed' THEN error ELSE "
            "nullif(ltrim(coalesce(note, '') || CASE WHEN EXISTS (SELECT 1 FROM chunks c JOIN pending p ON "
            "p.chunk_id = c.id WHERE c.file_id = files.id) THEN '; meaning pending' ELSE '' END, '; '), '') END "
            "FROM files WHERE instr(lower(path), ?) > 0 "
            "AND (? = 0 OR status = 'failed') UNION ALL "
            "SELECT path, 0, 0, 0, 'excluded', reason FROM excluded WHERE instr(lower(path), ?) > 0 AND ? = 0 "
            "ORDER BY path LIMIT ? OFFSET ?",
            (text.lower(), int(failed_only), text.lower(), int(failed_only), limit, offset))
        return [tuple(r) for r in rows]

    def set_excluded(self, folder: str, items: list[tuple[str, str]]) -> None:
        """What the exclusions leave out at or below ``folder`` now (replacing what was recorded there)."""
        prefix = folder_prefix(folder)
        self.conn.execute("DELETE FROM excluded WHERE path = ? OR substr(path, 1, ?) = ?",
                          (folder, len(prefix), prefix))
        self.conn.executemany("INSERT OR REPLACE INTO excluded(path, reason) VALUES (?, ?)", items)

    def chunks_of_files(self, file_ids: list[int]) -> set[int]:
        found: set[int] = set()
        for part in batched(file_ids):
            found.update(r[0] for r in self.conn.execute(
                f"SELECT id FROM chunks WHERE file_id IN ({placeholders(len(part))})", part))
        return found

    def newest_files_first_chunks(self, chunk_ids: set[int], limit: int) -> list[int]:
        """Among the files that own ``chunk_ids``: the first of those chunks of each of the ``limit``
        newest files, newest first (a file listing, without reading every chunk's text)."""
        rows = self.conn.execute(
            "SELECT min(c.id) FROM chunks c JOIN files f ON f.id = c.file_id "
            "WHERE c.id IN (SELECT value FROM json_each(?)) GROUP BY c.file_id "
            "ORDER BY max(f.mtime_ns) DESC, min(f.path) LIMIT ?",
            (json.dumps(sorted(chunk_ids)), limit))
        return [r[0] for r in rows]
    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        found: dict[int, ChunkRow] = {}
        for part in batched(ids):
            rows = self.conn.execute(
                "SELECT c.id, f.path, c.page, c.char_start, c.char_end, c.text, f.size, f.mtime_ns, f.unit, "
                "instr(',' || f.ocr_pages || ',', ',' || c.page || ',') > 0, "
                "CASE WHEN length(c.dense) > 0 THEN 'encoded' WHEN EXISTS (SELECT 1 FROM pending p WHERE "
                "p.chunk_id = c.id) THEN 'pending' ELSE 'capped' END, f.meaning_cap FROM chunks c "
                f"JOIN files f ON f.id = c.file_id WHERE c.id IN ({placeholders(len(part))})",
                part,
            )
            found.update((row[0], ChunkRow(*row[:9], bool(row[9]), row[10], row[11])) for row in rows)
        return found

    def context(self, chunk_id: int, chars: int = 600) -> tuple[str, str, str]:
        """(text before, the chunk, text after) on the chunk's page, rebuilt from neighbouring chunks."""
        hit = self.conn.execute("SELECT file_id, page, char_start, char_end, text FROM chunks WHERE id = ?",
                                (chunk_id,)).fetchone()
        if hit is None:
            return "", "", ""
        file_id, page, start, end, text = hit
        rows = self.conn.execute(
            "SELECT char_start, char_end, text FROM chunks WHERE file_id = ? AND page = ? "
            "AND char_end >= ? AND char_start <= ? ORDER BY char_start",
            (file_id, page, start - chars, end + chars),
        ).fetchall()
        span_start, pieces, covered = rows[0][0], [], rows[0][0]
        for piece_start, piece_end, piece_text in rows:
            if piece_start > covered:
                pieces.append(" " * (piece_start - covered) + piece_text)
            elif piece_end > covered:
                pieces.append(piece_text[covered - piece_start:])
            covered = max(covered, piece_end)
        page_text = "".join(pieces)
        offset = start - span_start
        before = page_text[max(0, offset - chars):offset]
        after = page_text[offset + len(text):offset + len(text) + chars]
        return before, text, after

    def failures(self) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT path, error FROM files WHERE status = 'failed' ORDER BY path")
        return [tuple(r) for r in rows]

    def counts(self) -> dict[str, int]:
        files, failed = self.conn.execute(
            "SELECT count(*), coalesce(sum(status = 'failed'), 0) FROM files"
        ).fetchone()
        return {"files": files, "failed": failed, "chunks": self.chunk_count()}

    def root_counts(self) -> list[dict[str, object]]:
        """Per indexed folder: how many files and chunks it holds, and its recorded device."""
        result = []
        for root, device in self.root_devices().items():
            prefix = folder_prefix(root)
            files, chunks = self.conn.execute(
                "SELECT count(*), coalesce(sum(chunks), 0) FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
                (root, len(prefix), prefix),
            ).fetchone()
            result.append({"path": root, "files": files, "chunks": chunks, "device": device})
        return result

    def model_info(self) -> dict[str, object] | None:
        raw = self.get_meta("model")
        return json.loads(raw) if raw else None


def process_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (a claim of a killed one is void)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def decode_dense(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    packed = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16)  # one buffer, not one per row
    return ids, packed.reshape(len(rows), -1).astype(np.float32)


def keyword_row(chunk_id: int, text: str, path: str) -> tuple[int, str, str]:
    """A chunk's keyword-index row: its terms and the terms of its file's name (without the suffix).

    Deleting a row from a contentless FTS5 table needs the values it was inserted with, so
    inserts and deletes both go through here.
    """
    return chunk_id, analyze.index_text(text), analyze.index_text(Path(path).stem)
