"""Answering a query: its syntax and filters (``query``), the request a front-end sends (``request``),
the searcher that gathers candidates from a backend and ranks them (``searcher``), how the channels'
scores are fused (``fusion``) and what comes back: hits, snippets, terms (``results``).

The names below are the package's face, imported from their modules on first use rather than
here: importing any module of the package runs this file first, and the backends read
``search.query`` while ``search.searcher`` reads the backends, so an eager face would be an import
cycle (and would load the model's encoder for anyone parsing a query). Inside the core, import
from the modules themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.core import lazy

if TYPE_CHECKING:
    from desktop_app.core.search.query import Filters, Query, parse
    from desktop_app.core.search.request import SearchRequest, search_request
    from desktop_app.core.search.results import ChunkHit, Hit, SearchResult
    from desktop_app.core.search.searcher import Searcher, validate_query

__all__ = ["ChunkHit", "Filters", "Hit", "Query", "SearchRequest", "SearchResult", "Searcher", "parse",
           "search_request", "validate_query"]

_HOMES = {"ChunkHit": "results", "Filters": "query", "Hit": "results", "Query": "query", "SearchRequest": "request",
          "SearchResult": "results", "Searcher": "searcher", "parse": "query", "search_request": "request",
          "validate_query": "searcher"}

__getattr__, __dir__ = lazy.face(__name__, _HOMES)
