"""Search over a mixed index: keyword and hybrid nDCG@10 when only part of the chunks have vectors.

Takes the fully encoded index that ``quality.py`` built for a collection, copies it, and takes the
vectors away from a random share of its chunks (they become pending, as after stage 1), then runs
the collection's questions (as written) through the real CLI in keyword and hybrid mode. A random
share stands for any stage-2 order, so the fusion rule is judged on its own (the mean over a few
draws, as one draw moves nDCG@10 by about 0.005); time_to_search.py measures the real order.

    .venv/bin/python bench/mixed_index.py [--collections cranfield,cacm] [--encoded 0,0.25,0.5,0.75,1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
from pathlib import Path

import quality
import testsets

WORK = quality.REPO / "bench" / "work" / "mixed_index"
CACHES = ("dense.hnsw", "sparse.npz", "keyword.npz")


def unencode(source: Path, target: Path, share_encoded: float, seed: int = 7) -> None:
    """``target``: a copy of the index at ``source`` where only ``share_encoded`` of the chunks keep vectors."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    for name in CACHES:  # rebuilt from SQLite at the next open
        (target / name).unlink(missing_ok=True)
    with sqlite3.connect(target / "index.sqlite3") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM chunks ORDER BY id")]
        taken = random.Random(seed).sample(ids, round(len(ids) * (1 - share_encoded)))
        conn.executemany("UPDATE chunks SET dense = x'' WHERE id = ?", [(i,) for i in taken])
        conn.executemany("DELETE FROM sparse WHERE chunk_id = ?", [(i,) for i in taken])
        conn.executemany("INSERT INTO pending(chunk_id, big, mtime_ns) VALUES (?, 0, 0)", [(i,) for i in taken])
        conn.execute("DELETE FROM meta WHERE key = 'vectors_state'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", default="cranfield,cacm")
    parser.add_argument("--encoded", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--seeds", default="7,8,9", help="which chunks keep vectors: the mean over these draws")
    args = parser.parse_args(argv)
    shares = [float(x) for x in args.encoded.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    results: dict[str, dict[str, dict[str, float]]] = {}
    worse = []
    for name in args.collections.split(","):
        collection = testsets.load(testsets.DATASETS / name)
        source = quality.DEFAULT_WORK / name / "index"
        if not (source / "index.sqlite3").exists():
            raise SystemExit(f"mixed_index: run bench/quality.py --collections {name} first (it builds {source})")
        queries = WORK / f"{name}-queries.tsv"
        queries.parent.mkdir(parents=True, exist_ok=True)
        quality.write_queries(collection.judged_queries, queries)
        for share in shares:
            draws = []
            for seed in seeds if 0 < share < 1 else seeds[:1]:
                index = WORK / f"{name}-{share:.2f}"
                unencode(source, index, share, seed)
                draws.append({mode: quality.evaluate(quality.search_mode(mode, queries, index), collection.qrels)
                              ["ndcg@10"] for mode in ("keyword", "hybrid")})
            scores = {mode: round(sum(d[mode] for d in draws) / len(draws), 4) for mode in ("keyword", "hybrid")}
            results.setdefault(name, {})[f"{share:.0%}"] = scores
            print(f"mixed_index: {name} {share:.0%} encoded: {scores}", file=sys.stderr)
            if scores["hybrid"] < scores["keyword"]:
                worse.append(f"{name} at {share:.0%}")
    print(json.dumps(results, indent=2))
    if worse:
        print(f"mixed_index: hybrid ranks below keyword alone: {', '.join(worse)}", file=sys.stderr)
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
