"""The local backend's search side: three caches in memory beside SQLite, kept in step with it.

- ``dense``: the hnswlib index over the dense vectors (:mod:`.dense`);
- ``postings``: the sparse lexical-weight postings (:mod:`.postings`);
- ``keywords``: the BM25 keyword cache over every stored chunk's terms (:mod:`.keywords`).

Several processes may open one index (the window, a terminal's ``index``, ``watch``, the HTTP
server). SQLite is the truth; each process keeps its own copy of the caches in memory and brings
it up to date from the store's generation counter and tombstones: at open (the files may be older
than the store: a crash, or another writer's save), before a search, and after taking the writer
lock, before writing anything. Only a process holding the writer lock saves the files, and only
once its copy has caught up, so the caches on disk are never replaced by an older view.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np

from desktop_app.core import analyze
from desktop_app.core.backends.local.dense import DenseIndex
from desktop_app.core.backends.local.keywords import KeywordIndex
from desktop_app.core.backends.local.postings import PostingsIndex
from desktop_app.core.storage.chunks import decode_dense
from desktop_app.core.storage.folder import IndexFolder
from desktop_app.core.storage.records import ChunkEncoding
from desktop_app.core.storage.store import Store

DENSE_NAME = "dense.hnsw"
POSTINGS_NAME = "sparse.npz"
KEYWORDS_NAME = "keyword.npz"
CACHE_NAMES = (DENSE_NAME, POSTINGS_NAME, KEYWORDS_NAME)
STATE_KEY = "vectors_state"  # the meta row's name since the first cache: indexes on disk have it
COMPACT_DELETED_FRACTION = 0.3
WORDS_SLICE = 2_000
# Tombstones let other processes replay removals; past this many, those up to the saved
# caches' generation are dropped (a process still behind them compares in full).
TOMBSTONES_KEPT = 50_000
# The longest the dense cache's load waits for keyword searches that read FTS5 (a stream of them
# must not keep the index from loading).
WORD_SEARCH_WAIT_S = 5.0


class LocalCaches:
    """The caches of one index folder; the dense one exists once a model is bound (it has a dimension)."""

    def __init__(self, home: IndexFolder, load_in_background: bool = False) -> None:
        """``load_in_background``: read the caches in a thread of their own (17.6 s at a million chunks);
        until they are in, :attr:`loaded` is False and keyword searches read SQLite's FTS5 instead."""
        self.home = home
        self._dense: DenseIndex | None = None
        self._postings = PostingsIndex(home.path / POSTINGS_NAME)
        self._keywords = KeywordIndex(home.path / KEYWORDS_NAME)
        self.repaired = 0
        # Bumped after every change to what the caches hold: searches' kept answers go with it.
        self.version = 0
        # What this process's copy reflects: the store's generation and highest chunk id.
        self.synced_generation = -1
        self.synced_max_id = 0
        self.sync_lock = threading.RLock()
        self.writing = False
        self._loaded = threading.Event()
        self._load_error: Exception | None = None
        self._word_searches = threading.Condition()
        self._word_searches_running = 0
        info = home.model_info
        if info is None:
            self._loaded.set()
        elif load_in_background:
            self._dense = DenseIndex(home.path / DENSE_NAME, int(info["dim"]))
            threading.Thread(target=self._load_in_background, name="cache-load", daemon=True).start()
        else:
            self.attach(int(info["dim"]))
            self._loaded.set()

    def _load_in_background(self) -> None:
        """Load the caches through a connection of this thread's own; whoever needs them waits."""
        store = self.home.connect()
        try:
            with self.sync_lock:
                self.repaired = self.load(store)
        except Exception as error:  # noqa: BLE001 - raised again to whoever waits for the caches
            self._load_error = error
        finally:
            store.close()
            self._loaded.set()

    @contextmanager
    def searching_words(self) -> Iterator[None]:
        """Mark a keyword search that reads FTS5 while the caches load (the dense cache's load waits for it)."""
        with self._word_searches:
            self._word_searches_running += 1
        try:
            yield
        finally:
            with self._word_searches:
                self._word_searches_running -= 1
                self._word_searches.notify_all()

    def _wait_for_word_searches(self) -> None:
        with self._word_searches:
            self._word_searches.wait_for(lambda: not self._word_searches_running, timeout=WORD_SEARCH_WAIT_S)

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
    def dense(self) -> DenseIndex | None:
        """The hnswlib cache (None until a model is bound)."""
        self.wait_until_loaded()
        return self._dense

    @property
    def postings(self) -> PostingsIndex:
        self.wait_until_loaded()
        return self._postings

    @property
    def keywords(self) -> KeywordIndex:
        self.wait_until_loaded()
        return self._keywords

    @property
    def bound(self) -> bool:
        """A model is bound: the dense cache exists."""
        return self._dense is not None

    @property
    def vector_count(self) -> int:
        self.wait_until_loaded()
        return self._dense.count if self._dense is not None else 0

    @property
    def keyword_count(self) -> int:
        """Chunks searchable by their words: every stored chunk, with vectors or not."""
        return self.keywords.chunk_count

    @property
    def dirty(self) -> bool:
        return self._dense is not None and (self._dense.dirty or self._postings.dirty or self._keywords.dirty)

    def file_bytes(self) -> int:
        """About what saving the three caches now writes (each beside its old file, then replacing it)."""
        dense = self._dense.file_bytes() if self._dense is not None else 0
        return dense + self._postings.file_bytes() + self._keywords.file_bytes()

    def attach(self, dim: int) -> None:
        """Start the dense cache for a model of ``dim`` dimensions and load all three."""
        self._dense = DenseIndex(self.home.path / DENSE_NAME, dim)
        self.repaired = self.load()

    def forget(self) -> None:
        """Drop every cache in memory (their files went with the store's rows: a rebuild with another model)."""
        self._dense = None
        self._postings.reset()
        self._keywords.reset()
        self.version += 1

    def load(self, store: Store | None = None) -> int:
        """Load the saved caches and bring them up to date in memory; return how many vectors were fixed.

        The meta record written after each save says which generation the files hold; from
        there the tombstones and newer ids finish the job. Files that do not match their
        record (a crash between the two, an index from before generations) are compared in full.
        """
        store = store or self.home.store
        # hnswlib's load holds Python's GIL throughout (about 3 s at a million chunks): it comes last, once
        # no keyword search is reading FTS5 in the meantime, so the first answers after opening are not frozen.
        loaded = self._keywords.load() & (self._postings.load() is not None)
        self._wait_for_word_searches()
        loaded &= self._dense.load_or_create()
        saved = self.home.search_state(STATE_KEY, store)
        with self.sync_lock:
            if (loaded and "generation" in saved and saved.get("labels") == self._dense.total_labels
                    and saved.get("postings") == self._postings.posting_count
                    and saved.get("keywords") == self._keywords.posting_count):
                self._dense.deleted_count = int(saved["labels"]) - int(saved.get("encoded", saved["chunks"]))
                self.synced_generation, self.synced_max_id = int(saved["generation"]), int(saved["max_id"])
                fixed = self._catch_up(store)
            else:
                fixed = self.compare_in_full(store)
            self.version += 1
            return fixed

    def catch_up(self, store: Store | None = None) -> int:
        """Apply what other processes committed since this copy's generation; return vectors changed.

        ``store`` is the connection to read with (a searcher's own, so a writer thread's open
        transaction on the index's connection is never touched). While this process holds the
        writer lock its copy is the newest there is, and nothing is read.
        """
        self.wait_until_loaded()
        return self._catch_up(store or self.home.store)

    def _catch_up(self, store: Store) -> int:
        if self._dense is None:
            info = store.model_info()
            if info is None:
                return 0
            with self.sync_lock:  # another process indexed the first files since this one opened it
                if self._dense is None:
                    self.attach(int(info["dim"]))
            return self.repaired
        with self.sync_lock:
            if self.writing:
                return 0
            changes = store.changes_since(self.synced_generation, self.synced_max_id)
            if changes.generation == self.synced_generation:
                return 0
            if changes.full:
                return self.compare_in_full(store)
            self.home.check_dim(self._dense.dim, store)
            self.delete(changes.deleted)
            if changes.added:
                self.add_words(changes.added, store)
                self.synced_max_id = max(self.synced_max_id, max(changes.added))
            if changes.encoded:
                ids, vectors = decode_dense(changes.encoded)
                self._dense.add(ids, vectors)
                self._postings.add(store.postings_of(ids.tolist()))
            self.synced_generation = changes.generation
            self.version += 1
            return len(changes.encoded) + len(changes.deleted)

    def compare_in_full(self, store: Store) -> int:
        """Make the copy hold exactly the store's chunks by comparing every id, and read the postings
        and keyword terms again (in memory only)."""
        self.home.check_dim(self._dense.dim, store)
        with store.snapshot():
            generation = store.generation()
            expected = set(store.encoded_chunk_ids().tolist())
            max_id = store.max_chunk_id()
            self._postings.rebuild(store.postings_of())
            self._keywords.rebuild(keyword_terms_of(store.keyword_sources()))
        present = set(self._dense.labels().tolist())
        extra = present - expected
        missing = sorted(expected - present)
        if len(missing) > len(expected) // 2:  # a lost or new cache: build it in bulk on every core
            self._dense.rebuild(store.iter_dense())
        else:
            self._dense.delete(list(extra))
            self._dense.deleted_count = len(present) - len(present & expected)
            for ids, vectors in store.iter_dense(missing):
                self._dense.add(ids, vectors)
        self.synced_generation = generation
        self.synced_max_id = max_id
        self.version += 1
        return len(missing) + len(extra)

    def begin_writing(self) -> None:
        """Under the writer lock: catch up with what other writers committed, then stop reading their changes."""
        with self.sync_lock:
            self.catch_up()
            self.writing = True

    def end_writing(self, save: bool) -> None:
        """Before the writer lock goes: save (unless told not to), and mark the copy as of the store's state."""
        try:
            if save:
                self.save()
        finally:
            with self.sync_lock:
                self.writing = False
                self.synced_generation = self.home.store.generation()
                self.synced_max_id = max(self.synced_max_id, self.home.store.max_chunk_id())

    def add_words(self, ids: list[int], store: Store | None = None) -> None:
        """Stage 1: newly stored chunks join the keyword cache (after their transaction committed), read
        through ``store`` (the index's own by default), a slice at a time: a file of a hundred thousand
        chunks never holds all its terms in memory."""
        store = store or self.home.store
        for start in range(0, len(ids), WORDS_SLICE):
            self._keywords.add(keyword_terms_of(store.keyword_sources(ids[start:start + WORDS_SLICE])))
            self.version += 1

    def add_encodings(self, encodings: list[ChunkEncoding]) -> None:
        """Stage 2: chunks' new vectors join the dense and sparse caches (after their transaction committed)."""
        if encodings:
            self._dense.add([e.chunk_id for e in encodings], np.stack([e.dense for e in encodings]))
            self._postings.add((e.chunk_id, token, weight) for e in encodings for token, weight in e.sparse.items())
            self.version += 1

    def delete(self, ids: list[int]) -> None:
        self._dense.delete(ids)
        self._postings.delete(ids)
        self._keywords.delete(ids)
        self.version += 1

    def refill_dense(self) -> None:
        """Rebuild the hnswlib cache from the dense blobs beside the live one, then swap it in
        (drops deleted labels for good; searches meanwhile use the old copy)."""
        self._dense.rebuild(self.home.store.iter_dense())
        self.version += 1

    def save(self) -> None:
        """Save the caches atomically (writer lock holders only), compacting the dense one first when
        many of its labels are deleted."""
        if not self.writing or not self.dirty:
            return
        total = self._dense.total_labels
        if total and self._dense.deleted_count / total > COMPACT_DELETED_FRACTION:
            self.refill_dense()
        self._dense.save()
        self._postings.save()
        self._keywords.save()
        store = self.home.store
        generation = self.home.record_search_state(STATE_KEY, {
            "chunks": store.chunk_count(), "encoded": store.encoded_count(), "max_id": store.max_chunk_id(),
            "labels": self._dense.total_labels, "postings": self._postings.posting_count,
            "keywords": self._keywords.posting_count})
        if store.tombstone_count() > TOMBSTONES_KEPT:
            store.prune_tombstones(generation)


def keyword_terms_of(sources: Iterable[tuple[int, str, str]]) -> Iterator[tuple[int, list[str]]]:
    """(chunk id, keyword terms) from (chunk id, text, file path)."""
    return ((chunk_id, analyze.keyword_terms(text, path)) for chunk_id, text, path in sources)
