"""How much more room an indexing run needs: the figure in the sentence a full disk ends a run with.

An estimate, from what the run has seen, erring high (a figure too low sends the user round again):
the documents still to read grow the index as those read so far did; every chunk still to encode
adds its vectors to SQLite and to the caches; the caches are written whole, beside the old files,
before they replace them, the sparse cache with a table over the whole model vocabulary; SQLite pages
that live only in the write-ahead log so far take room in the database file when they are
checkpointed (on a filesystem that allocates lazily, such as tmpfs, the file's size says nothing);
and the log itself may grow up to its automatic checkpoint's size, many times the rows it holds when
stage 2 commits small batches.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from desktop_app.core.backends.protocol import Index
from desktop_app.core.ingest.progress import Meter

# What SQLite grows by per byte of document read (before a run has stored any), per chunk and token still to
# encode, and what a chunk adds to the caches' files; measured on text files with the lite model, rounded up.
INDEX_BYTES_PER_DOCUMENT_BYTE = 8
INDEX_BYTES_PER_CHUNK = 2_000
INDEX_BYTES_PER_TOKEN = 40
CACHE_BYTES_PER_CHUNK = 6_000
BYTES_PER_TOKEN = 4  # of text, about
SPARSE_TABLE_BYTES_PER_TOKEN_ID = 8  # the sparse cache's offsets: one int64 per vocabulary entry
BGE_M3_VOCABULARY = 250_002  # where the model's tokenizer cannot be read


def space_needed(index: Index, meter: Meter | None, start_bytes: int, max_tokens: int,
                 vocabulary: int = BGE_M3_VOCABULARY) -> int | None:
    """About how many more bytes the run needs to finish (None when the folder cannot tell).

    ``meter`` is stage 1's (None when it had nothing to read), ``start_bytes`` the index
    folder's size when the run began, ``max_tokens`` the most tokens a chunk holds,
    ``vocabulary`` the model's tokenizer's size.
    """
    try:
        grown = max(index.disk_bytes() - start_bytes, 0)
        caches = index.cache_bytes()
        pending = index.store.pending_counts() if index.bound else {"pending_chunks": 0, "pending_tokens": 0}
        unallocated = _unallocated_bytes(index.folder)
        log = index.store.log_headroom()
    except (sqlite3.Error, OSError):
        return None
    read = meter.bytes if meter is not None else 0
    left = meter.total_bytes - read if meter is not None else 0
    words = grown * left // read if read and grown else left * INDEX_BYTES_PER_DOCUMENT_BYTE
    new_tokens = left // BYTES_PER_TOKEN
    new_chunks = new_tokens // max(max_tokens, 1) + (1 if left else 0)
    to_encode = pending["pending_chunks"] + new_chunks
    vectors = to_encode * INDEX_BYTES_PER_CHUNK + (pending["pending_tokens"] + new_tokens) * INDEX_BYTES_PER_TOKEN
    sparse_table = max(vocabulary * SPARSE_TABLE_BYTES_PER_TOKEN_ID - caches, 0) if to_encode else 0
    log = log if left or to_encode else 0
    return words + vectors + caches + to_encode * CACHE_BYTES_PER_CHUNK + sparse_table + unallocated + log


def vocabulary_size(tokenizer_file: Path) -> int:
    """The model's vocabulary size, read from its ``tokenizer.json`` (BGE-M3's where it cannot be read)."""
    try:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    except Exception:  # noqa: BLE001 - a figure for a message: any failure falls back to BGE-M3's
        return BGE_M3_VOCABULARY


def _unallocated_bytes(folder: Path) -> int:
    """Bytes the folder's files claim but the disk has not given them yet (sparse files: SQLite's
    database file grows by size first and gets its pages when a checkpoint writes them)."""
    total = 0
    for path in folder.iterdir():
        stat = path.stat()
        if path.is_file() and hasattr(stat, "st_blocks"):  # no st_blocks on Windows
            total += max(stat.st_size - stat.st_blocks * 512, 0)
    return total
