"""Exact sparse (lexical weight) retrieval at scale: PostingsIndex against qdrant-edge-py, same data, one process.

Generates N synthetic documents (default 200,000) of ~50 distinct tokens each, drawn from a Zipf-like law over
BGE-M3's 250,002-token vocabulary (rarer tokens weigh more, weights about 0.02-0.3), and 200 queries of 12
distinct tokens drawn the same way. The truth is the exact top-100 by ``sum(q_w * d_w)``, computed with a
scipy.sparse product in float64. Then, for each engine: build, save/flush, reopen, top-100 latency (p50/p95
after one warm-up query), recall@100 against the truth, RSS growth (VmRSS) and disk size. One JSON object on
stdout.

Engines:

* ``postings``: ``desktop_app.core.backends.local.postings.PostingsIndex`` through its public API (``add`` in batches of
  2^20 (chunk id, token id, weight) tuples, as ``rebuild`` does from SQLite rows; ``save``; a fresh
  ``PostingsIndex(path).load()``; ``top(query, 100)``).
* ``qdrant-edge``: ``qdrant_edge`` (pip ``qdrant-edge-py==0.9.0``), a sparse-only shard (one sparse vector
  named ``lex``: ``EdgeSparseVectorParams(datatype=Float32, memory=Pinned)``, no IDF modifier, so the score is
  the plain dot product; ``wal_enabled=False`` unless ``--qdrant-wal``, since SQLite stays the truth and
  ``flush`` is the save; ``max_search_threads`` left to qdrant, which searches its segments in parallel,
  unless ``--qdrant-threads``; PostingsIndex uses one thread). Points are upserted in batches, then
  ``optimize()`` builds the immutable segments (timed as part of the build), ``flush()`` is the save,
  ``EdgeShard.load`` the reopen.

  Exactness: qdrant-edge has no switch to turn sparse pruning off. Per qdrant's source, the sparse index
  ignores ``SearchParams`` (its ``search`` takes ``_params``) and an unfiltered ``Nearest`` query always walks
  the inverted index; ``full_scan_threshold`` only matters for filtered searches. The walk scores posting
  lists in id blocks and, between blocks, skips parts of the longest list that cannot reach the current 100th
  score (meant to be rank-safe); it turns that pruning off when any query value is negative. So the queries
  run twice: ``pruned`` (the plain query, qdrant's default) and ``unpruned`` (the same query plus one token id
  that no document has, with weight -1: it adds nothing to any score but disables pruning; it also passes
  ``SearchParams(exact=True)`` in case a later version honours it). Both are checked against the truth.

Recall@100 is the fraction of the true top-100 ids returned; ``recall_at_100_ties_ok`` also counts a returned
id whose true score equals the 100th true score (within 1e-6 relative), since float32 sums may order ties at
the cut differently.

RSS growth is VmRSS after minus before each phase (``rss_build_mb``: the built index alive after its save;
``rss_open_mb``: after reopening and running the queries; for qdrant this includes the mmapped files it
touched), read after a gc and glibc ``malloc_trim``; freed memory is not always given back to the OS, so
take small numbers with care (``arrays_mb`` gives the PostingsIndex arrays' own size). Disk is the apparent
size of the saved files and the allocated size (qdrant's files are sparse, preallocated).

    python bench/sparse_engines.py                                   # 200,000 docs, both engines
    python bench/sparse_engines.py --docs 20000 --queries 50         # quick check
    python bench/sparse_engines.py --engines postings --work /tmp/sparse-engines
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desktop_app.core.backends.local.postings import PostingsIndex  # noqa: E402

VOCAB = 250_002  # BGE-M3 (XLM-RoBERTa) vocabulary size
LIMIT = 100
ZIPF_EXPONENT = 1.1
ZIPF_OFFSET = 10
BLOCK_DOCS = 20_000  # documents generated (and truth columns scored) per vectorised block
ADD_BATCH = 1 << 20  # postings per PostingsIndex.add call, as PostingsIndex.rebuild does
UPSERT_BATCH = 2_000  # points per qdrant-edge upsert
SPARSE_NAME = "lex"
ABSENT_TOKEN = VOCAB + 1_000_000  # a token id no document has: the negative weight that turns pruning off
TIE_TOLERANCE = 1e-6
DEFAULT_WORK = Path(__file__).resolve().parent / "work" / "sparse-engines"


# ----- measuring helpers -------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident set size of this process (VmRSS), in MB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def settle() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc), so the next RSS reading starts clean."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def disk_mb(path: Path) -> dict[str, float]:
    """Apparent and allocated size of a file or of every file under a folder, in MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    apparent = sum(p.stat().st_size for p in files)
    allocated = sum(p.stat().st_blocks * 512 for p in files)
    return {"disk_mb": round(apparent / 2**20, 1), "disk_allocated_mb": round(allocated / 2**20, 1),
            "files": len(files)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


# ----- synthetic data ----------------------------------------------------------------------------
@dataclass
class Rows:
    """Variable-length token lists in CSR form: row i is ``tokens[indptr[i]:indptr[i + 1]]``."""

    indptr: np.ndarray  # int64, len rows + 1
    tokens: np.ndarray  # int32 token ids
    weights: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.indptr[i], self.indptr[i + 1]
        return self.tokens[start:end], self.weights[start:end]

    def as_dict(self, i: int) -> dict[int, float]:
        tokens, weights = self.row(i)
        return dict(zip(tokens.tolist(), weights.tolist()))


class Vocabulary:
    """Zipf-like token frequencies; rank r (0 = most common) is token id ``token_of[r]``."""

    def __init__(self, rng: np.random.Generator) -> None:
        ranks = np.arange(VOCAB, dtype=np.float64)
        probabilities = 1.0 / (ranks + 1 + ZIPF_OFFSET) ** ZIPF_EXPONENT
        self.cumulative = np.cumsum(probabilities / probabilities.sum())
        self.token_of = rng.permutation(VOCAB).astype(np.int32)  # common tokens spread over the id range

    def draw(self, rng: np.random.Generator, rows: int, size: int) -> Rows:
        """``rows`` rows of up to ``size`` distinct tokens each (2x oversampled, duplicates dropped)."""
        ranks = np.minimum(np.searchsorted(self.cumulative, rng.random((rows, 2 * size))), VOCAB - 1)
        ranks.sort(axis=1)
        duplicate = np.zeros(ranks.shape, dtype=bool)
        duplicate[:, 1:] = ranks[:, 1:] == ranks[:, :-1]
        keys = rng.random(ranks.shape)
        keys[duplicate] = 2.0  # distinct tokens first, in random order
        order = np.argsort(keys, axis=1)[:, :size]
        picked = np.take_along_axis(ranks, order, axis=1)
        valid = ~np.take_along_axis(duplicate, order, axis=1)
        chosen = picked[valid]  # row-major: row by row
        indptr = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=indptr[1:])
        return Rows(indptr, self.token_of[chosen], self.weight(chosen, rng))

    @staticmethod
    def weight(ranks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """BGE-M3-like weights in about 0.02-0.3: rarer tokens (higher rank) weigh more."""
        rarity = np.log(ranks + 2.0) / np.log(VOCAB + 2.0)
        return (0.02 + 0.28 * rarity * rng.uniform(0.6, 1.0, len(ranks))).astype(np.float32)


def concatenate(parts: list[Rows]) -> Rows:
    offsets = np.cumsum([0] + [len(p.tokens) for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + offset for p, offset in zip(parts, offsets)])
    return Rows(indptr.astype(np.int64), np.concatenate([p.tokens for p in parts]),
                np.concatenate([p.weights for p in parts]))


def make_data(docs: int, queries: int, postings: int, query_tokens: int, seed: int) -> tuple[Rows, Rows]:
    """Seeded documents and queries (document ids are row numbers 0..docs-1)."""
    rng = np.random.default_rng(seed)
    vocabulary = Vocabulary(rng)
    blocks = [vocabulary.draw(rng, min(BLOCK_DOCS, docs - first), postings) for first in range(0, docs, BLOCK_DOCS)]
    return concatenate(blocks), vocabulary.draw(rng, queries, query_tokens)


# ----- brute-force truth -------------------------------------------------------------------------
def as_matrix(rows: Rows) -> sparse.csr_matrix:
    return sparse.csr_matrix((rows.weights.astype(np.float64), rows.tokens, rows.indptr), shape=(len(rows), VOCAB))


@dataclass
class Truth:
    ids: list[np.ndarray]  # per query: the exact top ids, best first
    cut: list[float]  # per query: the score at the cut (the last of ``ids``)


def brute_force(documents: sparse.csr_matrix, queries: sparse.csr_matrix, limit: int) -> Truth:
    """Exact top-``limit`` per query by a float64 sparse product, scored 32 queries at a time."""
    truth = Truth([], [])
    for first in range(0, queries.shape[0], 32):
        scores = (documents @ queries[first:first + 32].T).toarray()
        for column in scores.T:
            positive = np.flatnonzero(column > 0)
            if len(positive) > limit:
                positive = positive[np.argpartition(-column[positive], limit - 1)[:limit]]
            best = positive[np.lexsort((positive, -column[positive]))]
            truth.ids.append(best)
            truth.cut.append(float(column[best[-1]]) if len(best) else 0.0)
    return truth


def recall(found: list[list[int]], truth: Truth, documents: sparse.csr_matrix,
           queries: sparse.csr_matrix) -> dict[str, float]:
    """Mean recall@limit of the returned ids, strict and with ties at the cut counted as found."""
    strict, tolerant = [], []
    for q, ids in enumerate(found):
        expected = truth.ids[q]
        if not len(expected):
            continue
        strict.append(len(set(ids) & set(expected.tolist())) / len(expected))
        returned = np.array(ids[: len(expected)], dtype=np.int64)
        true_scores = (documents[returned] @ queries[q].T).toarray().ravel() if len(returned) else np.zeros(0)
        good = np.count_nonzero(true_scores >= truth.cut[q] * (1 - TIE_TOLERANCE))
        tolerant.append(min(good, len(expected)) / len(expected))
    return {"recall_at_100": round(float(np.mean(strict)), 5),
            "recall_at_100_ties_ok": round(float(np.mean(tolerant)), 5),
            "queries_below_full_recall": int(sum(r < 1 for r in strict))}


def latencies(search: Callable[[int], list[int]], queries: int) -> tuple[dict[str, float], list[list[int]]]:
    """Run query 0 once as warm-up, then every query timed; p50/p95 in ms and the returned ids."""
    search(0)
    found, times = [], []
    for q in range(queries):
        started = time.perf_counter()
        found.append(search(q))
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(times, 0.5), 2), "p95_ms": round(percentile(times, 0.95), 2),
            "mean_ms": round(statistics.fmean(times), 2), "max_ms": round(max(times), 2)}, found


