"""Where one search's CPU goes: unique Cranfield searches in one process, no HTTP, timed and profiled.

Uses the index `api_load.py` builds (Cranfield with the lite model, ``bench/work/api_load/index``) and
its mix of searches (the quick GET counted as the hybrid search it is; dense, keyword, a file-name filter),
each query made unique so no kept answer is reused. Prints wall and CPU milliseconds per search;
``--profile`` adds cProfile's top functions by cumulative time (issue 23: how far a search is from
the 6 ms of CPU that 50 clients at p50 150 ms need on two cores); ``--forward`` adds the query's forward
pass alone, 1-64 queries at once (``Engine.embed``), the floor under any search that needs the model.

    python bench/api_load.py --clients 1 --seconds 5   # once, to build the index
    python bench/search_cpu.py --profile --forward
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import api_load  # noqa: E402
import testsets  # noqa: E402

from desktop_app.core import Engine, Settings  # noqa: E402

# api_load.py's mix, its quick GET counted as the hybrid search it is
MIX = tuple((("hybrid" if kind == "get" else kind), share) for kind, share in api_load.MIX)


def searcher(engine: Engine, queries: list[str], seed: int) -> Callable[[int], None]:
    """A function that runs the ``n``-th search of the mix, its query made unique by ``n``."""
    draw = random.Random(seed)
    kinds, shares = zip(*MIX)

    def search(n: int) -> None:
        kind = draw.choices(kinds, shares)[0]
        query = f"{draw.choice(queries)} {n}x{seed}"
        options: dict[str, object] = {"k": 10}
        if kind in ("dense", "keyword"):
            options["mode"] = kind
        if kind == "filtered":
            query += " name:12"
        engine.search(query, **options)

    return search


def forward_cost(engine: Engine, queries: list[str], seed: int, per_size: int = 384) -> dict[int, float]:
    """CPU milliseconds per query of the model's pass alone, 1, 4, 16 or 64 unique queries handed in at once
    (the encoder splits them into passes of one padded width, at most 32 a pass). ``per_size``: a multiple of 64."""
    draw, cost = random.Random(seed), {}
    for size in (1, 4, 16, 64):
        cpu = time.process_time()
        for first in range(0, per_size, size):
            engine.embed([f"{draw.choice(queries)} {first + n}x{seed}" for n in range(size)], sparse=False)
        cost[size] = (time.process_time() - cpu) / per_size * 1000
    return cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=api_load.DEFAULT_WORK / "index")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also profile as many searches again")
    parser.add_argument("--forward", action="store_true", help="also time the query's forward pass alone")
    args = parser.parse_args()
    if not (args.index / "index.sqlite3").is_file():
        raise SystemExit(f"search_cpu: no index at {args.index}: run bench/api_load.py once first")
    for name, value in (("HF_HUB_OFFLINE", "1"), ("DESKTOP_SEARCH_DEVICE", "cpu"),
                        ("DESKTOP_SEARCH_MODEL", str(api_load.LITE_MODEL))):
        os.environ.setdefault(name, value)
    settings = Settings.from_env(index_dir=args.index)
    engine = Engine.open(settings, load=True)
    try:
        queries = [text for _, text in testsets.load(testsets.DATASETS / "cranfield").queries]
        search = searcher(engine, queries, args.seed)
        for n in range(20):  # the model loaded, the caches built
            search(n)
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(args.searches):
            search(1_000 + n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{args.searches} searches: {wall / args.searches * 1000:.2f} ms wall, "
              f"{cpu / args.searches * 1000:.2f} ms CPU each ({os.cpu_count()} cores)")
        if args.forward:
            for size, ms in forward_cost(engine, queries, args.seed).items():
                print(f"forward pass alone, {size} queries at once: {ms:.2f} ms CPU a query")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: [search(1_000_000 + n) for n in range(args.searches)])
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
