"""The one place that picks a backend: the index folder's record says which, and that index is opened.

Everything after this sees an :class:`~desktop_app.core.backends.protocol.Index` (and the
:class:`~desktop_app.core.backends.protocol.SearchSource` it makes), never which backend it is.
"""

from __future__ import annotations

from pathlib import Path

from desktop_app.core.backends.choice import Backend, check_switch, record, recorded
from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.backends.protocol import Index


def open_index(folder: Path, create: bool = False, wanted: Backend | None = None) -> Index:
    """The index in ``folder`` with the backend it recorded; a new index records ``wanted``.

    A local index reads its caches in the background (see
    :class:`~desktop_app.core.backends.local.caches.LocalCaches`); the Qdrant backend's modules load
    only for a folder that uses it.
    """
    backend = check_switch(folder, wanted)
    if backend.kind == "local":
        index: Index = LocalIndex.open(folder, create=create, load_in_background=True)
    else:
        from desktop_app.core.backends.qdrant.index import QdrantIndex

        index = QdrantIndex.open(folder, backend, create=create)
    if wanted is not None and wanted != recorded(folder):
        record(folder, wanted)
    return index
