# ruff: noqa: F401 - the TYPE_CHECKING block only names what __getattr__ loads
"""The engine of Desktop Search, and the only door the front-ends (window, CLI, HTTP API) use.

Below this face the core is grouped by concern: ``ingest`` (files to chunks, the two-stage
indexer, live folder sync), ``model`` (which model, getting it, running it), ``storage`` (the SQLite
truth and the writer lock), ``backends`` (local and Qdrant, side by side behind one protocol) and
``search`` (query syntax, requests, the searcher and fusion). ``docs/architecture.md`` draws them.

Names load on first use (PEP 562), so a front-end that needs only the settings and the errors does
not pay for numpy, SQLite or the model: ``desktop-search status`` stays a sub-second process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.core import lazy

_HOMES = {
    "desktop_app.core.engine": ("Engine",),
    "desktop_app.core.jobs": ("Job", "JobListener", "JobQueue", "Kind"),
    "desktop_app.core.config": ("API_HOST", "API_PORT", "BGE_M3_WEIGHTS", "CHANNELS", "DEFAULT_EXCLUDES",
                                "DEFAULT_MODEL", "DEVICES", "DTYPES", "MODES", "Settings", "Weights"),
    "desktop_app.core.errors": ("Cancelled", "DesktopSearchError", "IndexClosedError", "IndexLockedError",
                                "IndexMismatchError", "IndexMissingError", "ModelError", "StorageError",
                                "UsageError", "readable"),
    "desktop_app.core.paths": ("to_text",),
    "desktop_app.core.analyze": ("highlight_segments",),
    "desktop_app.core.logfile": ("log_path", "start_logging"),
    "desktop_app.core.launch": ("plan_open", "plan_show_in_folder"),
    "desktop_app.core.backends.choice": ("API_KEY_VARIABLE", "BACKENDS", "DEFAULT_COLLECTION", "Backend",
                                         "named_backend"),
    "desktop_app.core.search.request": ("SearchRequest", "search_request"),
    "desktop_app.core.search.query": ("FILTER_KEYS", "SYNTAX_HELP", "Filters", "filters_from"),
    "desktop_app.core.search.searcher": ("MAX_QUERY_CHARS", "SORTS", "validate_query"),
    "desktop_app.core.search.fusion": ("FUSIONS",),
    "desktop_app.core.search.results": ("Hit", "SearchResult"),
    "desktop_app.core.ingest.extract": ("EXTRACTORS",),
    "desktop_app.core.ingest.extract.base": ("place_of",),
    "desktop_app.core.ingest.indexer": ("share_the_interpreter_finely",),
    "desktop_app.core.ingest.progress": ("IndexReport", "Progress", "RunControl"),
    "desktop_app.core.ingest.scan": ("normalise_root",),
    "desktop_app.core.ingest.live_sync": ("ChangeBatch", "LiveSync", "device_of"),
    "desktop_app.core.model.resolve": ("ModelSpec", "hub_offline"),
    "desktop_app.core.model.download": ("ModelDownload",),
}
__all__ = sorted(name for names in _HOMES.values() for name in names)
__getattr__, __dir__ = lazy.face(__name__, {name: module for module, names in _HOMES.items() for name in names})


# The names as type checkers and editors see them (never run); __all__ above is what they export.
if TYPE_CHECKING:
    from desktop_app.core.analyze import highlight_segments
    from desktop_app.core.backends.choice import API_KEY_VARIABLE, BACKENDS, DEFAULT_COLLECTION, Backend, named_backend
    from desktop_app.core.config import (
        API_HOST,
        API_PORT,
        BGE_M3_WEIGHTS,
        CHANNELS,
        DEFAULT_EXCLUDES,
        DEFAULT_MODEL,
        DEVICES,
        DTYPES,
        MODES,
        Settings,
        Weights,
    )
    from desktop_app.core.engine import Engine
    from desktop_app.core.errors import (
        Cancelled,
        DesktopSearchError,
        IndexClosedError,
        IndexLockedError,
        IndexMismatchError,
        IndexMissingError,
        ModelError,
        StorageError,
        UsageError,
        readable,
    )
    from desktop_app.core.ingest.extract import EXTRACTORS
    from desktop_app.core.ingest.extract.base import place_of
    from desktop_app.core.ingest.indexer import (
        IndexReport,
        Progress,
        RunControl,
        normalise_root,
        share_the_interpreter_finely,
    )
    from desktop_app.core.ingest.live_sync import ChangeBatch, LiveSync, device_of
    from desktop_app.core.jobs import Job, JobListener, JobQueue, Kind
    from desktop_app.core.launch import plan_open, plan_show_in_folder
    from desktop_app.core.logfile import log_path, start_logging
    from desktop_app.core.model.download import ModelDownload
    from desktop_app.core.model.resolve import ModelSpec, hub_offline
    from desktop_app.core.paths import to_text
    from desktop_app.core.search.fusion import FUSIONS
    from desktop_app.core.search.query import FILTER_KEYS, SYNTAX_HELP, Filters, filters_from
    from desktop_app.core.search.request import SearchRequest, search_request
    from desktop_app.core.search.results import Hit, SearchResult
    from desktop_app.core.search.searcher import MAX_QUERY_CHARS, SORTS, validate_query
