"""One connection's transactions, the generation counter they move on, and the ``meta`` rows.

Several processes may write one index (one at a time, under the writer lock). Every transaction
that adds or removes chunks moves the generation on and leaves tombstones for removed chunks, so
another process can ask what changed since its caches last looked (:meth:`changes_since`) instead
of comparing everything.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sqlite_utils

from desktop_app.core.storage.records import Changes


class Transactions:
    """The connection every table of the store shares; :class:`~desktop_app.core.storage.store.Store`
    opens it, the table classes beside this one read and write through it."""

    db: sqlite_utils.Database
    next_generation: int  # the generation the open transaction commits, if it changes chunks
    chunks_changed: bool  # set by writes that add or remove chunks inside the open transaction

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error, the COMMIT's own included.

        A transaction that adds or removes chunks moves the index's generation on by one, so
        other processes can tell that their vector cache is behind (see :meth:`changes_since`).
        On a full disk SQLite may have rolled back already, or fail the COMMIT: either way the
        connection comes out of here with no transaction open, and the caller sees the disk's error
        (not "cannot rollback"), so the next transaction, once there is room, can begin.
        """
        self.conn.execute("BEGIN IMMEDIATE")
        self.next_generation = self.generation() + 1
        self.chunks_changed = False
        try:
            yield
            if self.chunks_changed:
                self.set_meta("generation", str(self.next_generation))
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """BEGIN ... COMMIT around reads: they all see one state of the index, whatever commits meanwhile."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def data_version(self) -> int:
        """SQLite's count for this connection: it changes whenever another connection (a writer thread,
        another process) has committed anything since it was last read."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def generation(self) -> int:
        """How many chunk-changing transactions this index has committed."""
        return int(self.get_meta("generation") or 0)

    def changes_since(self, generation: int, max_id: int) -> Changes:
        """Chunks added (ids above ``max_id``, with their vectors) and removed since ``generation``,
        read from one snapshot. Ids only grow (AUTOINCREMENT) and writers take turns, so every
        chunk committed after that generation has a higher id than any before it."""
        with self.snapshot():
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

    def prune_tombstones(self, up_to: int) -> None:
        """Forget removals up to generation ``up_to`` (a saved cache holds them); older views must compare in full."""
        with self.transaction():
            self.conn.execute("DELETE FROM tombstones WHERE generation <= ?", (up_to,))
            self.set_meta("tombstones_floor", str(up_to))

    def tombstone_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM tombstones").fetchone()[0]

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def model_info(self) -> dict[str, object] | None:
        raw = self.get_meta("model")
        return json.loads(raw) if raw else None
