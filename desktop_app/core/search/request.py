"""A search as a front-end receives it (the CLI's flags, the HTTP API's JSON body) -> the searcher's options.

The CLI and the HTTP API build their searches here from the same plain values and both answer
with ``engine.search(request.query, **request.options()).to_dict()``, so ``desktop-search search
--json`` and ``POST /v1/search`` give one query one JSON document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from desktop_app.core.config import MODES, Weights
from desktop_app.core.errors import UsageError, shown
from desktop_app.core.search.query import Filters, filters_from

FILTER_FIELDS = ("ext", "in", "name", "after", "before", "dup")


@dataclass(frozen=True)
class SearchRequest:
    """One search: the query text and everything that shapes its ranking and hits."""

    query: str
    k: int = 10
    mode: str = "hybrid"
    weights: Weights | None = None
    colbert: bool | None = None
    fusion: str = "max"
    filters: Filters = field(default_factory=Filters)
    sort: str = "relevance"

    def options(self) -> dict[str, object]:
        """The keyword arguments of :meth:`Engine.search <desktop_app.core.engine.Engine.search>`."""
        return {"k": self.k, "mode": self.mode, "weights": self.weights, "colbert": self.colbert,
                "fusion": self.fusion, "filters": self.filters, "sort": self.sort}


def search_request(query: str, k: int = 10, mode: str = "hybrid", weights: str | Sequence[float] | None = None,
                   colbert: bool | None = None, fusion: str = "max",
                   filters: Mapping[str, str | Sequence[str] | None] | None = None, sort: str = "relevance",
                   roots: Sequence[str] = ()) -> SearchRequest:
    """A :class:`SearchRequest` from plain values; malformed ones are :class:`UsageError`.

    ``weights`` is ``"D,S,C[,K]"`` or those numbers; a ColBERT weight turns ColBERT on unless
    ``colbert`` says otherwise. ``filters`` holds the query syntax's file filters by name (``ext``,
    ``in``, ``name``, ``after``, ``before``, ``dup``; one value or a list); a relative ``in`` folder is looked
    for under each of ``roots``, as the ``in:`` operator does.
    """
    if mode not in MODES:
        raise UsageError(f"unknown mode {shown(mode)}: use one of {', '.join(MODES)}")
    parsed = None if weights is None else Weights.parse(weights) if isinstance(weights, str) else Weights.of(weights)
    if colbert is None and parsed is not None and parsed.colbert > 0:
        colbert = True
    unknown = sorted(set(filters or {}) - set(FILTER_FIELDS))
    if unknown:
        raise UsageError(f"unknown filter {shown(unknown[0])}: use {', '.join(FILTER_FIELDS)}")
    values = {key: [value] if isinstance(value, str) else list(value or []) for key, value in (filters or {}).items()}
    return SearchRequest(query, k, mode, parsed, colbert, fusion, filters_from(values, list(roots)), sort)