# ----- engine: PostingsIndex ---------------------------------------------------------------------
def posting_batches(docs: Rows) -> Iterator[list[tuple[int, int, float]]]:
    """(chunk id, token id, weight) tuples, ``ADD_BATCH`` at a time (what SQLite rows look like)."""
    ids = np.repeat(np.arange(len(docs), dtype=np.int64), np.diff(docs.indptr))
    for first in range(0, len(ids), ADD_BATCH):
        part = slice(first, first + ADD_BATCH)
        yield list(zip(ids[part].tolist(), docs.tokens[part].tolist(), docs.weights[part].tolist()))


def run_postings(docs: Rows, queries: Rows, work: Path) -> tuple[dict, list[list[int]]]:
    path = work / "postings.npz"
    path.unlink(missing_ok=True)
    settle()
    before = rss_mb()
    index = PostingsIndex(path)
    with Timer() as build:
        for batch in posting_batches(docs):
            index.add(batch)
    with Timer() as save:
        index.save()
    result = {"build_s": round(build.seconds, 2), "save_s": round(save.seconds, 2),
              "rss_build_mb": round(rss_mb() - before), "postings": index.postings}
    del index
    settle()
    before = rss_mb()
    with Timer() as reopen:
        index = PostingsIndex(path)
        loaded = index.load()
    query_dicts = [queries.as_dict(q) for q in range(len(queries))]
    timing, found = latencies(lambda q: [cid for cid, _ in index.top(query_dicts[q], LIMIT)], len(queries))
    arrays = sum(getattr(index, name).nbytes for name in ("indptr", "ids", "weights", "deleted"))
    result.update({"load_s": round(reopen.seconds, 3), "loaded": loaded, **timing,
                   "rss_open_mb": round(rss_mb() - before), "arrays_mb": round(arrays / 2**20), **disk_mb(path)})
    return result, found


