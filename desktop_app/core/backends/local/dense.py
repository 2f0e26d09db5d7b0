"""hnswlib index over the dense vectors: a cache that can always be rebuilt from SQLite.

hnswlib releases the GIL in both ``add_items`` and ``knn_query`` and they must not overlap,
so every call goes through one lock; adds take it for a few vectors at a time and step aside
between slices while a query waits (a Python lock is not fair: a loop that releases and
re-takes it starves the waiter), so a search during indexing waits for one slice, never for a
whole batch. Saves go to a temporary file and ``os.replace``.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections.abc import Container, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

M = 32
EF_CONSTRUCTION = 200
MIN_EF = 128
ADD_SLICE = 8
MAX_STEP_ASIDE_S = 0.05
INITIAL_CAPACITY = 1024


class DenseIndex:
    """Labels are chunk ids; space is inner product over unit vectors (cosine)."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.lock = threading.Lock()
        self.query_waiting = threading.Event()
        self.save_lock = threading.Lock()
        self.index = None
        self.deleted_count = 0
        self.dirty = False

    def load_or_create(self) -> bool:
        """Load the saved index if it is readable; otherwise start empty. True when loaded."""
        import hnswlib

        with self.lock:
            self.index = hnswlib.Index(space="ip", dim=self.dim)
            if self.path.exists():
                try:
                    self.index.load_index(str(self.path), max_elements=0)
                    self.index.set_ef(MIN_EF)
                    return True
                except (RuntimeError, OSError, ValueError):
                    self.index = hnswlib.Index(space="ip", dim=self.dim)
            self.index.init_index(max_elements=INITIAL_CAPACITY, ef_construction=EF_CONSTRUCTION, M=M)
            self.index.set_ef(MIN_EF)
            self.dirty = True
            return False

    def rebuild(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Build a fresh index from ``batches`` of (ids, vectors) beside the live one, then swap it in.

        Searches keep using the old index (with its deleted labels) until the swap, so a
        compaction never shows them an empty or half-filled index.
        """
        import hnswlib

        fresh = hnswlib.Index(space="ip", dim=self.dim)
        fresh.init_index(max_elements=INITIAL_CAPACITY, ef_construction=EF_CONSTRUCTION, M=M)
        fresh.set_ef(MIN_EF)
        for ids, vectors in batches:
            needed = fresh.get_current_count() + len(ids)
            if needed > fresh.get_max_elements():
                fresh.resize_index(max(needed, 2 * fresh.get_max_elements()))
            fresh.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        with self.lock:
            self.index = fresh
            self.deleted_count = 0
            self.dirty = True

    def labels(self) -> np.ndarray:
        """Every label hnswlib holds, deleted ones included (hnswlib cannot tell them apart)."""
        with self.lock:
            return np.asarray(self.index.get_ids_list(), dtype=np.int64)

    @property
    def total_labels(self) -> int:
        """Labels ever added and not compacted away, deleted ones included."""
        with self.lock:
            return self.index.get_current_count()

    @property
    def count(self) -> int:
        return self.total_labels - self.deleted_count

    def file_bytes(self) -> int:
        """About what :meth:`save` writes now: per label its vector, its level-0 links and label, and a
        share of the upper levels' links (one label in M has them)."""
        per_label = self.dim * 4 + 2 * M * 4 + 4 + 8 + 4 + (M * 4 + 4) // M
        return _HEADER.size + self.total_labels * per_label

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        with self.lock:
            needed = self.index.get_current_count() + len(ids)
            if needed > self.index.get_max_elements():
                self.index.resize_index(max(needed, 2 * self.index.get_max_elements()))
            self.dirty = True
        for start in range(0, len(ids), ADD_SLICE):
            with self.lock:
                self.index.add_items(vectors[start:start + ADD_SLICE], ids[start:start + ADD_SLICE])
            self.step_aside()

    def step_aside(self) -> None:
        """Let a waiting query take the lock before the next slice (bounded, so adds never starve)."""
        deadline = time.monotonic() + MAX_STEP_ASIDE_S
        while self.query_waiting.is_set() and time.monotonic() < deadline:
            time.sleep(0.0005)

    def delete(self, ids: list[int]) -> None:
        """Mark labels deleted; labels hnswlib never had or already dropped are ignored."""
        with self.lock:
            for label in ids:
                try:
                    self.index.mark_deleted(int(label))
                except RuntimeError:
                    continue
                self.deleted_count += 1
                self.dirty = True

    def query(self, vector: np.ndarray, k: int, allowed: Container[int] | None = None,
              most: int | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, cosine) pairs; fewer when the index holds fewer. ``allowed`` keeps the
        search inside those labels (hnswlib's filter callback: it finds k allowed ones, not k then
        filters); ``most`` is how many labels it lets through at most, when known."""
        self.query_waiting.set()
        with self.lock:
            self.query_waiting.clear()
            k = min(k, self.index.get_current_count() - self.deleted_count, k if most is None else most)
            if k <= 0:
                return []
            self.index.set_ef(max(MIN_EF, 2 * k))
            query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
            keep = allowed.__contains__ if allowed is not None else None
            while k > 0:
                try:
                    labels, distances = self.index.knn_query(query, k=k, filter=keep)
                    return [(int(label), 1.0 - float(distance)) for label, distance in zip(labels[0], distances[0])]
                except RuntimeError:
                    k //= 2
            return []

    def save(self) -> None:
        """Write to a temporary file, then atomically replace the old one.

        hnswlib writes through a C++ stream that ignores write errors: on a full disk it leaves a
        truncated file and says nothing. So the file is checked whole before it replaces the old one,
        and a failed save removes it (it would only hold space) and leaves the old file as it was.
        Only hnswlib's write holds the search lock; the fsync and the check, which a busy disk makes
        last, run beside searches.
        """
        with self.save_lock:  # saves share the temporary file
            temporary = self.path.with_suffix(".hnsw.tmp")
            try:
                with self.lock:
                    self.index.save_index(str(temporary))
                    self.dirty = False
                with open(temporary, "rb+") as handle:
                    os.fsync(handle.fileno())
                    if not _written_whole(handle):
                        raise OSError(errno.ENOSPC, "No space left on device (hnswlib wrote part of the file)",
                                      str(temporary))
                os.replace(temporary, self.path)
            except BaseException:
                temporary.unlink(missing_ok=True)
                with self.lock:
                    self.dirty = True
                raise


# hnswlib 0.8's file: 6 size_t, an int and a uint32, 3 size_t, a double and a size_t; then every element's
# level-0 block; then, per element, a uint32 byte count and that many bytes of upper-level links.
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")


def _written_whole(handle: BinaryIO) -> bool:
    """The hnswlib file in ``handle`` ends exactly where its own header and link counts say it does."""
    handle.seek(0)
    header = handle.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return False
    fields = _HEADER.unpack(header)
    count, per_element = fields[2], fields[3]
    handle.seek(_HEADER.size + count * per_element)
    links = handle.read()
    offset = 0
    for _ in range(count):
        if offset + 4 > len(links):
            return False
        offset += 4 + int.from_bytes(links[offset:offset + 4], "little")
    return offset == len(links)
