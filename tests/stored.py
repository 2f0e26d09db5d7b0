"""Chunks stored with their vectors at once (both stages in one step), for tests of the caches and the store."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.storage.records import ChunkEncoding, NewChunk
from desktop_app.core.storage.store import Store


@dataclass(frozen=True)
class Encoded:
    text: str
    dense: np.ndarray
    sparse: dict[int, float]


def store_encoded(store: Store, path: str, chunks: list[Encoded], mtime_ns: int = 1) -> list[ChunkEncoding]:
    """Stage 1 and stage 2 of one file inside the caller's transaction; returns what stage 2 wrote."""
    _, ids = store.replace_file(path, 1, mtime_ns, "sha", "{}",
                                [NewChunk(1, 0, len(c.text), 3, c.text) for c in chunks])
    return store.store_encodings([ChunkEncoding(cid, c.dense, c.sparse) for cid, c in zip(ids, chunks)])


def index_encoded(index: LocalIndex, path: str, chunks: list[Encoded]) -> list[int]:
    """A file stored and added to the index's caches, as a writer does after its transactions commit."""
    with index.store.transaction():
        encodings = store_encoded(index.store, path, chunks)
    index.add_words([e.chunk_id for e in encodings])
    index.add_encodings(encodings)
    return [e.chunk_id for e in encodings]
