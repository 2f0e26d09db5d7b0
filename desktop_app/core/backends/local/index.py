"""An index folder: the SQLite store, the hnswlib and sparse-postings caches beside it and the model
they belong to.

Several processes may open one index (the window, a terminal's ``index``, ``watch``, the HTTP
server). SQLite is the truth; each process keeps its own copy of both caches in memory and brings it
up to date from the store's generation counter and tombstones: at open (the file may be older
than the store: a crash, or another writer's save), before a search, and after taking the
writer lock, before writing anything. Only a process holding the writer lock saves the file,
and only once its copy has caught up, so the cache on disk is never replaced by an older view.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from desktop_app.core import analyze
from desktop_app.core.backends.local.dense import VectorIndex
from desktop_app.core.backends.local.keywords import KeywordIndex
from desktop_app.core.backends.local.postings import PostingsIndex
from desktop_app.core.errors import IndexMismatchError, IndexMissingError
from desktop_app.core.model.resolve import ModelSpec
from desktop_app.core.storage.lock import WriterLock
from desktop_app.core.storage.store import ChunkEncoding, Store, decode_dense

DB_NAME = "index.sqlite3"
VECTORS_NAME = "dense.hnsw"
POSTINGS_NAME = "sparse.npz"
KEYWORDS_NAME = "keyword.npz"
COMPACT_DELETED_FRACTION = 0.3
WORDS_SLICE = 2_000
# Tombstones let other processes replay removals; past this many, those up to the saved
# cache's generation are dropped (a process still behind them compares in full).
TOMBSTONES_KEPT = 50_000


class Index:
    """Open with :meth:`open`; bind a model before writing with :meth:`bind_model`."""

    def __init__(self, folder: Path, store: Store, load_in_background: bool = False) -> None:
        self.folder = folder
        self.store = store
        self._vectors: VectorIndex | None = None
        self._postings = PostingsIndex(folder / POSTINGS_NAME)
        self._keywords = KeywordIndex(folder / KEYWORDS_NAME)
        self.repaired = 0
        # What this process's hnswlib copy reflects: the store's generation and highest chunk id.
        self.synced_generation = -1
        self.synced_max_id = 0
        self.sync_lock = threading.RLock()
        self.writing = False
        self._loaded = threading.Event()
        self._load_error: Exception | None = None
        info = store.model_info()
        if info is None:
            self._loaded.set()
        elif load_in_background:
            self._vectors = VectorIndex(folder / VECTORS_NAME, int(info["dim"]))
            threading.Thread(target=self._load_in_background, name="cache-load", daemon=True).start()
        else:
            self.attach_vectors(int(info["dim"]))
            self._loaded.set()

    @classmethod
    def open(cls, folder: Path, create: bool = False, load_in_background: bool = False) -> Index:
        """``load_in_background``: read the caches in a thread of their own (17.6 s at a million chunks);
        until they are in, :attr:`loaded` is False and keyword searches read SQLite's FTS5 instead."""
        folder = Path(folder).expanduser()
        if not (folder / DB_NAME).exists():
            if not create:
                raise IndexMissingError(f"no index at {folder}: run `desktop-search index PATH` to build one")
            folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, Store(folder / DB_NAME), load_in_background)

    def _load_in_background(self) -> None:
        """Load the caches through a connection of this thread's own; whoever needs them waits."""
        store = Store(self.folder / DB_NAME)
        try:
            with self.sync_lock:
                self.repaired = self.load_vectors(store)
        except Exception as error:  # noqa: BLE001 - raised again to whoever waits for the caches
            self._load_error = error
        finally:
            store.close()
            self._loaded.set()

    @property
    def loaded(self) -> bool:
        """The caches are in memory (always, unless opened with ``load_in_background``)."""
        return self._loaded.is_set()

    def wait_until_loaded(self) -> None:
        """Block until the caches are in memory; raise what stopped them from loading."""
        self._loaded.wait()
        if self._load_error is not None:
            raise self._load_error

    @property
    def vectors(self) -> VectorIndex | None:
        self.wait_until_loaded()
        return self._vectors

    @property
    def postings(self) -> PostingsIndex:
        self.wait_until_loaded()
        return self._postings

    @property
    def keywords(self) -> KeywordIndex:
        self.wait_until_loaded()
        return self._keywords

    @property
    def model_info(self) -> dict[str, object] | None:
        return self.store.model_info()

    def bind_model(self, spec: ModelSpec, rebuild: bool = False) -> None:
        """Record the model of a new index, or check that an existing index was built with it."""
        wanted = {"name": spec.name, "dim": spec.hidden_size, "fingerprint": spec.fingerprint(), "label": spec.label,
                  "trusted_channels": list(spec.trusted)}
        existing = self.model_info
        if existing is not None and not rebuild:
            if existing["fingerprint"] != wanted["fingerprint"] or existing["dim"] != wanted["dim"]:
                raise IndexMismatchError(
                    f"the index at {self.folder} was built with model {existing['name']} (dim {existing['dim']}), "
                    f"not {spec.name} (dim {spec.hidden_size}); re-index with "
                    f"`desktop-search index --rebuild --model {spec.name} PATH...` or pick another --index folder"
                )
            return
        if existing is not None:
            self.clear()
        self.store.set_meta("model", json.dumps(wanted))
        self.attach_vectors(spec.hidden_size)

    def clear(self) -> None:
        """Forget every file and vector (a rebuild with another model); roots are kept."""
        self.store.clear()
        (self.folder / VECTORS_NAME).unlink(missing_ok=True)
        (self.folder / POSTINGS_NAME).unlink(missing_ok=True)
        (self.folder / KEYWORDS_NAME).unlink(missing_ok=True)
        self._vectors = None
        self._postings.reset()
        self._keywords.reset()

    def attach_vectors(self, dim: int) -> None:
        self._vectors = VectorIndex(self.folder / VECTORS_NAME, dim)
        self.repaired = self.load_vectors()

    def state(self) -> dict[str, int]:
        return {"chunks": self.store.chunk_count(), "encoded": self.store.encoded_count(),
                "max_id": self.store.max_chunk_id()}

    def load_vectors(self, store: Store | None = None) -> int:
        """Load the saved cache and bring it up to date in memory; return how many vectors were fixed.

        The meta record written after each save says which generation the file holds; from
        there the tombstones and newer ids finish the job. A file that does not match its
        record (a crash between the two, an index from before generations) is compared in full.
        """
        store = store or self.store
        loaded = self._vectors.load_or_create() & (self._postings.load() is not None) & self._keywords.load()
        saved = json.loads(store.get_meta("vectors_state") or "{}")
        with self.sync_lock:
            if (loaded and "generation" in saved and saved.get("labels") == self._vectors.total_labels
                    and saved.get("postings") == self._postings.posting_count
                    and saved.get("keywords") == self._keywords.posting_count):
                self._vectors.deleted_count = int(saved["labels"]) - int(saved.get("encoded", saved["chunks"]))
                self.synced_generation, self.synced_max_id = int(saved["generation"]), int(saved["max_id"])
                return self._catch_up(store)
            return self.compare_in_full(store)

    def catch_up(self, store: Store | None = None) -> int:
        """Apply what other processes committed since this copy's generation; return vectors changed.

        ``store`` is the connection to read with (a searcher's own, so a writer thread's open
        transaction on the index's connection is never touched). While this process holds the
        writer lock its copy is the newest there is, and nothing is read.
        """
        self.wait_until_loaded()
        return self._catch_up(store or self.store)

    def _catch_up(self, store: Store) -> int:
        if self._vectors is None:
            info = store.model_info()
            if info is None:
                return 0
            with self.sync_lock:  # another process indexed the first files since this one opened it
                if self._vectors is None:
                    self.attach_vectors(int(info["dim"]))
            return self.repaired
        with self.sync_lock:
            if self.writing:
                return 0
            changes = store.changes_since(self.synced_generation, self.synced_max_id)
            if changes.generation == self.synced_generation:
                return 0
            if changes.full:
                return self.compare_in_full(store)
            self.check_model(store)
            self.delete_chunks(changes.deleted)
            if changes.added:
                self.add_words(changes.added, store)
                self.synced_max_id = max(self.synced_max_id, max(changes.added))
            if changes.encoded:
                ids, vectors = decode_dense(changes.encoded)
                self._vectors.add(ids, vectors)
                self._postings.add(store.postings_of(ids.tolist()))
            self.synced_generation = changes.generation
            return len(changes.encoded) + len(changes.deleted)

    def compare_in_full(self, store: Store) -> int:
        """Make the copy hold exactly the store's chunks by comparing every id, and read the postings
        again (in memory only)."""
        self.check_model(store)
        store.conn.execute("BEGIN")
        try:
            generation = store.generation()
            expected = set(store.encoded_chunk_ids().tolist())
            max_id = store.max_chunk_id()
            self._postings.rebuild(store.postings_of())
            self._keywords.rebuild(keyword_terms_of(store.keyword_sources()))
        finally:
            store.conn.execute("COMMIT")
        present = set(self._vectors.labels().tolist())
        extra = present - expected
        missing = sorted(expected - present)
        if len(missing) > len(expected) // 2:  # a lost or new cache: build it in bulk on every core
            self._vectors.rebuild(store.iter_dense())
        else:
            self._vectors.delete(list(extra))
            self._vectors.deleted_count = len(present) - len(present & expected)
            for ids, vectors in store.iter_dense(missing):
                self._vectors.add(ids, vectors)
        self.synced_generation = generation
        self.synced_max_id = max_id
        return len(missing) + len(extra)

    def check_model(self, store: Store) -> None:
        info = store.model_info()
        if info is not None and int(info["dim"]) != self._vectors.dim:
            raise IndexMismatchError(f"the index at {self.folder} was rebuilt with model {info['name']} by another "
                                     "process; open it again to search it")

    @contextmanager
    def writer(self, purpose: str = "indexing", wait: bool = True, on_wait: Callable[[str], None] | None = None,
               cancelled: Callable[[], bool] | None = None, save: bool = True) -> Iterator[None]:
        """Hold the writer lock: catch up with other writers first, save the cache before letting go.

        ``save=False`` lets go without saving (stage 2 holds the lock for one batch at a time and
        saves every minute or so): the file stays behind the store, which every reader repairs.
        """
        self.wait_until_loaded()
        with WriterLock(self.folder, purpose, wait, on_wait, cancelled):
            with self.sync_lock:
                self.catch_up(self.store)
                self.start_writing()
            try:
                yield
            finally:
                try:
                    if save or not self.costly_to_save:
                        self.save_vectors()
                finally:
                    with self.sync_lock:
                        self.writing = False
                        self.synced_generation = self.store.generation()
                        self.synced_max_id = max(self.synced_max_id, self.store.max_chunk_id())

    def start_writing(self) -> None:
        """Called under the writer lock once this copy has caught up."""
        self.writing = True

    @property
    def bound(self) -> bool:
        """A model is bound: there is something to search (or about to be)."""
        return self._vectors is not None

    @property
    def backend_name(self) -> str:
        return "local"

    @property
    def searches_only(self) -> bool:
        """The index is written from another folder (a shared Qdrant collection); this one searches it."""
        return False

    @property
    def costly_to_save(self) -> bool:
        """Saving rewrites the cache files (seconds at a million chunks): stage 2 saves about once a minute."""
        return True

    @property
    def keeps_colbert(self) -> bool:
        """The index stores ColBERT multi-vectors (so the indexer must compute them)."""
        return False

    @property
    def vector_count(self) -> int:
        self.wait_until_loaded()
        return self._vectors.count if self._vectors is not None else 0

    @property
    def keyword_count(self) -> int:
        """Chunks searchable by their words: every stored chunk, with vectors or not."""
        return self.keywords.chunk_count

    def add_words(self, ids: list[int], store: Store | None = None) -> None:
        """Stage 1: newly stored chunks join the keyword cache (after their transaction committed), read
        through ``store`` (the index's own by default), a slice at a time: a file of a hundred thousand
        chunks never holds all its terms in memory."""
        store = store or self.store
        for start in range(0, len(ids), WORDS_SLICE):
            self._keywords.add(keyword_terms_of(store.keyword_sources(ids[start:start + WORDS_SLICE])))

    def add_encodings(self, encodings: list[ChunkEncoding]) -> None:
        """Stage 2: chunks' new vectors join the dense and sparse caches (after their transaction committed)."""
        if encodings:
            self._vectors.add([e.chunk_id for e in encodings], np.stack([e.dense for e in encodings]))
            self._postings.add((e.chunk_id, token, weight) for e in encodings for token, weight in e.sparse.items())

    def delete_chunks(self, ids: list[int]) -> None:
        self._vectors.delete(ids)
        self._postings.delete(ids)
        self._keywords.delete(ids)

    @property
    def dirty(self) -> bool:
        return self._vectors is not None and (self._vectors.dirty or self._postings.dirty or self._keywords.dirty)

    def refill_vectors(self) -> None:
        """Rebuild the hnswlib cache from the dense blobs beside the live one, then swap it in
        (drops deleted labels for good; searches meanwhile use the old copy)."""
        self._vectors.rebuild(self.store.iter_dense())

    def save_vectors(self) -> None:
        """Save the cache atomically (writer lock holders only), compacting it first when many labels are deleted."""
        if not self.writing or not self.dirty:
            return
        total = self._vectors.total_labels
        if total and self._vectors.deleted_count / total > COMPACT_DELETED_FRACTION:
            self.refill_vectors()
        self._vectors.save()
        self._postings.save()
        self._keywords.save()
        state = self.state()
        state["labels"] = self._vectors.total_labels
        state["postings"] = self._postings.posting_count
        state["keywords"] = self._keywords.posting_count
        state["generation"] = self.store.generation()
        self.store.set_meta("vectors_state", json.dumps(state))
        if self.store.tombstone_count() > TOMBSTONES_KEPT:
            self.store.prune_tombstones(state["generation"])

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        self.store.close()


def keyword_terms_of(sources: Iterable[tuple[int, str, str]]) -> Iterator[tuple[int, list[str]]]:
    """(chunk id, keyword terms) from (chunk id, text, file path)."""
    return ((chunk_id, analyze.keyword_terms(text, path)) for chunk_id, text, path in sources)
