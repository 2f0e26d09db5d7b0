"""What a :class:`~desktop_app.core.search.searcher.Searcher` asks of an index backend (local or Qdrant).

The searcher parses, fuses, re-ranks with ColBERT and groups hits; a source finds candidates,
gives exact vectors and weights for them and the rows to show. Both backends answer through
this one interface, so they rank alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from desktop_app.core.model.encoder import Encoding
from desktop_app.core.search.query import Query
from desktop_app.core.storage.records import ChunkRow

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

    def colbert_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored ColBERT multi-vectors of those chunks that have them."""

    def passage(self, chunk_id: int) -> tuple[ChunkRow, Encoding] | None: ...
