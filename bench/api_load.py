"""Load on the HTTP API: many concurrent clients of mixed searches against a real `desktop-search serve`.

Cranfield's 1,400 abstracts are indexed with the lite model through the CLI (once; later runs find
them unchanged), a server is started on a free port, and ``--clients`` clients (asyncio + httpx, one
connection each) send searches back to back for ``--seconds``: hybrid POSTs, the quick GET, dense,
keyword, and hybrid with a file-name filter, drawn from Cranfield's 225 queries (seeded). Reports
requests/s, latency p50/p95/p99/max (client side, so queueing included), busy answers (503 with
Retry-After, which the client obeys) and errors; exits 1 on any error. The server's answers to
repeated searches are kept while the index is unchanged: ``--unique`` makes every query new, so
each one is searched. ``--indexing`` has the server index CACM (3,204 documents) through the API
meanwhile and reports the encoder's pace; ``--clients 0 --indexing`` gives its pace alone.

    python bench/api_load.py                          # 50 clients, 60 s
    python bench/api_load.py --unique                 # the same, no search repeated
    python bench/api_load.py --clients 1 --seconds 20 # one client: the latency without queueing
    python bench/api_load.py --clients 0 --indexing   # the indexing job alone, then beside 50 clients:
    python bench/api_load.py --indexing --unique
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from typing import NamedTuple

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


def start_server(work: Path, env: dict[str, str], window_ms: float | None) -> tuple[subprocess.Popen, str, str]:
    """A `desktop-search serve` on a free port (``window_ms``: the query batcher's collection window,
    to measure it); the process, its URL and its start-up line."""
    serve = ["serve", "--index", str(work / "index"), "--port", "0"]
    if window_ms is None:
        command = [sys.executable, "-m", "desktop_app", *serve]
    else:
        command = [sys.executable, "-c", "import sys; from desktop_app.core.model import query_batch; "
                   f"query_batch.WINDOW_S = {window_ms / 1000!r}; from desktop_app.cli import main; "
                   "sys.exit(main(sys.argv[1:]))", *serve]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
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


def connect(url: str, token: str, connections: int = 1) -> httpx.AsyncClient:
    """An HTTP client of ``connections`` keep-alive connections. Each search client has its own: with one
    pool shared by 200 clients the load generator used a whole core (23 ms of CPU a request, against 3 ms
    with a pool each), and its own delays made most of the tail it measured."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=120)


class Answer(NamedTuple):
    kind: str
    ms: float  # as the client met it
    outcome: str  # ok, busy or error
    server_ms: float | None  # as the server held it (its Server-Timing header), for answered searches


def server_ms(response: httpx.Response) -> float | None:
    """The ``dur`` of the server's ``Server-Timing: app;dur=...`` header."""
    timing = response.headers.get("server-timing", "")
    return float(timing.split("dur=", 1)[1]) if "dur=" in timing else None


async def searches(number: int, api: httpx.AsyncClient, queries: list[str], deadline: float,
                   results: list[Answer], seed: int, unique: bool) -> None:
    """Searches back to back on a pool of its own; a 503 with Retry-After is a "busy" answer: the client
    waits as told and goes on (what a well-behaved client does), and it is counted apart from errors.
    ``unique`` adds a number of its own to every query, so no search repeats."""
    draw = random.Random(seed * 1000 + number)
    kinds, shares = zip(*MIX)
    asked = 0
    while time.monotonic() < deadline:
        kind = draw.choices(kinds, shares)[0]
        asked += 1
        query = draw.choice(queries) + (f" {number}x{asked}" if unique else "")
        method, path, payload = request_for(kind, query)
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
        results.append(Answer(kind, (time.perf_counter() - started) * 1000, outcome,
                              server_ms(response) if outcome == "ok" else None))
        if busy:  # as told, but not past the run's end: a sleeping client would stretch the run's seconds
            await asyncio.sleep(min(float(response.headers["retry-after"]), max(0.0, deadline - time.monotonic())))


