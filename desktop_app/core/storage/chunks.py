"""Reading the ``chunks`` and ``sparse`` tables: counts and ids, dense vectors, lexical weights,
rows for hits and the text around a chunk. Stage 1 writes chunks and stage 2 their vectors
(:mod:`~desktop_app.core.storage.store`, :mod:`~desktop_app.core.storage.pending`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import numpy as np

from desktop_app.core.storage.records import ChunkRow
from desktop_app.core.storage.schema import batched, placeholders
from desktop_app.core.storage.transactions import Transactions


class ChunkTables(Transactions):
    """Chunks as search and the caches read them; vectors are float16 blobs, empty until encoded."""

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

    def chunk_paths(self, ids: list[int]) -> dict[int, str]:
        """chunk id -> its file's path (chunks deleted meanwhile are missing)."""
        found: dict[int, str] = {}
        for part in batched(ids):
            found.update(self.conn.execute(f"SELECT c.id, f.path FROM chunks c JOIN files f ON f.id = c.file_id "
                                           f"WHERE c.id IN ({placeholders(len(part))})", part).fetchall())
        return found

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


def decode_dense(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    packed = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16)  # one buffer, not one per row
    return ids, packed.reshape(len(rows), -1).astype(np.float32)
