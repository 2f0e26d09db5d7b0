"""Copies of one document: ``files.copy_group`` and the ``likeness`` tables behind it.

A file joins the group of an indexed file with the same bytes (its sha256), else of the most alike
file among those sharing a band key with it (:mod:`desktop_app.core.likeness`) at or above
``NEAR_COPY``, else starts a group of its own. A group is a label, not a file id: a file that changes
enough to leave its group takes a fresh label, and the others stay together. Search shows a group as
one hit that names the others; exact copies share their vectors (:meth:`CopyTables.encoded_twins`).
"""

from __future__ import annotations

import numpy as np

from desktop_app.core import likeness
from desktop_app.core.storage.records import ChunkEncoding, CopyGroup
from desktop_app.core.storage.schema import batched, placeholders
from desktop_app.core.storage.transactions import Transactions

# Files a band offers as candidates: a file at the threshold shares 9 of the 42 bands on average, a copy with a
# sentence changed about 30, so a copy is found even when each band offers only a few of many alike files.
PER_BAND = 8
# Copies named per group: a folder of ten thousand near-identical files is one hit naming the first 50.
LISTED = 50


class CopyTables(Transactions):
    """Which indexed files are copies of which, and the vectors exact copies can share."""

    def place_in_copy_group(self, file_id: int, sha256: str | None, signature: bytes | None) -> int:
        """Put a just-stored file in its copy group (see the module); returns the group. Call inside a transaction."""
        group = None
        if sha256:
            row = self.conn.execute(
                "SELECT copy_group FROM files WHERE sha256 = ? AND id != ? AND status = 'indexed' "
                "AND copy_group IS NOT NULL LIMIT 1", (sha256, file_id)).fetchone()
            group = row[0] if row else None
        if signature is not None:
            keys = likeness.band_keys(signature)
            if group is None:
                group = self._nearest_group(file_id, signature, keys)
            self.conn.execute("INSERT OR REPLACE INTO likeness(file_id, signature) VALUES (?, ?)", (file_id, signature))
            self.conn.executemany("INSERT OR IGNORE INTO likeness_bands(key, file_id) VALUES (?, ?)",
                                  [(key, file_id) for key in keys])
        if group is None:
            group = self.conn.execute("SELECT coalesce(max(copy_group), 0) + 1 FROM files").fetchone()[0]
        self.conn.execute("UPDATE files SET copy_group = ? WHERE id = ?", (group, file_id))
        return group

    def _nearest_group(self, file_id: int, signature: bytes, keys: list[int]) -> int | None:
        """The group of the most alike indexed file among a few that share a band with ``signature``, if alike
        enough. Each band offers at most ``PER_BAND`` files: ten thousand files made from one template all share
        every band, and need not all be compared with each new one (any of them that is alike enough will do)."""
        candidates: set[int] = set()
        for key in keys:
            candidates.update(row[0] for row in self.conn.execute(
                "SELECT file_id FROM likeness_bands WHERE key = ? AND file_id != ? LIMIT ?", (key, file_id, PER_BAND)))
        best, best_group = likeness.NEAR_COPY, None
        for part in batched(sorted(candidates)):
            rows = self.conn.execute(
                "SELECT f.copy_group, l.signature FROM likeness l JOIN files f ON f.id = l.file_id "
                f"WHERE l.file_id IN ({placeholders(len(part))}) AND f.status = 'indexed' "
                "AND f.copy_group IS NOT NULL", part).fetchall()
            for group, other in rows:
                alike = likeness.similarity(signature, other)
                if alike >= best:
                    best, best_group = alike, group
        return best_group

    def forget_likeness(self, file_id: int) -> None:
        """Drop a file's signature and band keys (it changed, failed or left the index)."""
        row = self.conn.execute("SELECT signature FROM likeness WHERE file_id = ?", (file_id,)).fetchone()
        if row is None:
            return
        self.conn.executemany("DELETE FROM likeness_bands WHERE key = ? AND file_id = ?",
                              [(key, file_id) for key in likeness.band_keys(row[0])])
        self.conn.execute("DELETE FROM likeness WHERE file_id = ?", (file_id,))

    def copies_of(self, paths: list[str]) -> dict[str, CopyGroup]:
        """Each of ``paths`` that has indexed copies -> its group (the first ``LISTED`` members by path)."""
        label_of: dict[str, int] = {}
        for part in batched(sorted(set(paths))):
            label_of.update(self.conn.execute(
                f"SELECT path, copy_group FROM files WHERE path IN ({placeholders(len(part))}) "
                "AND copy_group IS NOT NULL", part).fetchall())
        groups: dict[int, CopyGroup] = {}
        for part in batched(sorted(set(label_of.values()))):
            totals = dict(self.conn.execute(
                f"SELECT copy_group, count(*) FROM files WHERE copy_group IN ({placeholders(len(part))}) "
                "AND status = 'indexed' GROUP BY copy_group HAVING count(*) > 1", part).fetchall())
            if not totals:  # the usual case: no candidate has a copy (half of copies_of's time went to listing none)
                continue
            members: dict[int, list[str]] = {label: [] for label in totals}
            for label, path in self.conn.execute(
                    "SELECT copy_group, path FROM (SELECT copy_group, path, row_number() OVER (PARTITION BY "
                    f"copy_group ORDER BY path) AS n FROM files WHERE copy_group IN ({placeholders(len(totals))}) "
                    "AND status = 'indexed') WHERE n <= ?", (*totals, LISTED)):
                members[label].append(path)
            groups.update((label, CopyGroup(label, members[label], totals[label])) for label in totals)
        return {path: groups[label] for path, label in label_of.items() if label in groups}

    def encoded_twins(self, chunk_ids: list[int]) -> dict[int, ChunkEncoding]:
        """Vectors for those of ``chunk_ids`` whose file has an exact copy (same sha256) with the same
        chunk already encoded (same place, same text): stage 2 stores these instead of encoding again."""
        found: dict[int, ChunkEncoding] = {}
        for part in batched(chunk_ids):
            rows = self.conn.execute(
                "SELECT c.id, min(t.id) FROM chunks c JOIN files f ON f.id = c.file_id "
                "JOIN files g ON g.sha256 = f.sha256 AND g.id != f.id AND g.status = 'indexed' "
                "JOIN chunks t ON t.file_id = g.id AND t.page = c.page AND t.char_start = c.char_start "
                "AND t.char_end = c.char_end AND length(t.dense) > 0 AND t.text = c.text "
                f"WHERE c.id IN ({placeholders(len(part))}) AND f.sha256 IS NOT NULL GROUP BY c.id", part).fetchall()
            for chunk_id, twin in rows:
                dense = self.conn.execute("SELECT dense FROM chunks WHERE id = ?", (twin,)).fetchone()[0]
                found[chunk_id] = ChunkEncoding(chunk_id, np.frombuffer(dense, np.float16).astype(np.float32),
                                                self.sparse_of(twin))
        return found
