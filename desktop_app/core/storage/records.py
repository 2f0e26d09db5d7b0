"""The plain values the store hands out and takes in: a file's record, a chunk's row, what each
indexing stage writes per chunk, stage 2's work items, and what other writers changed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Changes:
    """What other writers committed after a process's last look: enough to bring the caches up to date.

    ``added`` are new chunks (their words), ``encoded`` the chunks whose vectors arrived since, with
    their dense blob. ``full`` says the tombstones no longer reach back that far (or the index was
    cleared): compare everything instead.
    """

    generation: int
    added: list[int]
    encoded: list[tuple[int, bytes]]
    deleted: list[int]
    full: bool


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    error: str | None
    settings: str


@dataclass(frozen=True)
class ChunkRow:
    id: int
    path: str
    page: int
    start: int
    end: int
    text: str
    size: int = 0
    mtime_ns: int = 0
    unit: str = "page"
    ocr: bool = False  # the chunk's page was read by OCR
    meaning: str = "encoded"  # encoded, pending (vectors not made yet) or capped (words only)
    meaning_cap: int = 0  # capped: the file's first this many chunks have vectors


@dataclass(frozen=True)
class CopyGroup:
    """The indexed copies of a document: its group label, the first ``members`` by path (itself among
    them, or not when it sorts later), and how many there are in all."""

    label: int
    members: list[str]
    total: int

    def others(self, path: str) -> list[str]:
        return [member for member in self.members if member != path]


@dataclass(frozen=True)
class NewChunk:
    """What stage 1 stores per chunk: position and text; ``pending`` ones get vectors in stage 2."""

    page: int
    start: int
    end: int
    tokens: int
    text: str
    pending: bool = True


@dataclass(frozen=True)
class ChunkEncoding:
    """What stage 2 stores per chunk: its vectors (ColBERT's only for a backend that keeps them);
    ``shared`` ones were not encoded for this chunk but taken from an equal one (an exact copy)."""

    chunk_id: int
    dense: np.ndarray
    sparse: dict[int, float]
    colbert: np.ndarray | None = None
    shared: bool = False


@dataclass(frozen=True)
class PendingChunk:
    chunk_id: int
    text: str
    tokens: int
    file_id: int
