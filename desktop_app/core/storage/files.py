"""The ``roots``, ``files`` and ``excluded`` tables: indexed folders, file records and what the
exclusions left out, and the listings and counts built from them."""

from __future__ import annotations

import time

from desktop_app.core.paths import folder_prefix
from desktop_app.core.storage.records import FileRecord
from desktop_app.core.storage.transactions import Transactions


class FileTables(Transactions):
    """Indexed folders and file records (a file's chunks are written by the store itself)."""

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

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

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

    def failures(self) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT path, error FROM files WHERE status = 'failed' ORDER BY path")
        return [tuple(r) for r in rows]

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
