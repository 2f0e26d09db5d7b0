"""The sparse (lexical weight) postings in memory: exact sparse search in milliseconds at 1M chunks.

SQLite's ``sparse`` table stays the truth; this is a cache beside ``dense.hnsw``, kept up to date
by the same generation counter and tombstones, saved atomically by writers only, rebuilt from
SQLite when missing or stale. Scores are exact: a query sums every posting of its tokens
(``np.bincount`` over the postings' chunk ids), so no pruning can miss a chunk.

Layout: one token-major CSR block (``indptr`` by token id, then chunk ids and weights) that
is rewritten when saved, plus the postings added since (a small list merged at the next save),
plus a mask of deleted chunk ids. Why not qdrant-edge-py: see bench/README.md ("Sparse index").
"""

from __future__ import annotations

import itertools
import os
import threading
import zipfile
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import numpy as np

ID = np.int32
WEIGHT = np.float32


class PostingsIndex:
    """Token -> (chunk ids, weights); ``top`` and ``scores`` answer exactly from them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.save_lock = threading.Lock()
        self.indptr = np.zeros(1, dtype=np.int64)
        self.ids = np.zeros(0, dtype=ID)
        self.weights = np.zeros(0, dtype=WEIGHT)
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (tokens, ids, weights) added
        self.deleted = np.zeros(0, dtype=bool)  # by chunk id
        self.dirty = False

    # ----- building and keeping up --------------------------------------------------------------
    def load(self, extras: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
        """Load the saved postings; return the arrays named ``extras`` saved beside them (see :meth:`save`),
        or None (and start empty) when the file is missing, unreadable or lacks one of them."""
        try:
            with np.load(self.path) as saved:
                arrays = {name: saved[name] for name in saved.files}
            indptr, ids, weights = arrays["indptr"], arrays["ids"], arrays["weights"]
            kept = {name: arrays[name] for name in extras}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            self.reset()
            return None
        with self.lock:
            self.indptr, self.ids, self.weights = indptr, ids, weights
            self.deleted = np.zeros(0, dtype=bool)
            self.pending = []
            self._mark(ids, False)
            self.dirty = False
        return kept

    def reset(self) -> None:
        with self.lock:
            self.indptr = np.zeros(1, dtype=np.int64)
            self.ids = np.zeros(0, dtype=ID)
            self.weights = np.zeros(0, dtype=WEIGHT)
            self.pending, self.deleted, self.dirty = [], np.zeros(0, dtype=bool), True

    def add(self, rows: Iterable[tuple[int, int, float]]) -> None:
        """Add (chunk id, token id, weight) postings of new chunks."""
        with self.lock:
            if self._append(rows) and sum(len(p[0]) for p in self.pending) > max(1 << 20, len(self.ids) // 8):
                self._merge()

    def _append(self, rows: Iterable[tuple[int, int, float]]) -> int:
        """Queue postings as pending (lock held); return how many."""
        table = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64).reshape(-1, 3)
        if len(table):
            ids, tokens, weights = table[:, 0].astype(ID), table[:, 1].astype(np.int64), table[:, 2].astype(WEIGHT)
            self.pending.append((tokens, ids, weights))
            self._mark(ids, False)
            self.dirty = True
        return len(table)

    def delete(self, chunk_ids: Iterable[int]) -> None:
        ids = np.fromiter(chunk_ids, dtype=np.int64)
        if len(ids):
            with self.lock:
                self._mark(ids, True)
                self.dirty = True

    def rebuild(self, rows: Iterable[tuple[int, int, float]]) -> None:
        """Replace everything with the given (chunk id, token id, weight) postings (from SQLite),
        sorted into the CSR block once at the end."""
        self.reset()
        rows = iter(rows)
        with self.lock:
            while self._append(itertools.islice(rows, 1 << 20)):
                pass
            self._merge()

    def save(self, snapshot: Callable[[], dict[str, np.ndarray]] | None = None) -> None:
        """Write the merged postings without the deleted ones to a temporary file, then replace.

        ``snapshot`` gives the arrays to write where an owner keeps more in the same file (a keyword
        cache's vocabulary, read back by :meth:`load`), taking :meth:`take_for_save` under its own lock. Only
        taking them holds the search lock: the write and its fsync, which a busy disk makes last, run
        beside searches.
        """
        with self.save_lock:  # saves share the temporary file, and the newest arrays must land last
            temporary = self.path.with_name(self.path.name + ".tmp")
            try:
                arrays = snapshot() if snapshot is not None else self.take_for_save()
                with open(temporary, "wb") as handle:
                    np.savez(handle, **arrays)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
            except BaseException:  # a full disk: the part written only holds space; the old file stays
                temporary.unlink(missing_ok=True)
                with self.lock:
                    self.dirty = True
                raise

    def take_for_save(self) -> dict[str, np.ndarray]:
        """The arrays a save writes, merged without the deleted chunks, marked saved. Later changes make
        new arrays, so these stay as they are while they are written."""
        with self.lock:
            self._merge(drop_deleted=True)
            self.dirty = False
            return {"indptr": self.indptr, "ids": self.ids, "weights": self.weights}

    def file_bytes(self) -> int:
        """About what :meth:`save` writes now: a row pointer per token up to the highest one (the postings
        added since the last merge may raise it) and the postings themselves."""
        tokens = max([len(self.indptr) - 1, *(int(p[0].max()) + 1 for p in self.pending if len(p[0]))])
        return (tokens + 1) * self.indptr.itemsize + self.posting_count * (self.ids.itemsize + self.weights.itemsize)

    @property
    def posting_count(self) -> int:
        return len(self.ids) + sum(len(p[0]) for p in self.pending)

    def compact(self) -> None:
        """Fold the postings added since the last merge into the CSR block (after a bulk load)."""
        with self.lock:
            self._merge()

    def _mark(self, ids: np.ndarray, deleted: bool) -> None:
        if not len(ids):
            return
        top = int(ids.max()) + 1
        if top > len(self.deleted):
            grown = np.zeros(max(top, 2 * len(self.deleted)), dtype=bool)
            grown[: len(self.deleted)] = self.deleted
            self.deleted = grown
        self.deleted[ids] = deleted

    def _merge(self, drop_deleted: bool = False) -> None:
        """Fold the pending postings into the CSR block (and leave out deleted chunks). Lock held."""
        if not self.pending and not drop_deleted:
            return
        counts = np.diff(self.indptr)
        tokens = [np.repeat(np.arange(len(counts), dtype=np.int64), counts)] + [p[0] for p in self.pending]
        ids = [self.ids] + [p[1] for p in self.pending]
        weights = [self.weights] + [p[2] for p in self.pending]
        tokens, ids, weights = np.concatenate(tokens), np.concatenate(ids), np.concatenate(weights)
        if drop_deleted and len(ids):
            keep = ~self.deleted[ids]
            tokens, ids, weights = tokens[keep], ids[keep], weights[keep]
            self.deleted[:] = False
        order = np.lexsort((ids, tokens))
        tokens, self.ids, self.weights = tokens[order], ids[order], weights[order]
        size = int(tokens.max()) + 1 if len(tokens) else 0
        self.indptr = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(tokens, minlength=size), out=self.indptr[1:])
        self.pending = []

    # ----- searching ----------------------------------------------------------------------------
    def parts(self, token: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The postings of ``token`` as (chunk ids, weights) parts, each sorted by id; deleted chunks
        are included (the caller masks them)."""
        with self.lock:
            return self._postings_of(token)

    def _postings_of(self, token: int) -> list[tuple[np.ndarray, np.ndarray]]:
        found = []
        if token + 1 < len(self.indptr):
            start, end = self.indptr[token], self.indptr[token + 1]
            if end > start:
                found.append((self.ids[start:end], self.weights[start:end]))
        for tokens, ids, weights in self.pending:
            hit = tokens == token
            if hit.any():
                order = np.argsort(ids[hit], kind="stable")
                found.append((ids[hit][order], weights[hit][order]))
        return found

    def scores(self, query: dict[int, float]) -> np.ndarray:
        """``sum(q_w * d_w)`` for every chunk id (index = chunk id; deleted chunks score 0).

        One ``bincount`` per token part, added up: measured faster at 1M chunks than one
        ``bincount`` over the concatenated parts (no copy of a common token's postings) and than
        scatter-adds or scipy's sparse products (bench/README.md, "Sparse index").
        """
        with self.lock:
            scores = np.zeros(len(self.deleted), dtype=np.float64)
            for token, q in query.items():
                for ids, weights in self._postings_of(token):
                    scores += np.bincount(ids, weights=weights * np.float32(q), minlength=len(scores))
            scores[self.deleted] = 0.0
            return scores

    def top(self, query: dict[int, float], limit: int, allowed: Collection[int] | None = None,
            blocked: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``limit`` best chunks with a score above 0, best first: inside ``allowed`` when given,
        never in ``blocked``."""
        return best_of(self.scores(query), limit, allowed, blocked)

    def weights_of(self, chunk_ids: list[int], query: dict[int, float]) -> dict[int, dict[int, float]]:
        """chunk id -> {query token: the chunk's weight} (every chunk id gets a dict), by binary search
        in each part's id-sorted postings."""
        found: dict[int, dict[int, float]] = {cid: {} for cid in chunk_ids}
        wanted = np.array(sorted(found), dtype=np.int64)
        with self.lock:
            known = wanted[wanted < len(self.deleted)]  # a chunk id past the deletion marks has no postings yet
            wanted = known[~self.deleted[known]]
            if not len(wanted):
                return found
            for token in query:
                for ids, weights in self._postings_of(token):
                    position = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
                    hit = ids[position] == wanted
                    for cid, weight in zip(wanted[hit].tolist(), weights[position[hit]].tolist()):
                        found[cid][token] = weight
        return found


def best_of(scores: np.ndarray, limit: int, allowed: Collection[int] | None = None,
            blocked: Collection[int] = ()) -> list[tuple[int, float]]:
    """The ``limit`` best (chunk id, score) with a score above 0 among scores indexed by chunk id,
    best first: inside ``allowed`` when given, never in ``blocked``."""
    if allowed is not None:
        keep = np.fromiter((i for i in allowed if i < len(scores)), dtype=np.int64)
        masked = np.zeros_like(scores)
        masked[keep] = scores[keep]
        scores = masked
    if blocked:
        scores[np.fromiter((i for i in blocked if i < len(scores)), dtype=np.int64)] = 0.0
    positive = np.flatnonzero(scores > 0)
    if len(positive) > limit:
        positive = positive[np.argpartition(-scores[positive], limit - 1)[:limit]]
    best = positive[np.argsort(-scores[positive], kind="stable")]
    return list(zip(best.tolist(), scores[best].tolist()))  # Python ints and floats, not numpy scalars one by one
