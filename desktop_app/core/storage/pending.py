"""Stage 2's work list (the ``pending`` table): claiming chunks to encode, storing their vectors.

A claim names the claiming process and runs out after a lease, so two processes never encode
the same chunks at once and a killed one leaves nothing stuck.
"""

from __future__ import annotations

import os
import time
from itertools import accumulate

import numpy as np

from desktop_app.core.storage.records import ChunkEncoding, PendingChunk
from desktop_app.core.storage.schema import batched, placeholders
from desktop_app.core.storage.transactions import Transactions


class PendingWork(Transactions):
    """Chunks stored without vectors yet, and the writes that give them their vectors."""

    def claim_pending(self, limit: int, lease_s: float, max_tokens: int | None = None) -> list[PendingChunk]:
        """Up to ``limit`` unclaimed pending chunks in stage 2's order, claimed for ``lease_s`` seconds
        (another process skips them meanwhile; a claim left by a killed process simply runs out), and no
        more than ``max_tokens`` in all (one chunk at least)."""
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
            if max_tokens is not None:
                rows = rows[:max(1, sum(1 for total in accumulate(row[2] for row in rows) if total <= max_tokens))]
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


def process_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (a claim of a killed one is void)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