# ----- engine: qdrant-edge -----------------------------------------------------------------------
def qdrant_config(qe: object, wal: bool, threads: int | None) -> object:
    params = qe.EdgeSparseVectorParams(datatype=qe.VectorStorageDatatype.Float32, memory=qe.Memory.Pinned)
    return qe.EdgeConfig(sparse_vectors={SPARSE_NAME: params}, wal_enabled=wal, max_search_threads=threads)


def qdrant_upsert(qe: object, shard: object, docs: Rows) -> None:
    for first in range(0, len(docs), UPSERT_BATCH):
        points = []
        for doc in range(first, min(first + UPSERT_BATCH, len(docs))):
            tokens, weights = docs.row(doc)
            points.append(qe.Point(doc, {SPARSE_NAME: qe.SparseVector(tokens.tolist(), weights.tolist())}))
        shard.update(qe.UpdateOperation.upsert_points(points))


def qdrant_searcher(qe: object, shard: object, queries: Rows, unpruned: bool) -> Callable[[int], list[int]]:
    """A function query number -> ids, best first; ``unpruned`` adds the negative absent token."""
    params = qe.SearchParams(exact=True) if unpruned else None
    requests = []
    for q in range(len(queries)):
        tokens, weights = (part.tolist() for part in queries.row(q))
        if unpruned:
            tokens, weights = tokens + [ABSENT_TOKEN], weights + [-1.0]
        nearest = qe.Query.Nearest(qe.SparseVector(tokens, weights), using=SPARSE_NAME)
        requests.append(qe.QueryRequest(limit=LIMIT, query=nearest, with_payload=False, with_vector=False,
                                        params=params))
    return lambda q: [point.id for point in shard.query(requests[q])]


