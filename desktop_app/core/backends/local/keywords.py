"""The keyword channel's BM25 in memory: FTS5's own ranking, exact, without FTS5's cost at 1M chunks.

FTS5 ranks every row an OR query matches before it returns the best ones: at 1M chunks that took
452 ms p50 / 871 ms p95 (bench/README.md, "Search latency"). This cache holds each chunk's term
frequencies (term-major, in a postings structure like the sparse cache's) and its length, and computes
FTS5's ``bm25()`` from them with numpy: the same terms (``analyze.keyword_terms``: the chunk's
text and its file name), k1 = 1.2, b = 0.75, ``idf = log((N - n + 0.5) / (n + 0.5))`` (1e-6 when
not positive), the length of a chunk over the mean length. A quoted phrase is scored as its
words here (FTS5 scored the phrase as one term); which chunks hold it is still FTS5's answer.

SQLite's FTS5 table stays the truth for phrases and exclusions; this cache lives beside
``sparse.npz`` and follows the same rules (generation catch-up, tombstones, saved atomically by
writers only, rebuilt from the chunks' text when missing or stale).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np

from desktop_app.core.analyze import fts5_idf, saturation
from desktop_app.core.backends.local.postings import PostingsIndex, best_of

ABSENT = -1.0  # the length of a chunk id that holds no chunk (never added, or deleted)


class KeywordIndex:
    """Term -> (chunk ids, term frequencies), plus every chunk's length; :meth:`bm25_top` ranks.

    The frequencies sit in a :class:`PostingsIndex` by term number (the vocabulary numbers terms
    in the order they were first seen); the lengths are by chunk id, ``ABSENT`` for none. One lock
    covers the vocabulary, the lengths and the postings together, so a ranking never sees a chunk's
    postings without its length.
    """

    def __init__(self, path: Path) -> None:
        self.lock = threading.Lock()
        self.frequencies = PostingsIndex(path)
        self.vocabulary: dict[str, int] = {}
        self.lengths = np.zeros(0, dtype=np.float32)  # by chunk id: terms in the chunk and its file name
        self._changed = False  # chunks were added with no terms (lengths only)

    @property
    def dirty(self) -> bool:
        return self._changed or self.frequencies.dirty

    @property
    def posting_count(self) -> int:
        return self.frequencies.posting_count

    @property
    def chunk_count(self) -> int:
        with self.lock:
            return int((self.lengths >= 0).sum())

    def file_bytes(self) -> int:
        """About what :meth:`save` writes now: the postings, the lengths and the vocabulary."""
        return self.frequencies.file_bytes() + self.lengths.nbytes + sum(len(term) + 1 for term in self.vocabulary)

    def load(self) -> bool:
        """Load the saved cache; False (and empty) when the file is missing or unreadable."""
        with self.lock:
            arrays = self.frequencies.load(("vocabulary", "lengths"))
            if arrays is None:
                self.vocabulary, self.lengths = {}, np.zeros(0, dtype=np.float32)
                return False
            terms = arrays["vocabulary"].tobytes().decode("utf-8")
            self.vocabulary = {term: number for number, term in enumerate(terms.split("\n"))} if terms else {}
            self.lengths = np.asarray(arrays["lengths"], dtype=np.float32)
            self._changed = False
            return True

    def save(self) -> None:
        """Write the postings with the vocabulary and lengths beside them, taken together under the lock
        (see :meth:`PostingsIndex.save`: the disk is written beside searches)."""

        def snapshot() -> dict[str, np.ndarray]:
            with self.lock:
                ordered = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
                arrays = {**self.frequencies.take_for_save(), "lengths": self.lengths.copy(),
                          "vocabulary": np.frombuffer("\n".join(ordered).encode("utf-8"), dtype=np.uint8)}
                self._changed = False
                return arrays

        self.frequencies.save(snapshot)

    def reset(self) -> None:
        with self.lock:
            self.frequencies.reset()
            self.vocabulary, self.lengths = {}, np.zeros(0, dtype=np.float32)

    def add(self, chunks: Iterable[tuple[int, list[str]]]) -> None:
        """Add new chunks as (chunk id, their keyword terms)."""
        rows: list[tuple[int, int, float]] = []
        lengths: dict[int, int] = {}
        with self.lock:
            for chunk_id, terms in chunks:
                lengths[chunk_id] = len(terms)
                for term, frequency in Counter(terms).items():
                    rows.append((chunk_id, self.vocabulary.setdefault(term, len(self.vocabulary)), frequency))
            if lengths:
                self._grow(max(lengths) + 1)
                self.lengths[list(lengths)] = list(lengths.values())
                self._changed = True
            self.frequencies.add(rows)

    def delete(self, chunk_ids: Iterable[int]) -> None:
        ids = np.fromiter(chunk_ids, dtype=np.int64)
        with self.lock:
            self.lengths[ids[ids < len(self.lengths)]] = ABSENT
            self.frequencies.delete(ids)

    def rebuild(self, chunks: Iterable[tuple[int, list[str]]]) -> None:
        """Replace everything with these (chunk id, terms)."""
        self.reset()
        batch: list[tuple[int, list[str]]] = []
        for item in chunks:
            batch.append(item)
            if len(batch) == 50_000:
                self.add(batch)
                batch = []
        self.add(batch)
        self.frequencies.compact()

    def bm25_top(self, terms: list[str], limit: int, allowed: Collection[int] | None = None,
                 blocked: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``limit`` best chunks by FTS5's BM25 for these query terms (a repeated term counts again)."""
        with self.lock:
            live = self.lengths >= 0
            chunks = int(live.sum())
            if not chunks:
                return []
            mean_length = float(self.lengths[live].sum()) / chunks
            scores = np.zeros(len(self.lengths), dtype=np.float64)
            for term, repeats in Counter(terms).items():
                number = self.vocabulary.get(term)
                parts = self.frequencies.parts(number) if number is not None else []
                having = sum(int(live[ids].sum()) for ids, _ in parts)
                idf = fts5_idf(chunks, having)
                for ids, frequency in parts:
                    weights = repeats * idf * saturation(frequency, self.lengths[ids], mean_length)
                    scores += np.bincount(ids, weights=weights, minlength=len(scores))
            scores[~live] = 0.0
        return best_of(scores, limit, allowed, blocked)

    def _grow(self, size: int) -> None:
        if size > len(self.lengths):
            grown = np.full(max(size, 2 * len(self.lengths)), ABSENT, dtype=np.float32)
            grown[: len(self.lengths)] = self.lengths
            self.lengths = grown
