"""Which fusion to ship: every candidate method scored offline on every collection.

Reads the indexes that ``quality.py`` built (``bench/work/quality/<collection>/index``),
computes each channel's exact score for every chunk and query once, then ranks with each
fusion method and weight setting as the app would (candidates: the union of each channel's
top ``CANDIDATES`` chunks) and prints nDCG@10 per collection. Weights are chosen on the
``--tune`` collection only; the others report how that choice carries over.

    .venv/bin/python bench/fusion_study.py [--tune cranfield]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import testsets
from quality import DEFAULT_WORK, NDCG_DEPTH, doc_id_of, mean, ndcg_at

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.backends.local.source import fts_query  # noqa: E402
from desktop_app.core.config import Settings
from desktop_app.core.model.encoder import Encoder
from desktop_app.core.model.resolve import resolve_recorded
from desktop_app.core.search.searcher import KEYWORD_DEPTH, QUERY_MAX_TOKENS

CANDIDATES = 400
CHANNELS = ("dense", "sparse", "keyword")


def channel_scores(collection: testsets.Collection, index_dir: Path) -> tuple[list[str], list[dict[str, np.ndarray]]]:
    """Doc id per chunk, and per judged query every channel's score for every chunk."""
    index = LocalIndex.open(index_dir)
    store = index.store
    settings = Settings.from_env()
    encoder = Encoder(resolve_recorded(index.model_info, settings), settings.device, settings.dtype)
    ids, matrix = zip(*store.iter_dense())
    ids, matrix = np.concatenate(ids), np.concatenate(matrix)
    position = {int(cid): i for i, cid in enumerate(ids)}
    rows = store.chunk_rows([int(c) for c in ids])
    docs = [doc_id_of(rows[int(c)].path) for c in ids]
    per_query = []
    for _, text in collection.judged_queries:
        text = text.replace('"', " ")  # as quality.py sends them: the collections' quotes are prose
        encoded = encoder.encode([text], QUERY_MAX_TOKENS)[0]
        sparse = np.zeros(len(ids))
        for cid, score in index.caches.postings.top(encoded.sparse, len(ids)):
            sparse[position[cid]] = score
        keyword = np.zeros(len(ids))
        query = fts_query(text)
        for cid, score in (store.keyword_top(query, KEYWORD_DEPTH) if query else []):
            keyword[position[cid]] = score
        per_query.append({"dense": matrix @ encoded.dense, "sparse": sparse, "keyword": keyword})
    index.close()
    return docs, per_query


def normalise(values: np.ndarray, method: str) -> np.ndarray:
    if method == "max":
        top = values.max()
        return values / top if top > 0 else values * 0
    if method == "minmax":
        low, high = values.min(), values.max()
        return (values - low) / (high - low) if high > low else values * 0
    if method == "zscore":
        spread = values.std()
        return (values - values.mean()) / spread if spread > 0 else values * 0
    if method == "rank":
        order = np.argsort(-values, kind="stable")
        ranks = np.empty(len(values))
        ranks[order] = np.arange(1, len(values) + 1)
        return 1.0 / (60 + ranks)
    if method == "raw":
        return values
    raise ValueError(method)


def fused_ranking(scores: dict[str, np.ndarray], weights: dict[str, float], method: str, docs: list[str]) -> list[str]:
    active = [c for c, w in weights.items() if w > 0]
    candidates = np.unique(np.concatenate([np.argsort(-scores[c])[:CANDIDATES] for c in active]))
    total = np.zeros(len(candidates))
    for channel in active:
        values = scores[channel][candidates]
        if method == "reference" and channel == "keyword":
            total += weights[channel] * normalise(values, "max")
        elif method == "reference":
            total += weights[channel] * values
        else:
            total += weights[channel] * normalise(values, method)
    order = candidates[np.argsort(-total, kind="stable")]
    seen: dict[str, None] = {}
    for i in order:
        seen.setdefault(docs[i])
        if len(seen) == NDCG_DEPTH:
            break
    return list(seen)


def evaluate(collection: testsets.Collection, docs: list[str], per_query: list[dict[str, np.ndarray]],
             weights: dict[str, float], method: str) -> float:
    return mean([ndcg_at(fused_ranking(scores, weights, method, docs), collection.qrels[qid])
                 for (qid, _), scores in zip(collection.judged_queries, per_query)])


def weight_grid(channels: tuple[str, ...]) -> list[dict[str, float]]:
    """Weights in steps of 0.1 summing to 1 over ``channels`` (others 0)."""
    grid = []
    for parts in itertools.product(range(11), repeat=len(channels)):
        if sum(parts) == 10:
            grid.append({c: (parts[channels.index(c)] / 10 if c in channels else 0.0) for c in CHANNELS})
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--tune", default="cranfield", help="the collection weights are chosen on")
    args = parser.parse_args(argv)
    data = {}
    for folder in testsets.discover():
        collection = testsets.load(folder)
        index_dir = args.work / collection.name / "index"
        if not index_dir.is_dir():
            print(f"fusion_study: no index for {collection.name}: run quality.py first", file=sys.stderr)
            return 1
        data[collection.name] = (collection, *channel_scores(collection, index_dir))
    names = list(data)
    print("| method | channels | weights (tuned on " + args.tune + ") | " + " | ".join(names) + " |")
    print("| --- | --- | --- |" + " --- |" * len(names))
    for channel in CHANNELS:
        weights = {c: float(c == channel) for c in CHANNELS}
        row = [evaluate(*data[n], weights, "raw") for n in names]
        print(f"| single | {channel} | - | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    for method in ("reference", "max", "minmax", "zscore", "rank"):
        for channels in (("dense", "keyword"), ("dense", "sparse"), ("dense", "sparse", "keyword")):
            grid = weight_grid(channels)
            tuned = max(grid, key=lambda w: evaluate(*data[args.tune], w, method))
            equal = {c: (1.0 / len(channels) if c in channels else 0.0) for c in CHANNELS}
            for label, weights in (("tuned", tuned), ("equal", equal)):
                row = [evaluate(*data[n], weights, method) for n in names]
                shown = ",".join(f"{weights[c]:.1f}" for c in channels)
                print(f"| {method} | {'+'.join(channels)} | {label} {shown} | " + " | ".join(f"{v:.3f}" for v in row)
                      + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
