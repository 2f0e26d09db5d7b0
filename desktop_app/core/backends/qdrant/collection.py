"""A Qdrant collection as an index's search side: one point per chunk, and what it takes to write them.

- ``dense``: the chunk's dense vector (dot product on normalised vectors);
- ``sparse``: BGE-M3's lexical weights by token id;
- ``keyword``: a BM25 vector over the same terms as the local FTS5 channel (the chunk's text
  and its file name), term frequency saturated here and IDF applied by Qdrant's ``idf`` modifier;
- ``colbert``: the ColBERT multi-vectors, when the backend was created with them;
- payload: path, page, offsets, text, size, mtime, unit, OCR flag, extension, folders and the
  analysed terms, so searches, filters, phrases and snippets need nothing but Qdrant; ``meaning``
  says whether the chunk has its vectors yet (``encoded``, ``pending`` or ``capped``).

A chunk becomes a point as soon as its words are stored (stage 1: the keyword vector and the
payload, findable by words and filters); its dense, sparse and ColBERT vectors join the point
when they are made (stage 2). Points written before ``meaning`` existed have all their vectors.

The collection's metadata names the index folder that writes it (its owner) and the model; a
folder that never wrote it can search it. :class:`~desktop_app.core.backends.qdrant.index.QdrantIndex`
decides when points are written; :class:`~desktop_app.core.backends.qdrant.source.QdrantSource`
searches them.
"""

from __future__ import annotations

import hashlib
import math
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np

from desktop_app.core import analyze
from desktop_app.core.analyze import saturation
from desktop_app.core.errors import DesktopSearchError, IndexMismatchError, UsageError
from desktop_app.core.storage.folder import IndexFolder
from desktop_app.core.storage.records import ChunkRow
from desktop_app.core.storage.store import Store

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from desktop_app.core.backends.choice import Backend

STATE_KEY = "qdrant_state"
OWNER_KEY = "qdrant_owner"  # which index folder writes the collection (a random id it keeps)
# BM25's length normalisation needs the mean chunk length. Keyword vectors are made with the mean
# rounded to this ratio's grid and made again whenever the rounded mean moves: a step off by at
# most 5%, and an index built bit by bit ends with the same vectors as one built at once.
AVGDL_STEP = 1.1
UPSERT_BATCH = 256
SCROLL_BATCH = 2048
PAYLOAD_FIELDS = ["path", "page", "start", "end", "text", "size", "mtime_ns", "unit", "ocr", "meaning",
                  "meaning_cap"]
WORDS_ONLY = ("pending", "capped")  # ``meaning`` of a point that has its keyword vector alone


class QdrantUnavailable(DesktopSearchError):
    """The Qdrant location cannot be reached or opened."""


def connect(backend: Backend) -> QdrantClient:
    """A client for the backend's location; errors name the location and what to do."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise QdrantUnavailable("the qdrant backend needs the qdrant-client package: "
                                "pip install 'desktop-search[qdrant]'") from None

    try:
        if backend.remote:
            return QdrantClient(url=backend.location, api_key=backend.key(), timeout=60)
        Path(backend.location).mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=backend.location)
    except RuntimeError as error:
        if "already accessed" in str(error):
            raise QdrantUnavailable(
                f"the embedded Qdrant store at {backend.location} is open in another process: embedded mode "
                "serves one process at a time (run a Qdrant server for several, see docs/scale-out.md)") from None
        raise QdrantUnavailable(f"cannot open Qdrant at {backend.location}: {error}") from None
    except OSError as error:
        raise QdrantUnavailable(f"cannot open Qdrant at {backend.location}: {error.strerror or error}") from None


def term_id(term: str) -> int:
    """A keyword term's sparse index: stable across processes and machines (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def keyword_vector(terms: list[str], avgdl: float) -> tuple[list[int], list[float]]:
    """BM25's saturated term frequency per term, as the local keyword cache weighs it (Qdrant
    multiplies in the IDF)."""
    weights: dict[int, float] = {}
    for term, tf in Counter(terms).items():
        index = term_id(term)
        weights[index] = weights.get(index, 0.0) + saturation(tf, len(terms), avgdl)
    return list(weights), list(weights.values())


def rounded_length(mean: float) -> float:
    """``mean`` on the :data:`AVGDL_STEP` grid."""
    return AVGDL_STEP ** round(math.log(max(mean, 1.0)) / math.log(AVGDL_STEP))


def folders_of(path: str) -> list[str]:
    """Every folder above ``path``: what an ``in:`` filter matches."""
    return [str(parent) for parent in PurePath(path).parents]


