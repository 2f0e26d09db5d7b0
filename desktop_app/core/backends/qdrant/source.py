"""A Qdrant-backed index's searches: candidates, exact vectors, filters and rows from the collection.

Nothing here reads the SQLite file, so a desktop that only searches needs the collection alone; the
folder that writes the collection lends its keyword statistics (FTS5's) so that its keyword ranking is
the local backend's.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from desktop_app.core import analyze
from desktop_app.core.backends.qdrant.collection import PAYLOAD_FIELDS, QdrantCollection, term_id
from desktop_app.core.model.encoder import Encoding
from desktop_app.core.search.query import Query, phrase_note
from desktop_app.core.storage.records import ChunkRow, CopyGroup

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models


# How many chunks there are, and how many hold each term: FTS5's statistics, from the writing folder's store.
DocumentFrequencies = Callable[[Collection[str]], tuple[int, dict[str, int]]]


@dataclass(frozen=True)
class QdrantRestriction:
    """A search's filters, phrases and exclusions as one Qdrant filter."""

    filter: models.Filter


class QdrantSource:
    """A searcher's questions answered from the collection alone (the SQLite file is not read)."""

    def __init__(self, collection: QdrantCollection, frequencies: DocumentFrequencies | None = None) -> None:
        self.collection = collection
        self.frequencies = frequencies

    @property
    def client(self) -> QdrantClient:
        return self.collection.client

    @property
    def name(self) -> str:
        return self.collection.name

    def refresh(self) -> None:
        """Connect once another process has bound a model (the collection itself is always current)."""
        self.collection.catch_up()

    @property
    def ready(self) -> bool:
        return True

    @property
    def empty(self) -> bool:
        return not self.collection.connected

    @property
    def unencoded(self) -> int:
        """Points found by their words alone (vectors pending, or past their file's meaning cap)."""
        return self.collection.words_only_count() if self.collection.connected else 0

    @property
    def encoded_share(self) -> float:
        """The share of points that have their vectors (1.0 for an empty collection)."""
        if not self.collection.connected:
            return 1.0
        words_only, encoded = self.collection.words_only_count(), self.collection.count()
        return encoded / (words_only + encoded) if words_only + encoded else 1.0

    def roots(self) -> list[str]:
        return self.collection.home.store.roots()

    def restrict(self, query: Query) -> tuple[QdrantRestriction, str]:
        """Filters, phrases and exclusions as one Qdrant filter; a note names what left nothing."""
        from qdrant_client import models

        filters = query.filters
        must: list[models.Condition] = []
        if filters.extensions:
            must.append(models.FieldCondition(key="ext", match=models.MatchAny(any=list(filters.extensions))))
        if filters.folders:
            folders = [f.rstrip("/\\") or f for f in filters.folders]
            must.append(models.Filter(should=[
                models.FieldCondition(key="dirs", match=models.MatchAny(any=folders)),
                models.FieldCondition(key="path", match=models.MatchAny(any=folders))]))
        if filters.after is not None or filters.before is not None:
            must.append(models.FieldCondition(key="mtime_ns", range=models.Range(
                gte=None if filters.after is None else int(filters.after * 1e9),
                lt=None if filters.before is None else int(filters.before * 1e9))))
        if filters.names:
            paths = self._paths(models.Filter(must=must))
            named = [p for p in paths if all(n in os.path.basename(p).lower() for n in filters.names)]
            must.append(models.FieldCondition(key="path", match=models.MatchAny(any=named or [""])))
        if filters.active and not self._count(models.Filter(must=must)):
            nothing = f"no indexed file matches {' '.join(filters.describe())}"
            return QdrantRestriction(models.Filter(must=must)), nothing
        for phrase in query.phrases:
            must.append(_phrase_condition(phrase))
            if not self._count(models.Filter(must=must)):
                return QdrantRestriction(models.Filter(must=must)), phrase_note(phrase, filters)
        must_not = [_phrase_condition(excluded) for excluded in query.excluded if analyze.terms(excluded)]
        where = models.Filter(must=must or None, must_not=must_not or None)
        if must_not and not self._count(where):
            return QdrantRestriction(where), f"every hit holds the excluded -{query.excluded[-1]}"
        return QdrantRestriction(where), ""

    def listing(self, restriction: QdrantRestriction, k: int) -> list[ChunkRow]:
        """The first chunk of each of the ``k`` newest files that pass, newest first."""
        from qdrant_client import models

        limit = max(200, 20 * k)
        while True:
            records, _ = self.client.scroll(self.name, scroll_filter=restriction.filter, limit=limit,
                                            order_by=models.OrderBy(key="mtime_ns", direction=models.Direction.DESC),
                                            with_payload=PAYLOAD_FIELDS)
            first: dict[str, ChunkRow] = {}
            for record in records:
                row = _row(record)
                best = first.get(row.path)
                if best is None or (row.page, row.start) < (best.page, best.start):
                    first[row.path] = row
            if len(first) > k or len(records) < limit:
                newest = sorted(first.values(), key=lambda r: (-r.mtime_ns, r.path))
                return newest[:k]
            limit *= 4

    def keyword_top(self, text: str, depth: int, restriction: QdrantRestriction | None) -> list[tuple[int, float]]:
        """BM25 of the best ``depth`` matches; quoted phrases in ``text`` must all match, as in FTS5."""
        from qdrant_client import models

        terms = self._keyword_query(Counter(analyze.terms(text)))
        if not terms:
            return []
        where = restriction.filter if restriction is not None else None
        phrases = [_phrase_condition(p) for p in _quoted(text) if analyze.terms(p)]
        if phrases:
            where = models.Filter(must=[*phrases, *([where] if where is not None else [])])
        found = self.client.query_points(self.name, query=models.SparseVector(indices=list(terms),
                                                                               values=list(terms.values())),
                                         using="keyword", limit=depth, query_filter=where, with_payload=False)
        return [(int(p.id), float(p.score)) for p in found.points if p.score > 0]

    def _keyword_query(self, terms: Counter[str]) -> dict[int, float]:
        """The query's keyword vector: each term's count, times FTS5's IDF over Qdrant's where this folder's
        store can tell how many chunks hold the term (so the ranking is the local backend's), else as is
        (a folder that only searches the collection ranks by Qdrant's own IDF)."""
        weights: dict[int, float] = {}
        chunks, having = self.frequencies(list(terms)) if self.frequencies is not None and terms else (0, {})
        for term, count in terms.items():
            if self.frequencies is not None:
                if not having.get(term):
                    continue  # in no chunk: nothing to weigh
                count *= analyze.fts5_idf(chunks, having[term]) / analyze.lucene_idf(chunks, having[term])
            weights[term_id(term)] = weights.get(term_id(term), 0.0) + count
        return weights

    def candidates(self, dense: np.ndarray | None, sparse: dict[int, float] | None, pool: int,
                   restriction: QdrantRestriction | None) -> dict[str, list[int]]:
        """The dense and sparse channels' top ``pool`` chunks in one round trip."""
        from qdrant_client import models

        where = restriction.filter if restriction is not None else None
        requests, names = [], []
        if dense is not None:
            names.append("dense")
            # a server's HNSW looks at 2x the pool at least; embedded mode is exact (and warns about params)
            params = models.SearchParams(hnsw_ef=max(128, 2 * pool)) if self.collection.backend.remote else None
            requests.append(models.QueryRequest(query=np.asarray(dense, dtype=np.float32).tolist(), using="dense",
                                                limit=pool, filter=where, params=params))
        if sparse:
            names.append("sparse")
            requests.append(models.QueryRequest(
                query=models.SparseVector(indices=list(sparse), values=[float(w) for w in sparse.values()]),
                using="sparse", limit=pool, filter=where))
        answers = self.client.query_batch_points(self.name, requests) if requests else []
        tops = {name: [int(p.id) for p in answer.points] for name, answer in zip(names, answers)}
        if sparse is not None and "sparse" not in tops:
            tops["sparse"] = []
        return tops

    def dense_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Dense vectors of those chunks that have them."""
        return {int(p.id): np.asarray(p.vector["dense"], dtype=np.float32)
                for p in self._retrieve(ids, vectors=["dense"]) if (p.vector or {}).get("dense") is not None}

    def sparse_weights(self, ids: list[int], query: dict[int, float]) -> dict[int, dict[int, float]]:
        found: dict[int, dict[int, float]] = {cid: {} for cid in ids}
        for point in self._retrieve(ids, vectors=["sparse"]):
            vector = point.vector.get("sparse")
            if vector is not None:
                found[int(point.id)] = {t: w for t, w in zip(vector.indices, vector.values) if t in query}
        return found

    def rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        return {int(p.id): _row(p) for p in self._retrieve(ids, payload=PAYLOAD_FIELDS)}

    def paths(self, ids: list[int]) -> dict[int, str]:
        return {int(p.id): p.payload["path"] for p in self._retrieve(ids, payload=["path"])}

    def copies(self, paths: list[str]) -> dict[str, CopyGroup]:
        return self.collection.home.store.copies_of(paths)

    def passage(self, chunk_id: int) -> tuple[ChunkRow, Encoding] | None:
        found = self._retrieve([chunk_id], payload=PAYLOAD_FIELDS, vectors=["dense", "sparse"])
        if not found:
            return None
        point = found[0]
        if (point.vector or {}).get("dense") is None:  # words alone so far: nothing to compare with
            return None
        sparse = point.vector.get("sparse")
        weights = dict(zip(sparse.indices, sparse.values)) if sparse is not None else {}
        return _row(point), Encoding(dense=np.asarray(point.vector["dense"], dtype=np.float32), sparse=weights)

    def colbert_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Stored ColBERT multi-vectors (chunks indexed without them are missing)."""
        found = {}
        for point in self._retrieve(ids, vectors=["colbert"]):
            vectors = (point.vector or {}).get("colbert")
            if vectors:
                found[int(point.id)] = np.asarray(vectors, dtype=np.float32)
        return found

    def _retrieve(self, ids: Iterable[int], payload: list[str] | bool = False,
                  vectors: list[str] | bool = False) -> list[models.Record]:
        ids = list(ids)
        if not ids:
            return []
        return self.client.retrieve(self.name, ids, with_payload=payload, with_vectors=vectors)

    def _count(self, where: models.Filter) -> int:
        return self.client.count(self.name, count_filter=where, exact=True).count

    def _paths(self, where: models.Filter) -> list[str]:
        """Distinct file paths among the points that pass ``where``."""
        answer = self.client.facet(self.name, key="path", facet_filter=where, limit=1_000_000, exact=True)
        return [str(hit.value) for hit in answer.hits]


def _phrase_condition(phrase: str) -> models.FieldCondition:
    """The analysed terms of ``phrase`` in order, as the local keyword index matches a phrase."""
    from qdrant_client import models

    return models.FieldCondition(key="terms", match=models.MatchPhrase(phrase=" ".join(analyze.terms(phrase))))


def _quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]+)"', text)


def _row(record: models.Record) -> ChunkRow:
    data = record.payload
    return ChunkRow(int(record.id), data["path"], int(data["page"]), int(data["start"]), int(data["end"]),
                    data["text"], int(data.get("size", 0)), int(data.get("mtime_ns", 0)), data.get("unit", "page"),
                    bool(data.get("ocr", False)), data.get("meaning", "encoded"), int(data.get("meaning_cap", 0)))

