"""From files to stored chunks: extraction (``extract/``, one module per format family), the reading
pipeline (``reading``), chunking (``chunk``), exclusions (``exclude``), which files a folder holds
(``scan``), the two-stage indexer (``indexer``: words now, meaning later), what a run reports and
obeys (``progress``) and live folder sync (``live_sync``).

The names below are the package's face, imported from their modules on first use rather than
here: importing any module of the package runs this file first, and an eager face would load the
indexer (and with it the model's encoder and the local backend) for anyone who only needs, say,
``ingest.extract``. Inside the core, import from the modules themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.core import lazy

if TYPE_CHECKING:
    from desktop_app.core.ingest.indexer import Indexer, remove_paths
    from desktop_app.core.ingest.live_sync import FolderWatcher
    from desktop_app.core.ingest.progress import Failure, IndexReport, Progress, RunControl
    from desktop_app.core.ingest.scan import normalise_root

__all__ = ["Failure", "FolderWatcher", "IndexReport", "Indexer", "Progress", "RunControl", "normalise_root",
           "remove_paths"]

_HOMES = {"Failure": "progress", "FolderWatcher": "live_sync", "IndexReport": "progress", "Indexer": "indexer",
          "Progress": "progress", "RunControl": "progress", "normalise_root": "scan", "remove_paths": "indexer"}

__getattr__, __dir__ = lazy.face(__name__, _HOMES)
