"""What the core asks of an index backend (local or Qdrant), in two parts.

:class:`Index` is the writing side the engine and the indexer use: the folder's store, the model
binding, the writer's turn, and chunks joining or leaving the search side. :class:`SearchSource`
is the reading side a :class:`~desktop_app.core.search.searcher.Searcher` asks (an index makes
its own with :meth:`Index.source`): the searcher parses, fuses, re-ranks with ColBERT and groups
hits; a source finds candidates, gives exact vectors and weights for them and the rows to show.
Both backends answer through these, side by side, so they rank alike.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from desktop_app.core.model.encoder import Encoding
from desktop_app.core.model.resolve import ModelSpec
from desktop_app.core.search.query import Query
from desktop_app.core.storage.records import ChunkEncoding, ChunkRow, CopyGroup
from desktop_app.core.storage.store import Store

if TYPE_CHECKING:
    from desktop_app.core.backends.local.source import Restriction as LocalRestriction
    from desktop_app.core.backends.qdrant.source import QdrantRestriction

    Restriction = LocalRestriction | QdrantRestriction


class SearchSource(Protocol):
    def refresh(self) -> None:
        """Catch up with what other processes wrote since the last search."""

    @property
    def ready(self) -> bool:
        """Every channel can answer now (a local index may still be reading its caches)."""

    @property
    def empty(self) -> bool:
        """Nothing indexed yet (no model bound)."""

    @property
    def unencoded(self) -> int:
        """Chunks found by their words only (no vectors yet): hybrid search then asks the keyword channel."""

    @property
    def encoded_share(self) -> float:
        """The share of chunks that have their vectors (1.0 when all do)."""

    def roots(self) -> list[str]: ...

    def restrict(self, query: Query) -> tuple[Restriction, str]:
        """The query's filters, phrases and exclusions as a restriction, and a note when nothing passes."""

    def listing(self, restriction: Restriction, k: int) -> list[ChunkRow]:
        """First chunks of the ``k`` newest files that pass."""

    def keyword_top(self, text: str, depth: int, restriction: Restriction | None) -> list[tuple[int, float]]: ...

    def candidates(self, dense: np.ndarray | None, sparse: dict[int, float] | None, pool: int,
                   restriction: Restriction | None) -> dict[str, list[int]]: ...

    def dense_of(self, ids: list[int]) -> dict[int, np.ndarray]: ...

    def sparse_weights(self, ids: list[int], query: dict[int, float]) -> dict[int, dict[int, float]]: ...

    def rows(self, ids: list[int]) -> dict[int, ChunkRow]: ...

    def paths(self, ids: list[int]) -> dict[int, str]:
        """Each chunk's file (what grouping needs of every candidate, without the rows' text)."""

    def copies(self, paths: list[str]) -> dict[str, CopyGroup]:
        """Each of ``paths`` that has copies -> its group (the store's, either backend)."""

    def colbert_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored ColBERT multi-vectors of those chunks that have them."""

    def passage(self, chunk_id: int) -> tuple[ChunkRow, Encoding] | None: ...


class Index(Protocol):
    """An open index: SQLite in :attr:`folder` is the truth, the search side is the backend's own."""

    @property
    def folder(self) -> Path: ...

    @property
    def store(self) -> Store:
        """The index's own connection: writers write through it."""

    @property
    def model_info(self) -> dict[str, object] | None:
        """The model the index was built with (None before any)."""

    @property
    def bound(self) -> bool:
        """A model is bound: there is something to search (or about to be)."""

    @property
    def backend_name(self) -> str: ...

    @property
    def searches_only(self) -> bool:
        """The index is written from another folder (a shared Qdrant collection); this one searches it."""

    @property
    def keeps_colbert(self) -> bool:
        """The search side stores ColBERT multi-vectors (so the indexer must compute them)."""

    @property
    def vector_count(self) -> int:
        """Chunks whose vectors the search side holds."""

    @property
    def version(self) -> int | None:
        """Changes whenever this process changes what its search side holds (a write, a catch-up); None
        when others may change it unseen, and then no search answer is kept (``search.result_cache``)."""

    @property
    def repaired(self) -> int:
        """Vectors fixed when the search side was found behind the store (a crash, an outage)."""

    @property
    def dirty(self) -> bool:
        """This process changed the search side since it last saved it."""

    def wait_until_loaded(self) -> None:
        """Block until the search side can answer (a local index may still be reading its caches)."""

    def catch_up(self, store: Store | None = None) -> int:
        """Apply what other processes committed, reading through ``store``; return vectors changed."""

    def bind_model(self, spec: ModelSpec, rebuild: bool = False) -> None:
        """Record the model of a new index (or, with ``rebuild``, start over with it), or check it is the index's."""

    def writer(self, purpose: str = "indexing", wait: bool = True, on_wait: Callable[[str], None] | None = None,
               cancelled: Callable[[], bool] | None = None, save: bool = True) -> AbstractContextManager[None]:
        """Hold the writer lock, caught up with other writers; ``save=False`` may leave saving for later."""

    def add_words(self, ids: list[int], store: Store | None = None) -> None:
        """Stage 1: chunks just committed with their words (vectors pending)."""

    def add_encodings(self, encodings: list[ChunkEncoding]) -> None:
        """Stage 2: chunks' vectors just committed."""

    def delete_chunks(self, ids: list[int]) -> None: ...

    def save(self) -> None:
        """Make the search side's changes durable beside the store (writer lock holders only)."""

    def source(self, store: Store, helper: ThreadPoolExecutor) -> SearchSource:
        """The reading side for a searcher with its own connection ``store`` and a ``helper`` thread."""

    def disk_bytes(self) -> int: ...

    def cache_bytes(self) -> int:
        """About how many bytes saving the search side's files beside the folder writes now (a full disk
        needs that much room: each file is written whole before it replaces the old one)."""

    def close(self) -> None: ...
