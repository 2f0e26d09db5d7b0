"""An index whose search side lives in a Qdrant collection: a cluster, or embedded in a folder.

The indexing machine keeps SQLite in the index folder as the truth (files, chunks, vectors,
postings), exactly as the local backend does; the local caches are replaced by one Qdrant point
per chunk (:mod:`.collection`), written when the chunk's words are stored and given its vectors
when they are made.

Only a process holding the writer lock writes points, right after its SQLite transaction
commits; the store generation they reflect is recorded in the ``qdrant_state`` meta row when it
lets go of the lock. A writer that finds that record behind the store (a crash between commit
and upsert, a cluster that was unreachable) compares every id and repairs the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.core.backends.qdrant.collection import (
    STATE_KEY,
    UPSERT_BATCH,
    WORDS_ONLY,
    QdrantCollection,
    rounded_length,
)
from desktop_app.core.backends.qdrant.source import QdrantSource
from desktop_app.core.model.resolve import ModelSpec
from desktop_app.core.storage.folder import IndexFolder
from desktop_app.core.storage.records import ChunkEncoding
from desktop_app.core.storage.store import Store

WORDS_SLICE = 2_000  # chunks read and written at a time in stage 1 (a huge file never sits in memory whole)

if TYPE_CHECKING:
    from desktop_app.core.backends.choice import Backend


class QdrantIndex:
    """SQLite in the folder, points in Qdrant; open with :meth:`open`."""

    def __init__(self, home: IndexFolder, backend: Backend) -> None:
        self.home = home
        self.backend = backend
        self.collection = QdrantCollection(home, backend)
        self.repaired = 0
        self.writing = False
        self.in_sync = True  # every write since the recorded state reached Qdrant
        self.changed = False
        info = home.model_info
        if info is not None:
            self.collection.attach(int(info["dim"]))
        else:  # nothing indexed from here: a desktop that searches the collection
            self.collection.attach_to_shared()

    @classmethod
    def open(cls, folder: Path, backend: Backend, create: bool = False) -> QdrantIndex:
        return cls(IndexFolder.open(folder, create), backend)

    @property
    def folder(self) -> Path:
        return self.home.path

    @property
    def store(self) -> Store:
        return self.home.store

    @property
    def model_info(self) -> dict[str, object] | None:
        """This folder's model, or (searching a collection another machine indexes) the collection's."""
        return self.home.model_info or self.collection.shared.get("model")

    @property
    def bound(self) -> bool:
        return self.collection.connected

    @property
    def searches_only(self) -> bool:
        """This folder searches a collection that another index folder writes."""
        return self.collection.searched_from_elsewhere

    @property
    def backend_name(self) -> str:
        return self.backend.describe()

    @property
    def keeps_colbert(self) -> bool:
        return self.backend.colbert

    @property
    def version(self) -> int | None:
        """A collection other machines may write without this folder's SQLite knowing: answers are never kept."""
        return None

    @property
    def vector_count(self) -> int:
        return self.collection.count()

    @property
    def dirty(self) -> bool:
        return self.changed

    def wait_until_loaded(self) -> None:
        """Nothing to load: readers search Qdrant directly, writers repair on taking the lock."""

    def catch_up(self, store: Store | None = None) -> int:
        """Connect once another process has bound a model; Qdrant itself needs no catching up."""
        self.collection.catch_up(store)
        return 0

    def bind_model(self, spec: ModelSpec, rebuild: bool = False) -> None:
        """Record the model of a new index, or check that an existing index was built with it."""
        if self.home.bind_model(spec, rebuild, forget=self._forget_everything):
            self.collection.attach(spec.hidden_size)
            if self.writing:  # a model bound under the writer lock: the collection must be this folder's
                self.collection.check_owner()
            self.repaired = 0

    def _forget_everything(self) -> None:
        """A rebuild with another model: every file, chunk and point goes (roots are kept)."""
        self.home.clear()
        self.collection.forget()

    @contextmanager
    def writer(self, purpose: str = "indexing", wait: bool = True, on_wait: Callable[[str], None] | None = None,
               cancelled: Callable[[], bool] | None = None, save: bool = True) -> Iterator[None]:
        """Hold the writer lock: repair what an earlier writer left behind first, record the state before
        letting go. Recording it writes one meta row, so it happens at every release, whatever ``save`` says."""
        with self.home.writer_lock(purpose, wait, on_wait, cancelled):
            self.collection.catch_up()
            self._start_writing()
            try:
                yield
            finally:
                try:
                    self.save()
                finally:
                    self.writing = False

    def _start_writing(self) -> None:
        """Refuse to write into another folder's collection; repair what an earlier writer committed to
        SQLite but not to Qdrant (a crash, an outage)."""
        self.collection.check_owner()
        if self.collection.connected and self.home.search_state(STATE_KEY).get("generation") != \
                self.store.generation():
            self.repaired = self.compare_in_full(self.store)
        self.writing = True

    def compare_in_full(self, store: Store) -> int:
        """Make the collection hold exactly the store's chunks, each with its vectors when the store has
        them; return how many points changed."""
        collection = self.collection
        expected = set(store.all_chunk_ids().tolist())
        encoded = set(store.encoded_chunk_ids().tolist())
        present: set[int] = set()
        behind: list[int] = []  # points with their words alone whose vectors the store now has
        collection.dl_total = 0
        for point in collection.scroll(payload=["dl", "meaning"]):
            cid = int(point.id)
            present.add(cid)
            if cid in expected:
                collection.dl_total += int(point.payload.get("dl", 0))
                if cid in encoded and point.payload.get("meaning") in WORDS_ONLY:
                    behind.append(cid)
        extra = sorted(present - expected)
        missing = sorted(expected - present)
        self.in_sync = False
        collection.delete_points(extra)
        collection.points = len(present & expected)
        rewrite = missing + behind
        for start in range(0, len(rewrite), UPSERT_BATCH):
            self._write_points(rewrite[start:start + UPSERT_BATCH], store)
        self.in_sync = True
        self.changed = True
        return len(missing) + len(extra) + len(behind)

    def _write_points(self, ids: list[int], store: Store) -> None:
        """Points for ``ids`` as the store has them: vectors where made, words alone otherwise."""
        rows = store.chunk_rows(ids)
        dense = store.dense_for(ids)
        sparse: dict[int, dict[int, float]] = {cid: {} for cid in dense}
        for cid, token, weight in store.postings_of(list(dense)):
            sparse[cid][token] = weight
        self.collection.upsert([(rows[c], dense.get(c), sparse.get(c), None) for c in ids if c in rows])

    def add_words(self, ids: list[int], store: Store | None = None) -> None:
        """Stage 1: newly stored chunks become points with their words alone (keyword vector and payload),
        written after their transaction committed, a slice at a time."""
        if not ids or not self.collection.connected:
            return
        self.in_sync = False
        for start in range(0, len(ids), WORDS_SLICE):
            self._write_points(ids[start:start + WORDS_SLICE], store or self.store)
        self.in_sync = True
        self.changed = True

    def add_encodings(self, encodings: list[ChunkEncoding]) -> None:
        """Stage 2: newly encoded chunks' points get their vectors (after their transaction committed)."""
        if not encodings:
            return
        rows = self.store.chunk_rows([e.chunk_id for e in encodings])
        self.in_sync = False
        self.collection.upsert([(rows[e.chunk_id], e.dense, e.sparse, e.colbert)
                                for e in encodings if e.chunk_id in rows])
        self.in_sync = True
        self.changed = True

    def delete_chunks(self, ids: list[int]) -> None:
        if not ids or not self.collection.connected:
            return
        self.in_sync = False
        self.collection.delete_points(ids)
        self.in_sync = True
        self.changed = True

    def save(self) -> None:
        """Record the generation the points reflect (writer lock holders, and only when every write
        reached Qdrant); remake the keyword vectors when the rounded mean chunk length moved."""
        collection = self.collection
        if not self.writing or not self.in_sync or not collection.connected:
            return
        if not self.changed and self.home.search_state(STATE_KEY).get("generation") == self.store.generation():
            return
        if self.changed and collection.points and \
                rounded_length(collection.dl_total / collection.points) != collection.avgdl:
            collection.remake_keyword_vectors(rounded_length(collection.dl_total / collection.points))
        self.home.record_search_state(STATE_KEY, {"avgdl": collection.avgdl, "dl_total": collection.dl_total,
                                                  "points": collection.points})
        self.changed = False

    def source(self, store: Store, helper: ThreadPoolExecutor) -> QdrantSource:
        """What a searcher reads: the collection, and the store's keyword statistics where this folder
        writes the collection (``helper`` is the local backend's need)."""
        return QdrantSource(self.collection, None if self.searches_only else store.document_frequencies)

    def disk_bytes(self) -> int:
        return self.home.disk_bytes()

    def cache_bytes(self) -> int:
        """Nothing is saved beside the folder: the collection writes its own files."""
        return 0

    def close(self) -> None:
        self.collection.close()
        self.home.close()