def run_qdrant(docs: Rows, queries: Rows, work: Path, wal: bool,
               threads: int | None) -> tuple[dict, dict[str, list[list[int]]]]:
    try:
        import qdrant_edge as qe
    except ImportError as error:
        return {"skipped": f"qdrant_edge cannot be imported ({error}); pip install qdrant-edge-py==0.9.0"}, {}
    path = work / "qdrant-edge"
    shutil.rmtree(path, ignore_errors=True)
    settle()
    before = rss_mb()
    shard = qe.EdgeShard.create(str(path), qdrant_config(qe, wal, threads))
    with Timer() as upsert:
        qdrant_upsert(qe, shard, docs)
    with Timer() as optimize:
        optimized = shard.optimize()
    with Timer() as flush:
        shard.flush()
    info = shard.info()
    result = {"build_s": round(upsert.seconds + optimize.seconds, 2), "upsert_s": round(upsert.seconds, 2),
              "optimize_s": round(optimize.seconds, 2), "optimized": optimized, "save_s": round(flush.seconds, 2),
              "rss_build_mb": round(rss_mb() - before), "points": info.points_count,
              "segments": info.segments_count, "wal_enabled": wal,
              "max_search_threads": threads if threads else "default (from the CPU count)"}
    shard.close()
    del shard
    settle()
    before = rss_mb()
    with Timer() as reopen:
        shard = qe.EdgeShard.load(str(path))
    result["load_s"] = round(reopen.seconds, 3)
    found = {}
    for mode, unpruned in (("pruned", False), ("unpruned", True)):
        result[mode], found[mode] = latencies(qdrant_searcher(qe, shard, queries, unpruned), len(queries))
    result.update({"rss_open_mb": round(rss_mb() - before), **disk_mb(path),
                   "version": qdrant_version()})
    shard.close()
    return result, found


def qdrant_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qdrant-edge-py")
    except PackageNotFoundError:
        return "unknown"


def data_summary(docs: Rows, queries: Rows) -> dict[str, float]:
    """Sizes of the synthetic data, and how many postings a query walks (sum of its tokens' frequencies)."""
    frequency = np.bincount(docs.tokens, minlength=VOCAB)
    walked = [int(frequency[queries.row(q)[0]].sum()) for q in range(len(queries))]
    return {"docs": len(docs), "queries": len(queries), "vocab": VOCAB, "postings": len(docs.tokens),
            "mean_tokens_per_doc": round(len(docs.tokens) / max(len(docs), 1), 2),
            "mean_tokens_per_query": round(len(queries.tokens) / max(len(queries), 1), 2),
            "distinct_tokens_used": int(np.count_nonzero(frequency)),
            "postings_per_query_p50": int(np.median(walked)) if walked else 0,
            "postings_per_query_max": max(walked, default=0)}


# ----- main --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--postings", type=int, default=50, help="distinct tokens per document")
    parser.add_argument("--query-tokens", type=int, default=12)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--engines", default="postings,qdrant-edge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--qdrant-wal", action="store_true", help="keep qdrant-edge's write-ahead log on")
    parser.add_argument("--qdrant-threads", type=int, default=None,
                        help="qdrant-edge max_search_threads (default: its own, from the CPU count)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = set(engines) - {"postings", "qdrant-edge"}
    if unknown:
        raise SystemExit(f"unknown engines: {', '.join(sorted(unknown))}")
    args.work.mkdir(parents=True, exist_ok=True)
    with Timer() as generate:
        docs, queries = make_data(args.docs, args.queries, args.postings, args.query_tokens, args.seed)
    with Timer() as brute:
        documents, query_matrix = as_matrix(docs), as_matrix(queries)
        truth = brute_force(documents, query_matrix, LIMIT)
    report: dict = {
        "data": {**data_summary(docs, queries), "seed": args.seed},
        "generate_s": round(generate.seconds, 2), "brute_force_s": round(brute.seconds, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "engines": {},
    }
    for engine in engines:
        if engine == "postings":
            result, found = run_postings(docs, queries, args.work)
            result.update(recall(found, truth, documents, query_matrix))
        else:
            result, found_by_mode = run_qdrant(docs, queries, args.work, args.qdrant_wal, args.qdrant_threads)
            for mode, found in found_by_mode.items():
                result[mode].update(recall(found, truth, documents, query_matrix))
        report["engines"][engine] = result
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
