"""The index folder's truth: the SQLite store (files, chunks, pending work) and the writer lock.

:class:`Store` is the one object callers use; its SQL is split by the tables it touches, one class
per module, combined as mixins over one shared connection (:mod:`.transactions`): indexed folders
and file records (:mod:`.files`), chunk reads and vectors (:mod:`.chunks`), stage 2's work list
(:mod:`.pending`), the keyword index (:mod:`.keywords`) and which files are copies of which
(:mod:`.copies`); :mod:`.store` itself keeps what spans
them (opening the schema, replacing a file's chunks, clearing). Mixins rather than composition
because every write of a file runs in one transaction on one connection, and callers (and the
crash tests, which wrap ``Store.conn``) keep calling ``store.replace_file(...)`` unchanged. The
values it hands out are plain data classes (:mod:`.records`); its tables are in :mod:`.schema`.

Its names load from their modules on first use (:mod:`desktop_app.core.lazy`): a process that only
reads a record type does not pay for sqlite-utils.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.core import lazy

if TYPE_CHECKING:
    from desktop_app.core.storage.lock import WriterLock
    from desktop_app.core.storage.records import Changes, ChunkEncoding, ChunkRow, FileRecord, NewChunk, PendingChunk
    from desktop_app.core.storage.store import Store

_HOMES = {"Changes": "records", "ChunkEncoding": "records", "ChunkRow": "records", "FileRecord": "records",
          "NewChunk": "records", "PendingChunk": "records", "Store": "store", "WriterLock": "lock"}
__all__ = ["Changes", "ChunkEncoding", "ChunkRow", "FileRecord", "NewChunk", "PendingChunk", "Store", "WriterLock"]
__getattr__, __dir__ = lazy.face(__name__, _HOMES)