async def until_model_loaded(api: httpx.AsyncClient, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while not (await api.get("/v1/status")).json().get("model_loaded"):
        if time.monotonic() > deadline:
            raise SystemExit("api_load: the server did not load its model in time")
        await asyncio.sleep(0.2)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux's /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def loop_lag(deadline: float, lags: list[float], every_s: float = 0.05) -> None:
    """Until ``deadline``: how much later than asked a timer of this event loop fires, in ms."""
    while time.monotonic() < deadline:
        asked = time.perf_counter()
        await asyncio.sleep(every_s)
        lags.append((time.perf_counter() - asked - every_s) * 1000)


async def load(url: str, token: str, clients: int, seconds: float, queries: list[str], seed: int, unique: bool,
               indexing: Path | None = None, server_pid: int | None = None
               ) -> tuple[list[Answer], float, dict | None, dict[str, float | None], list[float]]:
    """Every answer, the seconds from the first search to the last answer, (with ``indexing``, a folder
    the server indexes meanwhile) how far that job got, the CPU seconds the server and this load
    generator used meanwhile (on a shared machine the clients' own share is a real part of what the
    server can get), and how late this process's event loop woke its timers (ms): a late loop reads
    answers late, and that is not the server's time."""
    results: list[Answer] = []
    async with contextlib.AsyncExitStack() as stack, connect(url, token, connections=2) as api:  # set-up, job
        await until_model_loaded(api)  # searches are answered by words until then: another load
        for query in queries[:5]:  # warm-up, not counted
            await api.post("/v1/search", json={"query": query})
        job = None
        if indexing is not None:
            job = (await api.post("/v1/index", json={"paths": [str(indexing)]})).json()["id"]
        # Every client's pool before the clock starts: making one costs 35 ms (httpx loads the CA
        # certificates), and 200 made while the first clients searched stalled this loop for 6-7 s,
        # which their answers' latency took for the server's.
        pools = [await stack.enter_async_context(connect(url, token)) for _ in range(clients)]
        started = time.monotonic()
        server_cpu, client_cpu = cpu_seconds(server_pid) if server_pid else None, time.process_time()
        finished: list[float] = []
        lags: list[float] = []
        deadline = started + seconds
        await asyncio.gather(loop_lag(deadline, lags),
                             *(searches(n, pool, queries, deadline, results, seed, unique)
                               for n, pool in enumerate(pools)),
                             *([until_done(api, job, deadline, finished)] if job is not None else []))
        elapsed = time.monotonic() - started
        server_now = cpu_seconds(server_pid) if server_pid else None
        cpu = {"server": None if server_cpu is None or server_now is None else server_now - server_cpu,
               "client": time.process_time() - client_cpu}
        done = None
        if job is not None:
            state = await job_state(api, job)
            progress = state.get("progress") or {}
            took = (finished[0] if finished else time.monotonic()) - started
            done = {"state": state["state"], "seconds": round(took, 1), "files_done": progress.get("files_done"),
                    "tokens_done": progress.get("tokens_done"),
                    "tokens_per_s": round((progress.get("tokens_done") or 0) / took, 1)}
            await api.delete(f"/v1/jobs/{job}")
        return results, elapsed, done, cpu, lags


async def job_state(api: httpx.AsyncClient, job: str) -> dict:
    """The job's JSON, asked again after the wait a busy server's 503 names (its line is shared with searches)."""
    while True:
        response = await api.get(f"/v1/jobs/{job}")
        if response.status_code != 503:
            return response.json()
        await asyncio.sleep(float(response.headers.get("retry-after", 1)))


async def until_done(api: httpx.AsyncClient, job: str, deadline: float, finished: list[float]) -> None:
    """Note when the indexing job ``job`` ended (if before ``deadline``)."""
    while time.monotonic() < deadline:
        if (await job_state(api, job))["state"] not in ("queued", "running"):
            finished.append(time.monotonic())
            return
        await asyncio.sleep(0.25)


def indexing_folder(work: Path) -> Path:
    """CACM's 3,204 documents as files in a folder of their own, for an indexing job beside the searches."""
    folder = work / "indexing" / "cacm"
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, text in testsets.load(testsets.DATASETS / "cacm").documents.items():
        path = folder / f"{doc_id}.txt"
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    return folder


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarise(results: list[Answer], seconds: float) -> dict:
    """Latency of the answered searches (busy answers are counted, not timed: they come at once), as the
    clients met it and as the server held it (its Server-Timing: the rest is the network and the clients)."""
    answered = [answer for answer in results if answer.outcome != "busy"]
    latencies = [answer.ms for answer in answered] or [0.0]
    held = [answer.server_ms for answer in answered if answer.server_ms is not None] or [0.0]
    by_kind = {}
    for kind, _ in MIX:
        mine = [answer.ms for answer in answered if answer.kind == kind]
        if mine:
            by_kind[kind] = {"requests": len(mine), "p50_ms": round(statistics.median(mine), 1),
                             "p95_ms": round(percentile(mine, 0.95), 1)}
    return {"requests": len(answered), "requests_per_s": round(len(answered) / seconds, 1),
            "busy_503": sum(1 for answer in results if answer.outcome == "busy"),
            "p50_ms": round(statistics.median(latencies), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1), "max_ms": round(max(latencies), 1),
            "server_held_ms": {"p50": round(statistics.median(held), 1), "p95": round(percentile(held, 0.95), 1),
                               "p99": round(percentile(held, 0.99), 1), "max": round(max(held), 1)},
            "errors": sum(1 for answer in results if answer.outcome == "error"), "by_kind": by_kind}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they search (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the query and kind draws")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="documents and index (default "
                        "bench/work/api_load)")
    parser.add_argument("--unique", action="store_true", help="no query repeats (a number added to each)")
    parser.add_argument("--window-ms", type=float, help="the server's query batching window (default: its own)")
    parser.add_argument("--indexing", action="store_true", help="the server indexes CACM meanwhile (removed "
                        "again afterwards); with --clients 0 that job alone, for its own pace")
    args = parser.parse_args(argv)
    collection = testsets.load(testsets.DATASETS / "cranfield")
    token = secrets.token_urlsafe(24)
    env = environment(token)
    report = build_index(collection, args.work.resolve(), env)
    work = args.work.resolve()
    indexing = indexing_folder(work) if args.indexing else None
    process, url, banner = start_server(work, env, args.window_ms)
    try:
        queries = [text.replace('"', " ") for _, text in collection.queries]
        results, elapsed, indexed, cpu, lags = asyncio.run(load(url, token, args.clients, args.seconds, queries,
                                                          args.seed, args.unique, indexing, process.pid))
    finally:
        process.terminate()
        process.wait(60)
        if indexing is not None:  # the next run starts from Cranfield alone again
            subprocess.run([sys.executable, "-m", "desktop_app", "remove", str(indexing), "--index",
                            str(work / "index")], env=env, stdout=subprocess.DEVNULL, check=True)
    summary = {"clients": args.clients, "unique": args.unique, "window_ms": args.window_ms,
               "seconds": round(elapsed, 1), "indexing": indexed, "documents": len(collection.documents),
               "indexed_now": report["added"] + report["updated"], "server": banner, **summarise(results, elapsed),
               "client_loop_late_ms": {"p50": round(statistics.median(lags), 1),
                                       "p95": round(percentile(lags, 0.95), 1), "max": round(max(lags), 1)}}
    answered = summary["requests"] + summary["busy_503"]
    summary["cpu_ms_per_request"] = {who: None if used is None or not answered else round(1000 * used / answered, 2)
                                     for who, used in cpu.items()}
    print(json.dumps(summary, indent=2))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
