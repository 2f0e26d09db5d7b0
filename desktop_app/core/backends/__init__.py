"""Where search data lives, behind one protocol (``protocol``): ``local`` (SQLite + hnswlib + in-memory
postings and BM25 caches) and ``qdrant`` (a Qdrant collection), side by side, each index holding the
storage's index folder; ``choice`` records which one a folder uses and ``opening`` opens it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.core import lazy

if TYPE_CHECKING:
    from desktop_app.core.backends.choice import Backend, named_backend
    from desktop_app.core.backends.opening import open_index
    from desktop_app.core.backends.protocol import Index, SearchSource

__all__ = ["Backend", "Index", "SearchSource", "named_backend", "open_index"]
__getattr__, __dir__ = lazy.face(__name__, {"Backend": "choice", "Index": "protocol", "SearchSource": "protocol",
                                            "named_backend": "choice", "open_index": "opening"})
