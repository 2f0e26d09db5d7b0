"""SQLite (through sqlite-utils) is the source of truth: files, chunks, vectors, postings, pending work.

WAL mode lets searches read while the indexer writes. Writers group their statements in
``with store.transaction():`` so a file's chunks are replaced all at once or not at all.

Indexing has two stages. Stage 1 stores a file's chunks with their text and keyword terms and no
vectors (an empty ``dense`` blob) and lists them in ``pending``; stage 2 writes each chunk's
vectors and lexical weights later, in place, and takes it off the list. A chunk past its file's
meaning cap (``files.meaning_cap``) is kept for its words only: no vectors, never pending.

The store is one object over several tables; each group of tables is a class of its own module
(:mod:`~desktop_app.core.storage.files`, :mod:`~desktop_app.core.storage.chunks`,
:mod:`~desktop_app.core.storage.pending`, :mod:`~desktop_app.core.storage.keywords`), all sharing
one connection and transaction (:mod:`~desktop_app.core.storage.transactions`). What spans them
stays here: opening and upgrading the schema, replacing or removing a file's chunks (its record,
chunks, postings, keyword rows, pending work and tombstones in one go), clearing, counting.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from desktop_app.core import analyze
from desktop_app.core.storage.chunks import ChunkTables
from desktop_app.core.storage.copies import CopyTables
from desktop_app.core.storage.files import FileTables
from desktop_app.core.storage.keywords import KeywordTable, keyword_row
from desktop_app.core.storage.pending import PendingWork
from desktop_app.core.storage.records import NewChunk
from desktop_app.core.storage.schema import SCHEMA, SCHEMA_VERSION, batched, connect, log_bytes, placeholders

WAL_HEADER_BYTES = 32  # SQLite's write-ahead log format: one file header, then a header before every page
WAL_FRAME_HEADER_BYTES = 24


class Store(FileTables, ChunkTables, PendingWork, KeywordTable, CopyTables):
    """All SQL of the app lives in this package (one class per group of tables); callers get plain Python
    values back."""

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
        if "copy_group" not in file_columns:  # indexes from before copies were grouped: by identical bytes only
            with self.transaction():
                self.conn.execute("ALTER TABLE files ADD COLUMN copy_group INTEGER")
                self.conn.execute("UPDATE files SET copy_group = coalesce((SELECT min(o.id) FROM files o WHERE "
                                  "o.sha256 = files.sha256 AND o.status = 'indexed'), id)")
        self.conn.execute("CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256)")
        self.conn.execute("CREATE INDEX IF NOT EXISTS files_copy_group ON files(copy_group)")
        if self.get_meta("keyword_analyzer") != analyze.ANALYZER_VERSION:
            self.rebuild_keyword_index()

    def clear(self) -> None:
        """Forget every file, chunk and the model record; roots are kept. Other processes see a
        new generation below which no tombstones reach, so they compare their caches in full."""
        with self.transaction():
            for table in ("sparse", "chunks", "files", "meta", "tombstones", "excluded", "pending", "likeness",
                          "likeness_bands"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')")
            self.set_meta("schema", SCHEMA_VERSION)
            self.set_meta("keyword_analyzer", analyze.ANALYZER_VERSION)
            self.set_meta("tombstones_floor", str(self.next_generation))
            self.chunks_changed = True

    def log_headroom(self) -> int:
        """Bytes SQLite's write-ahead log may still grow by before its automatic checkpoint lets it start
        over: each commit appends every page it changed, so many small commits outgrow the rows they hold."""
        pages = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return max(pages * (page_size + WAL_FRAME_HEADER_BYTES) + WAL_HEADER_BYTES - log_bytes(self.path), 0)

    def counts(self) -> dict[str, int]:
        files, failed = self.conn.execute(
            "SELECT count(*), coalesce(sum(status = 'failed'), 0) FROM files"
        ).fetchone()
        return {"files": files, "failed": failed, "chunks": self.chunk_count()}

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

    def replace_file(self, path: str, size: int, mtime_ns: int, sha256: str, settings: str,
                     chunks: list[NewChunk], note: str | None = None, unit: str = "page",
                     ocr_pages: list[int] | None = None, big: bool = False,
                     signature: bytes | None = None) -> tuple[list[int], list[int]]:
        """Store a file's new chunks (words now, vectors pending) in place of its old ones, and place it
        among its copies by ``sha256`` and its text's ``signature``. Returns (removed ids, added ids).

        Call inside :meth:`transaction`: together with the deletes this is all-or-nothing. ``big``
        files' chunks are encoded after every small file's.
        """
        existing = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        removed = self.forget_file(existing[0]) if existing else []
        encoded = sum(chunk.pending for chunk in chunks)
        file_id = self.upsert_file(path, size, mtime_ns, sha256, "indexed", settings, note=note, chunks=len(chunks),
                                   unit=unit, ocr_pages=ocr_pages, meaning_cap=encoded if encoded < len(chunks) else 0)
        self.place_in_copy_group(file_id, sha256, signature)
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
    def record_failure(self, path: str, size: int, mtime_ns: int, settings: str, reason: str) -> list[int]:
        """Mark a file as failed with its reason; its old chunks (now stale) are removed."""
        existing = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        removed = self.forget_file(existing[0]) if existing else []
        self.upsert_file(path, size, mtime_ns, None, "failed", settings, error=reason)
        return removed

    def remove_file(self, file_id: int) -> list[int]:
        removed = self.forget_file(file_id)
        self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return removed

    def forget_file(self, file_id: int) -> list[int]:
        """What a file's record held beyond itself: its chunks (their ids are returned) and its likeness."""
        self.forget_likeness(file_id)
        return self.delete_chunks_of(file_id)
