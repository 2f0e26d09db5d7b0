"""Where a local index's searches read from: the SQLite store and the caches (dense, postings, keywords).

The :class:`~desktop_app.core.search.searcher.Searcher` ranks; a *source* answers its questions (which
chunks pass the filters, each channel's top candidates, exact vectors and weights, the rows to
show). This one is the single-machine index; :mod:`desktop_app.core.backends.qdrant.source` answers the
same questions from a Qdrant collection.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from desktop_app.core import analyze
from desktop_app.core.backends.local.caches import LocalCaches
from desktop_app.core.model.encoder import Encoding
from desktop_app.core.search.query import Filters, Query, phrase_note
from desktop_app.core.storage.records import ChunkRow, CopyGroup
from desktop_app.core.storage.store import Store

# A filter that keeps at most this many chunks is scored exactly from the stored vectors: at 1M
# chunks, 10,000 of them took 44 ms from SQLite, hnswlib's filtered search for them 130-140 ms.
EXACT_DENSE_LIMIT = 15_000


@dataclass(frozen=True)
class Restriction:
    """The chunks a search may return: those in ``allowed`` (None: every chunk) minus ``blocked``.

    Exclusions alone (``wing -draft``) only block: listing every chunk id to subtract a few from
    it would cost about a second at 1M chunks.
    """

    allowed: frozenset[int] | None = None
    blocked: frozenset[int] = frozenset()

    def __contains__(self, chunk_id: int) -> bool:
        return chunk_id not in self.blocked and (self.allowed is None or chunk_id in self.allowed)

    @property
    def most(self) -> int | None:
        """At most this many chunks pass (None: no bound known without counting the index)."""
        return None if self.allowed is None else len(self.allowed)


class LocalSource:
    """Reads with its own store connection, so a writer thread's open transaction is never seen."""

    def __init__(self, caches: LocalCaches, store: Store, helper: ThreadPoolExecutor) -> None:
        self.caches = caches
        self.store = store
        self.helper = helper

    def refresh(self) -> None:
        """Apply what other processes wrote since the last search (the caches do once they are in)."""
        if self.caches.loaded:
            self.caches.catch_up(self.store)

    @property
    def ready(self) -> bool:
        """The caches are in memory; until then keyword searches read FTS5 and the rest waits."""
        return self.caches.loaded

    @property
    def empty(self) -> bool:
        """Nothing indexed yet: no model is bound, no vectors exist."""
        return not self.caches.bound

    @property
    def unencoded(self) -> int:
        """Chunks searchable by their words only (vectors pending, or past their file's meaning cap)."""
        words, encoded = self._coverage()
        return max(words - encoded, 0)

    @property
    def encoded_share(self) -> float:
        """The share of chunks that have their vectors (1.0 for an empty index)."""
        words, encoded = self._coverage()
        return min(encoded / words, 1.0) if words else 1.0

    def _coverage(self) -> tuple[int, int]:
        """(chunks searchable by words, chunks with vectors): from the caches, or SQLite while they load."""
        if not self.caches.loaded:
            return self.store.chunk_count(), self.store.encoded_count()
        return self.caches.keyword_count, self.caches.vector_count

    def roots(self) -> list[str]:
        return self.store.roots()

    def restrict(self, query: Query) -> tuple[Restriction, str]:
        """The chunks that pass the query's file filters, phrases and exclusions, and (when none do)
        which condition removed everything, in words (the note is empty otherwise)."""
        filters = query.filters
        allowed: set[int] | None = None
        if filters.active:
            files = self.files_passing(filters)
            if not files:
                return Restriction(frozenset()), f"no indexed file matches {' '.join(filters.describe())}"
            allowed = self.store.chunks_of_files([f[0] for f in files])
        for phrase in query.phrases:
            expression = fts_query(f'"{phrase}"')
            matching = self.store.keyword_matches(expression) if expression else set()
            allowed = matching if allowed is None else allowed & matching
            if not allowed:
                return Restriction(frozenset()), phrase_note(phrase, filters)
        blocked: set[int] = set()
        for excluded in query.excluded:
            expression = fts_query(f'"{excluded}"')
            if expression:
                blocked |= self.store.keyword_matches(expression)
        restriction = Restriction(None if allowed is None else frozenset(allowed - blocked),
                                  frozenset() if allowed is not None else frozenset(blocked))
        if restriction.most == 0 or (allowed is None and len(blocked) >= self.store.chunk_count()):
            return restriction, f"every hit holds the excluded -{query.excluded[-1]}"
        return restriction, ""

    def files_passing(self, filters: Filters) -> list[tuple[int, str, int, int]]:
        """(id, path, size, mtime_ns) of the indexed files the filters let through, newest first."""
        files = self.store.files_where(filters.extensions, filters.folders,
                                       None if filters.after is None else int(filters.after * 1e9),
                                       None if filters.before is None else int(filters.before * 1e9))
        return [f for f in files if all(name in os.path.basename(f[1]).lower() for name in filters.names)]

    def listing(self, restriction: Restriction, k: int) -> list[ChunkRow]:
        """The first chunk of each of the ``k`` newest files with a chunk in ``restriction``."""
        chunks = restriction.allowed if restriction.allowed is not None else \
            set(self.store.all_chunk_ids().tolist()) - restriction.blocked  # only exclusions, and no words
        firsts = self.store.newest_files_first_chunks(set(chunks), k)
        rows = self.store.chunk_rows(firsts)
        return [rows[cid] for cid in firsts if cid in rows]

    def keyword_top(self, text: str, depth: int, restriction: Restriction | None) -> list[tuple[int, float]]:
        """BM25 of the best ``depth`` matches, best first, from the keyword cache (FTS5's ranking), or
        from FTS5 itself while the cache is still loading (0.45 s at a million chunks, the cache 25 ms)."""
        if not self.caches.loaded:
            # Any term, as the cache ranks: a quoted phrase is the restriction's condition, not the ranking's.
            expression = fts_query(text.replace('"', " "))
            if not expression:
                return []
            with self.caches.searching_words():
                if restriction is None:
                    return self.store.keyword_top(expression, depth)
                return self.store.keyword_top(expression, depth, restriction.allowed, restriction.blocked)
        terms = analyze.terms(text)
        if restriction is None:
            return self.caches.keywords.bm25_top(terms, depth)
        return self.caches.keywords.bm25_top(terms, depth, restriction.allowed, restriction.blocked)

    def candidates(self, dense: np.ndarray | None, sparse: dict[int, float] | None, pool: int,
                   restriction: Restriction | None) -> dict[str, list[int]]:
        """The dense and sparse channels' top ``pool`` chunks (a channel given no query is left out).

        hnswlib releases the GIL, so the dense query runs in a helper thread while numpy sums
        the sparse postings in memory (exact). Inside a restriction hnswlib searches through its
        filter callback (or exact scores for a few thousand chunks), and the sparse channel masks
        its exact scores to the allowed chunks.
        """
        waiting = None
        if dense is not None and self.caches.vector_count:
            if restriction is not None and restriction.most is not None and restriction.most <= EXACT_DENSE_LIMIT:
                waiting = self.helper.submit(self.exact_dense_top, dense, restriction.allowed, pool)
            else:
                waiting = self.helper.submit(self.caches.dense.query, dense, min(pool, self.caches.vector_count),
                                             restriction, restriction.most if restriction is not None else None)
        tops: dict[str, list[int]] = {}
        if sparse is not None:
            limits = (restriction.allowed, restriction.blocked) if restriction is not None else ()
            tops["sparse"] = [cid for cid, _ in self.caches.postings.top(sparse, pool, *limits)]
        if waiting is not None:
            tops = {"dense": [cid for cid, _ in waiting.result()], **tops}
        return tops

    def exact_dense_top(self, query: np.ndarray, allowed: set[int], pool: int) -> list[tuple[int, float]]:
        """The best ``pool`` of ``allowed`` by exact cosine, one matrix product per batch read."""
        ids, scores = [], []
        for chunk_ids, vectors in self.store.iter_dense(sorted(allowed)):
            ids.append(chunk_ids)
            scores.append(vectors @ np.asarray(query, dtype=np.float32))
        if not ids:
            return []
        ids_, scores_ = np.concatenate(ids), np.concatenate(scores)
        best = np.argsort(-scores_, kind="stable")[:pool]
        return list(zip(ids_[best].tolist(), scores_[best].tolist()))

    def dense_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        return self.store.dense_for(ids)

    def sparse_weights(self, ids: list[int], query: dict[int, float]) -> dict[int, dict[int, float]]:
        """chunk id -> {query token: the chunk's lexical weight}."""
        return self.caches.postings.weights_of(ids, query)

    def rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        """What a hit shows; chunks deleted by another process since they were ranked have no row."""
        return self.store.chunk_rows(ids)

    def paths(self, ids: list[int]) -> dict[int, str]:
        return self.store.chunk_paths(ids)

    def copies(self, paths: list[str]) -> dict[str, CopyGroup]:
        return self.store.copies_of(paths)

    def colbert_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        return {}  # the local index keeps no multi-vectors: the searcher encodes them

    def passage(self, chunk_id: int) -> tuple[ChunkRow, Encoding] | None:
        """An indexed chunk's row and stored vectors (None when it is gone)."""
        row = self.store.chunk_rows([chunk_id]).get(chunk_id)
        vectors = self.store.dense_for([chunk_id])
        if row is None or chunk_id not in vectors:
            return None
        return row, Encoding(dense=vectors[chunk_id], sparse=self.store.sparse_of(chunk_id))


def fts_query(text: str) -> str:
    """User text -> FTS5 syntax over analyzed terms: "quoted phrases" must all match, other terms are OR-ed.

    A term repeated in the query is repeated in the OR, so it weighs more in BM25 (as in bm25s).
    """
    phrases = re.findall(r'"([^"]+)"', text)
    rest = re.sub(r'"[^"]*"', " ", text)
    parts = [f'"{" ".join(terms)}"' for terms in map(analyze.terms, phrases) if terms]
    words = [f'"{term}"' for term in analyze.terms(rest)]
    if words:
        parts.append("(" + " OR ".join(words) + ")")
    return " AND ".join(parts)
