"""The local backend's index: an index folder and the caches beside it (:mod:`.caches`).

It answers the writing side of :class:`~desktop_app.core.backends.protocol.Index` (model binding, the
writer's turn, stage 1 words and stage 2 vectors joining the caches) and makes the searcher's
:class:`~desktop_app.core.backends.local.source.LocalSource`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from desktop_app.core.backends.local.caches import CACHE_NAMES, LocalCaches
from desktop_app.core.backends.local.source import LocalSource
from desktop_app.core.model.resolve import ModelSpec
from desktop_app.core.storage.folder import IndexFolder
from desktop_app.core.storage.records import ChunkEncoding
from desktop_app.core.storage.store import Store


class LocalIndex:
    """Open with :meth:`open`; bind a model before writing with :meth:`bind_model`."""

    def __init__(self, home: IndexFolder, load_in_background: bool = False) -> None:
        self.home = home
        self.caches = LocalCaches(home, load_in_background)

    @classmethod
    def open(cls, folder: Path, create: bool = False, load_in_background: bool = False) -> LocalIndex:
        """``load_in_background``: see :class:`~desktop_app.core.backends.local.caches.LocalCaches`."""
        return cls(IndexFolder.open(folder, create), load_in_background)

    @property
    def folder(self) -> Path:
        return self.home.path

    @property
    def store(self) -> Store:
        return self.home.store

    @property
    def model_info(self) -> dict[str, object] | None:
        return self.home.model_info

    @property
    def repaired(self) -> int:
        """Vectors the caches fixed when they were loaded (a crash, another writer's changes)."""
        return self.caches.repaired

    @property
    def bound(self) -> bool:
        """A model is bound: there is something to search (or about to be)."""
        return self.caches.bound

    @property
    def backend_name(self) -> str:
        return "local"

    @property
    def searches_only(self) -> bool:
        """A local index is always written from its own folder."""
        return False

    @property
    def keeps_colbert(self) -> bool:
        """The caches hold no ColBERT multi-vectors: the searcher encodes them when it re-ranks."""
        return False

    @property
    def vector_count(self) -> int:
        return self.caches.vector_count

    @property
    def version(self) -> int:
        """Bumped by every change to the caches (this process's writes and its catch-ups)."""
        return self.caches.version

    @property
    def dirty(self) -> bool:
        return self.caches.dirty

    def wait_until_loaded(self) -> None:
        self.caches.wait_until_loaded()

    def catch_up(self, store: Store | None = None) -> int:
        return self.caches.catch_up(store)

    def bind_model(self, spec: ModelSpec, rebuild: bool = False) -> None:
        """Record the model of a new index, or check that an existing index was built with it."""
        if self.home.bind_model(spec, rebuild, forget=self._forget_everything):
            self.caches.attach(spec.hidden_size)

    def _forget_everything(self) -> None:
        """A rebuild with another model: every file, chunk and cache goes (roots are kept)."""
        self.home.clear(*CACHE_NAMES)
        self.caches.forget()

    @contextmanager
    def writer(self, purpose: str = "indexing", wait: bool = True, on_wait: Callable[[str], None] | None = None,
               cancelled: Callable[[], bool] | None = None, save: bool = True) -> Iterator[None]:
        """Hold the writer lock: catch up with other writers first, save the caches before letting go.

        ``save=False`` lets go without saving (stage 2 holds the lock for one batch at a time and
        saves every minute or so, since saving rewrites the cache files: seconds at a million
        chunks): the files stay behind the store, which every reader repairs.
        """
        self.caches.wait_until_loaded()
        with self.home.writer_lock(purpose, wait, on_wait, cancelled):
            self.caches.begin_writing()
            try:
                yield
            finally:
                self.caches.end_writing(save)

    def add_words(self, ids: list[int], store: Store | None = None) -> None:
        self.caches.add_words(ids, store)

    def add_encodings(self, encodings: list[ChunkEncoding]) -> None:
        self.caches.add_encodings(encodings)

    def delete_chunks(self, ids: list[int]) -> None:
        self.caches.delete(ids)

    def save(self) -> None:
        self.caches.save()

    def source(self, store: Store, helper: ThreadPoolExecutor) -> LocalSource:
        """What a searcher reads: the caches, and ``store`` (its own connection) for rows and filters;
        ``helper`` runs the dense query while the sparse one runs in the caller's thread."""
        return LocalSource(self.caches, store, helper)

    def disk_bytes(self) -> int:
        return self.home.disk_bytes()

    def cache_bytes(self) -> int:
        return self.caches.file_bytes()

    def close(self) -> None:
        self.home.close()