class QdrantCollection:
    """The backend's collection, connected once a model is recorded (here, or by the folder that writes it).

    ``avgdl``, ``dl_total`` and ``points`` are the keyword vectors' length statistics, kept up to
    date by every upsert and delete and recorded by the index with the generation they reflect.
    """

    def __init__(self, home: IndexFolder, backend: Backend) -> None:
        self.home = home
        self.backend = backend
        self.client: QdrantClient | None = None
        self.dim = 0
        self.avgdl = 0.0
        self.dl_total = 0
        self.points = 0
        self.shared: dict[str, object] = {}  # the collection's metadata: its owner and model
        self.lock = threading.RLock()

    @property
    def name(self) -> str:
        return self.backend.collection

    @property
    def connected(self) -> bool:
        return self.client is not None

    @property
    def searched_from_elsewhere(self) -> bool:
        """Another index folder writes the collection; this one only searches it."""
        return self.client is not None and self.shared.get("owner") not in (None, self.home.store.get_meta(OWNER_KEY))

    def count(self) -> int:
        """Points that have their vectors (words-only points are not counted)."""
        return self.client.count(self.name, count_filter=_words_only(False), exact=True).count \
            if self.client is not None else 0

    def words_only_count(self) -> int:
        """Points found by their words alone (vectors pending, or past their file's meaning cap)."""
        return self.client.count(self.name, count_filter=_words_only(True), exact=True).count \
            if self.client is not None else 0

    def attach(self, dim: int) -> None:
        """Connect and make sure the collection exists with this model's dimension; read the recorded statistics."""
        if self.client is None:
            self.client = connect(self.backend)
        self.dim = dim
        self._ensure_collection()
        state = self.home.search_state(STATE_KEY)
        self.avgdl = float(state.get("avgdl", 0.0))
        self.dl_total = int(state.get("dl_total", 0))
        self.points = int(state.get("points", 0))

    def catch_up(self, store: Store | None = None) -> None:
        """Connect once another process has recorded a model (read through ``store``, the index's own
        connection by default); Qdrant itself needs no catching up."""
        if self.client is None:
            info = (store or self.home.store).model_info()
            if info is not None:
                with self.lock:
                    if self.client is None:
                        self.attach(int(info["dim"]))

    def forget(self) -> None:
        """Drop every point (a rebuild with another model)."""
        if self.client is not None:
            self.client.delete_collection(self.name)
        self.avgdl, self.dl_total, self.points = 0.0, 0, 0

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def attach_to_shared(self) -> None:
        """Search a collection this folder never wrote: connect, and take the model it records."""
        self.client = connect(self.backend)
        if not self.client.collection_exists(self.name):
            self.client.close()
            self.client = None
            return
        self.shared = self.client.get_collection(self.name).config.metadata or {}
        if "model" not in self.shared:
            self.client.close()
            self.client = None
            return
        self.dim = int(self.shared["model"]["dim"])

    def check_owner(self) -> None:
        """One index folder writes a collection (its chunk ids are the point ids); an empty collection
        is adopted, a full one written by another folder is refused with who that is."""
        mine = self.home.store.get_meta(OWNER_KEY)
        if mine is None:
            mine = uuid.uuid4().hex
            self.home.store.set_meta(OWNER_KEY, mine)
        if self.client is None or self.shared.get("owner") in (None, mine):
            return
        if self.client.count(self.name, exact=True).count:
            raise UsageError(
                f"the Qdrant collection {self.name} at {self.backend.location} is indexed from "
                f"{self.shared.get('folder')} on {self.shared.get('host')}: this folder can search it, not index "
                "into it (index on that machine, or name another collection with --qdrant-collection)")
        self.shared = {**self.shared, "owner": mine, "host": socket.gethostname(), "folder": str(self.home.path)}
        self.client.update_collection(self.name, metadata=self.shared)

    def _ensure_collection(self) -> None:
        from qdrant_client import models

        name, store = self.name, self.home.store
        if self.client.collection_exists(name):
            self.shared = self.client.get_collection(name).config.metadata or {}
            size = self.client.get_collection(name).config.params.vectors["dense"].size
            if size != self.dim:
                raise IndexMismatchError(
                    f"the Qdrant collection {name} at {self.backend.location} holds {size}-d vectors, not "
                    f"{self.dim}-d: it was built with another model; rebuild it (`desktop-search index --rebuild`)")
            if store.model_info() is not None and self.shared.get("model") != store.model_info() \
                    and self.shared.get("owner") == store.get_meta(OWNER_KEY):
                self.shared = {**self.shared, "model": store.model_info()}
                self.client.update_collection(name, metadata=self.shared)
            return
        self.shared = {"model": store.model_info(), "host": socket.gethostname(), "folder": str(self.home.path)}
        if store.get_meta(OWNER_KEY):
            self.shared["owner"] = store.get_meta(OWNER_KEY)
        cluster = {"shard_number": self.backend.shards or None, "replication_factor": self.backend.replicas or None}
        self.client.create_collection(
            name, metadata=self.shared, **(cluster if self.backend.remote else {}),
            vectors_config={
                "dense": models.VectorParams(size=self.dim, distance=models.Distance.DOT),
                "colbert": models.VectorParams(
                    size=self.dim, distance=models.Distance.DOT, datatype=models.Datatype.FLOAT16,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                    hnsw_config=models.HnswConfigDiff(m=0)),  # re-ranking only: no graph to build
            },
            sparse_vectors_config={"sparse": models.SparseVectorParams(),
                                   "keyword": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        if not self.backend.remote:
            return  # embedded mode scans payloads and ignores indexes (it warns about them)
        for field, schema in (("path", models.PayloadSchemaType.KEYWORD), ("ext", models.PayloadSchemaType.KEYWORD),
                              ("dirs", models.PayloadSchemaType.KEYWORD),
                              ("meaning", models.PayloadSchemaType.KEYWORD),
                              ("mtime_ns", models.IntegerIndexParams(type="integer", range=True, lookup=False)),
                              ("terms", models.TextIndexParams(type="text", tokenizer=models.TokenizerType.WHITESPACE,
                                                               lowercase=False, phrase_matching=True))):
            self.client.create_payload_index(name, field, schema)

    def upsert(self, items: list[tuple[ChunkRow, np.ndarray | None, dict[int, float] | None,
                                       np.ndarray | None]]) -> None:
        """Write whole points: (row, dense, sparse, colbert) per chunk, ``dense`` None for a chunk whose
        words alone are stored yet. A point already there is replaced (its length leaves the statistics)."""
        from qdrant_client import models

        terms = [analyze.keyword_terms(row.text, row.path) for row, *_ in items]
        if not self.avgdl and terms:  # the first chunks set the length BM25 normalises by
            self.avgdl = rounded_length(sum(map(len, terms)) / len(terms))
        points = []
        for (row, dense, sparse, colbert), words in zip(items, terms):
            vectors: dict[str, object] = {"keyword": _sparse(*keyword_vector(words, self.avgdl))}
            if dense is not None:
                # as SQLite keeps it (fp16), so points written now and points repaired from SQLite agree
                vectors["dense"] = np.asarray(dense, dtype=np.float16).astype(np.float32).tolist()
                vectors["sparse"] = _sparse(list(sparse or {}), [float(w) for w in (sparse or {}).values()])
            if colbert is not None and len(colbert):
                vectors["colbert"] = np.asarray(colbert, dtype=np.float32).tolist()
            payload = {field: getattr(row, field) for field in PAYLOAD_FIELDS}
            payload |= {"ext": PurePath(row.path).suffix.lower(), "meaning": "encoded" if dense is not None else
                        ("capped" if row.meaning == "capped" else "pending"),
                        "dirs": folders_of(row.path), "terms": " ".join(analyze.terms(row.text)), "dl": len(words)}
            points.append(models.PointStruct(id=row.id, vector=vectors, payload=payload))
        for start in range(0, len(points), UPSERT_BATCH):
            part = points[start:start + UPSERT_BATCH]
            self._forget_lengths([int(point.id) for point in part])
            self.client.upsert(self.name, part, wait=True)
            self.dl_total += sum(int(point.payload["dl"]) for point in part)
            self.points += len(part)

    def _forget_lengths(self, ids: list[int]) -> None:
        """Take the points among ``ids`` that exist out of the length statistics (they are about to be
        replaced or deleted)."""
        gone = self.client.retrieve(self.name, ids, with_payload=["dl"], with_vectors=False)
        self.dl_total -= sum(int(p.payload.get("dl", 0)) for p in gone)
        self.points -= len(gone)

    def delete_points(self, ids: list[int]) -> None:
        from qdrant_client import models

        for start in range(0, len(ids), UPSERT_BATCH):
            part = ids[start:start + UPSERT_BATCH]
            self._forget_lengths(part)
            self.client.delete(self.name, models.PointIdsList(points=part), wait=True)

    def scroll(self, payload: list[str] | bool = False, vectors: list[str] | bool = False,
                where: models.Filter | None = None) -> Iterator[models.Record]:
        offset = None
        while True:
            records, offset = self.client.scroll(self.name, scroll_filter=where, limit=SCROLL_BATCH,
                                                 offset=offset, with_payload=payload, with_vectors=vectors)
            yield from records
            if offset is None:
                return

    def remake_keyword_vectors(self, avgdl: float) -> None:
        """Every point's keyword vector again with the current mean length."""
        from qdrant_client import models

        self.avgdl = avgdl
        batch: list[models.PointVectors] = []
        for point in self.scroll(payload=["text", "path"]):
            words = analyze.keyword_terms(point.payload["text"], point.payload["path"])
            batch.append(models.PointVectors(id=point.id, vector={
                "keyword": _sparse(*keyword_vector(words, avgdl))}))
            if len(batch) == UPSERT_BATCH:
                self.client.update_vectors(self.name, batch, wait=True)
                batch = []
        if batch:
            self.client.update_vectors(self.name, batch, wait=True)


def _sparse(indices: list[int], values: list[float]) -> models.SparseVector:
    from qdrant_client import models

    return models.SparseVector(indices=indices, values=values)


def _words_only(which: bool) -> models.Filter:
    """Points with their words alone (``which``) or with their vectors (points from before ``meaning`` have them)."""
    from qdrant_client import models

    condition = models.FieldCondition(key="meaning", match=models.MatchAny(any=list(WORDS_ONLY)))
    return models.Filter(must=[condition]) if which else models.Filter(must_not=[condition])
