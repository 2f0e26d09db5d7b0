"""Load on the HTTP API: many concurrent clients of mixed searches against a real `desktop-search serve`.

Cranfield's 1,400 abstracts are indexed with the lite model through the CLI (once; later runs find
them unchanged), a server is started on a free port, and ``--clients`` clients (asyncio + httpx, one
connection each) send searches back to back for ``--seconds``: hybrid POSTs, the quick GET, dense,
keyword, and hybrid with a file-name filter, drawn from Cranfield's 225 queries (seeded). Reports
requests/s, latency p50/p95/p99/max (client side, so queueing included), busy answers (503 with
Retry-After, which the client obeys) and errors; exits 1 on any error.

    python bench/api_load.py                          # 50 clients, 60 s
    python bench/api_load.py --clients 1 --seconds 20 # one client: the latency without queueing
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import testsets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LITE_MODEL = REPO / "models" / "bge-m3-lite"
DEFAULT_WORK = REPO / "bench" / "work" / "api_load"
# (kind, share of the requests): what a RAG pipeline, a script and the search page ask for.
MIX = (("hybrid", 0.50), ("get", 0.15), ("dense", 0.10), ("keyword", 0.15), ("filtered", 0.10))


def environment(token: str) -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", DESKTOP_SEARCH_MODEL=str(LITE_MODEL), DESKTOP_SEARCH_DEVICE="cpu",
                DESKTOP_SEARCH_LITE_MODEL=str(LITE_MODEL), DESKTOP_SEARCH_API_TOKEN=token)


def build_index(collection: testsets.Collection, work: Path, env: dict[str, str]) -> dict:
    """Cranfield's documents as files, indexed (or found up to date) by the real CLI; its JSON report."""
    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for doc_id, text in collection.documents.items():
        path = docs / f"{doc_id}.txt"
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "desktop_app", "index", str(docs), "--index", str(work / "index"),
                           "--json"], env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout)


def start_server(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    """A `desktop-search serve` on a free port; the process, its URL and its start-up line."""
    process = subprocess.Popen([sys.executable, "-m", "desktop_app", "serve", "--index", str(work / "index"),
                                "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
    banner = process.stdout.readline()
    found = re.search(r" at (http://\S+/)$", banner.strip())
    if not found:
        process.kill()
        raise SystemExit(f"api_load: the server did not start: {banner!r}")
    return process, found.group(1), banner.strip()


def request_for(kind: str, query: str) -> tuple[str, str, dict]:
    """(method, path, body or params) of one search of ``kind``."""
    if kind == "get":
        return "GET", "/v1/search", {"q": query, "k": 10}
    body: dict = {"query": query, "k": 10}
    if kind in ("dense", "keyword"):
        body["mode"] = kind
    if kind == "filtered":
        body["filters"] = {"name": "12"}  # 12.txt, 112.txt, 120-129.txt, ...: about 4% of the files
    return "POST", "/v1/search", body


async def client(number: int, api: httpx.AsyncClient, queries: list[str], deadline: float,
                 results: list[tuple[str, float, str]], seed: int) -> None:
    """Searches back to back; a 503 with Retry-After is a "busy" answer: the client waits as told and
    goes on (what a well-behaved client does), and it is counted apart from errors."""
    draw = random.Random(seed * 1000 + number)
    kinds, shares = zip(*MIX)
    while time.monotonic() < deadline:
        kind = draw.choices(kinds, shares)[0]
        method, path, payload = request_for(kind, draw.choice(queries))
        started = time.perf_counter()
        try:
            if method == "GET":
                response = await api.get(path, params=payload)
            else:
                response = await api.post(path, json=payload)
            busy = response.status_code == 503 and "retry-after" in response.headers
            outcome = "busy" if busy else "ok" if response.status_code == 200 and "hits" in response.json() else "error"
        except (httpx.HTTPError, ValueError):
            outcome, busy = "error", False
        results.append((kind, (time.perf_counter() - started) * 1000, outcome))
        if busy:
            await asyncio.sleep(float(response.headers["retry-after"]))


async def load(url: str, token: str, clients: int, seconds: float, queries: list[str],
               seed: int) -> list[tuple[str, float, str]]:
    results: list[tuple[str, float, str]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=120) as api:
        for query in queries[:5]:  # warm-up, not counted
            await api.post("/v1/search", json={"query": query})
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client(n, api, queries, deadline, results, seed) for n in range(clients)))
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarise(results: list[tuple[str, float, str]], seconds: float) -> dict:
    """Latency of the answered searches (busy answers are counted, not timed: they come at once)."""
    answered = [(kind, ms, outcome) for kind, ms, outcome in results if outcome != "busy"]
    latencies = [ms for _, ms, _ in answered] or [0.0]
    by_kind = {}
    for kind, _ in MIX:
        mine = [ms for k, ms, _ in answered if k == kind]
        if mine:
            by_kind[kind] = {"requests": len(mine), "p50_ms": round(statistics.median(mine), 1),
                             "p95_ms": round(percentile(mine, 0.95), 1)}
    return {"requests": len(answered), "requests_per_s": round(len(answered) / seconds, 1),
            "busy_503": sum(1 for _, _, outcome in results if outcome == "busy"),
            "p50_ms": round(statistics.median(latencies), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1), "max_ms": round(max(latencies), 1),
            "errors": sum(1 for _, _, outcome in results if outcome == "error"), "by_kind": by_kind}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they search (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the query and kind draws")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="documents and index (default "
                        "bench/work/api_load)")
    args = parser.parse_args(argv)
    collection = testsets.load(testsets.DATASETS / "cranfield")
    token = secrets.token_urlsafe(24)
    env = environment(token)
    report = build_index(collection, args.work.resolve(), env)
    process, url, banner = start_server(args.work.resolve(), env)
    try:
        queries = [text.replace('"', " ") for _, text in collection.queries]
        started = time.monotonic()
        results = asyncio.run(load(url, token, args.clients, args.seconds, queries, args.seed))
        elapsed = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(60)
    summary = {"clients": args.clients, "seconds": round(elapsed, 1), "documents": len(collection.documents),
               "indexed_now": report["added"] + report["updated"], "server": banner, **summarise(results, elapsed)}
    print(json.dumps(summary, indent=2))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
