"""How much more room an indexing run needs: the figure in the sentence a full disk ends a run with.

An estimate, from what the run has seen: the documents still to read grow the index as those read so
far did, every chunk still to encode adds its vectors to SQLite, and the caches are written whole,
beside the old files, before they replace them (the backend says how big they are now).
"""

from __future__ import annotations

import sqlite3

from desktop_app.core.backends.protocol import Index
from desktop_app.core.ingest.progress import Meter

# What SQLite grows by per byte of document read (before a run has stored any), per chunk and token still to
# encode, and what a chunk not yet read adds to the caches' files; measured on text files with the lite
# model, rounded up.
INDEX_BYTES_PER_DOCUMENT_BYTE = 8
INDEX_BYTES_PER_CHUNK = 2_000
INDEX_BYTES_PER_TOKEN = 40
CACHE_BYTES_PER_CHUNK = 6_000
BYTES_PER_TOKEN = 4  # of text, about


def space_needed(index: Index, meter: Meter | None, start_bytes: int, max_tokens: int) -> int | None:
    """About how many more bytes the run needs to finish (None when the folder cannot tell).

    ``meter`` is stage 1's (None when it had nothing to read), ``start_bytes`` the index
    folder's size when the run began, ``max_tokens`` the most tokens a chunk holds.
    """
    try:
        grown = max(index.disk_bytes() - start_bytes, 0)
        caches = index.cache_bytes()
        pending = index.store.pending_counts() if index.bound else {"pending_chunks": 0, "pending_tokens": 0}
    except (sqlite3.Error, OSError):
        return None
    read = meter.bytes if meter is not None else 0
    left = meter.total_bytes - read if meter is not None else 0
    words = grown * left // read if read and grown else left * INDEX_BYTES_PER_DOCUMENT_BYTE
    new_tokens = left // BYTES_PER_TOKEN
    new_chunks = new_tokens // max(max_tokens, 1) + (1 if left else 0)
    vectors = ((pending["pending_chunks"] + new_chunks) * INDEX_BYTES_PER_CHUNK
               + (pending["pending_tokens"] + new_tokens) * INDEX_BYTES_PER_TOKEN)
    return words + vectors + caches + new_chunks * CACHE_BYTES_PER_CHUNK
