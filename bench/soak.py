"""Soak: several processes on one index for minutes, with churn and SIGKILLs; the end equals a clean rebuild.

- a long-lived ``desktop-search watch A`` (indexing and watching, like the window), SIGKILLed and
  restarted now and then;
- a "terminal" running ``desktop-search index``/``remove`` on folders B and C in turn (each waits
  for the writer lock), some of them SIGKILLed mid-run;
- searcher threads in this process (each its own engine: a reader) searching all the time;
- files created, changed, renamed and deleted at random in A, B and C;
- a "second writer" in this process taking the writer lock every second and letting it go at
  once: how long it waits is how long any writer waits beside the others (stage 2 takes the lock a
  batch at a time, so no writer waits for a whole encoding stage).

At the end the churn stops, one ``index A B C`` brings everything up to date, and the index is
compared with a clean rebuild of the final tree: files and chunk counts, every chunk's dense vector
and lexical weights (bit for bit: on the CPU a text's vectors do not depend on what it was batched with), and the
top-10 of a query set. Exit 1 on any difference or any failed search.

    .venv/bin/python bench/soak.py [--seconds 180] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop_app.core.storage.store import Store

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "work" / "soak"
LITE_MODEL = REPO / "models" / "bge-m3-lite"
TOPICS = {
    "wing": "wing stall lift airfoil angle attack boundary layer separation",
    "bread": "sourdough bread starter oven crust flour hydration",
    "coffee": "espresso grind pressure extraction crema roast beans",
    "garden": "tomato seedlings compost watering soil mulch greenhouse",
    "rail": "locomotive timetable signal track gauge freight station",
    "music": "violin sonata tempo orchestra rehearsal conductor score",
}
QUERIES = ["why do wings stall", "sourdough starter", "espresso extraction pressure", "compost for tomatoes",
           "freight trains and signals", "orchestra rehearsal tempo"]


def env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", DESKTOP_SEARCH_LITE_MODEL=str(LITE_MODEL),
                DESKTOP_SEARCH_DEVICE="cpu", TOKENIZERS_PARALLELISM="false")


def cli(*args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "desktop_app", *args], env=env(), cwd=REPO, **popen)


def text_for(rng: random.Random) -> str:
    topic = rng.choice(list(TOPICS))
    words = TOPICS[topic].split()
    return " ".join(" ".join(rng.sample(words, 5)).capitalize() + "." for _ in range(rng.randint(3, 40)))


class Churn:
    """Creates, changes, renames and deletes files at random in the given folders."""

    def __init__(self, folders: list[Path], rng: random.Random) -> None:
        self.folders, self.rng, self.count = folders, rng, 0

    def step(self) -> None:
        folder = self.rng.choice(self.folders)
        files = sorted(folder.glob("*.txt"))
        action = self.rng.choice(["create", "create", "change", "rename", "delete"] if files else ["create"])
        if action == "create":
            (folder / f"n{self.rng.randrange(10**6)}.txt").write_text(text_for(self.rng))
        elif action == "change":
            self.rng.choice(files).write_text(text_for(self.rng))
        elif action == "rename":
            source = self.rng.choice(files)
            source.rename(folder / f"r{self.rng.randrange(10**6)}.txt")
        elif len(files) > 3:
            self.rng.choice(files).unlink()
        self.count += 1


class Searchers:
    """Threads that search all the time, each through an engine of its own (a reading process's view)."""

    def __init__(self, index: Path, threads: int) -> None:
        self.index, self.stop = index, threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, number: int) -> None:
        from desktop_app.core.config import Settings
        from desktop_app.core.engine import Engine

        engine = None
        while engine is None and not self.stop.is_set():
            try:
                engine = Engine.open(Settings.from_env(env(), index_dir=self.index))
            except Exception:  # noqa: BLE001 - the first writer may not have made the index yet
                time.sleep(0.5)
        rng = random.Random(number)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                # A number no file holds makes each query new: the engine keeps answers until the index
                # changes, and kept answers (0.0 ms) would stand in for the searches this measures.
                query = f"{rng.choice(QUERIES)} {rng.randrange(10**9)}"
                engine.search(query, k=10, mode=rng.choice(["hybrid", "dense", "keyword"]))
                self.latencies.append(time.perf_counter() - started)
            except Exception as error:  # noqa: BLE001 - every failure is counted and shown
                self.failures.append(f"{error.__class__.__name__}: {error}")
        if engine is not None:
            engine.close()


def kill(process: subprocess.Popen) -> bool:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
    return False


class LockProbe:
    """Takes the writer lock every ``every_s`` and lets it go; records how long each wait was."""

    def __init__(self, index: Path, every_s: float = 1.0) -> None:
        self.index, self.every_s = index, every_s
        self.waits: list[float] = []
        self.holders: list[str] = []  # who held the lock at the start of each wait over a second
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="lock-probe", daemon=True)

    def run(self) -> None:
        from desktop_app.core.storage.lock import WriterLock

        while not self.stop.wait(self.every_s):
            if not self.index.is_dir():  # the watcher makes it in its first seconds; a lock refuses a missing folder
                continue
            started, told = time.monotonic(), []
            with WriterLock(self.index, purpose="soak lock probe", on_wait=told.append):
                self.waits.append(time.monotonic() - started)
            if self.waits[-1] > 1.0 and told:
                self.holders.append(re.sub(r"pid \d+, |, since .*\)", "", told[0]))


def encodings(store: Store) -> dict[tuple[str, int, int], tuple[bytes, dict[int, float]]]:
    """Each chunk, by its file, page and first character: its dense vector's bytes and its lexical weights."""
    ids = store.all_chunk_ids().tolist()
    dense = store.dense_for(ids)
    return {(os.path.relpath(row.path, WORK / "tree"), row.page, row.start):
            (dense[chunk].tobytes() if chunk in dense else b"", store.sparse_of(chunk))
            for chunk, row in store.chunk_rows(ids).items()}


def snapshot(index: Path) -> dict[str, object]:
    """Files with their chunk counts, chunk and vector counts, each chunk's encoding, the top-10 paths of each
    query."""
    from desktop_app.core.config import Settings
    from desktop_app.core.engine import Engine
    from desktop_app.core.storage.folder import DB_NAME
    from desktop_app.core.storage.store import Store

    engine = Engine.open(Settings.from_env(env(), index_dir=index))
    store = Store(index / DB_NAME)  # the file records as SQLite holds them, hashes included
    try:
        status = engine.status()
        files = {}
        for root in status["roots"]:
            for path, record in store.files_under(root["path"]).items():
                files[os.path.relpath(path, WORK / "tree")] = (record.status, record.sha256)
        tops = {q: [os.path.relpath(h.path, WORK / "tree") for h in engine.search(q, k=10).hits] for q in QUERIES}
        return {"files": files, "chunks": status["chunks"], "vectors": status["vectors"],
                "repaired": status["repaired"], "encodings": encodings(store), "top10": tops}
    finally:
        store.close()
        engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--searchers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    shutil.rmtree(WORK, ignore_errors=True)
    tree, index, clean = WORK / "tree", WORK / "index", WORK / "clean"
    folders = {name: tree / name for name in "ABC"}
    for folder in folders.values():
        folder.mkdir(parents=True)
        for i in range(15):
            (folder / f"f{i:03d}.txt").write_text(text_for(rng))
    logs = open(WORK / "children.log", "wb")  # noqa: SIM115 - open for the whole run
    watch = cli("watch", str(folders["A"]), "--index", str(index), stdout=logs, stderr=logs)
    searchers = Searchers(index, args.searchers)
    for thread in searchers.threads:
        thread.start()
    probe = LockProbe(index)
    probe.thread.start()
    churn = Churn(list(folders.values()), rng)
    kills = {"watch": 0, "terminal": 0}
    terminal: subprocess.Popen | None = None
    kill_terminal_at: float | None = None
    plan = [("index", "B"), ("index", "C"), ("remove", "C"), ("index", "C"), ("remove", "B"), ("index", "B")]
    step, started = 0, time.monotonic()
    next_watch_kill = started + rng.uniform(20, 40)
    while time.monotonic() - started < args.seconds:
        churn.step()
        if terminal is None or terminal.poll() is not None:
            command, name = plan[step % len(plan)]
            step += 1
            terminal = cli(command, str(folders[name]), "--index", str(index), stdout=logs, stderr=logs)
            kill_terminal_at = time.monotonic() + rng.uniform(1, 6) if rng.random() < 0.25 else None
        if kill_terminal_at is not None and time.monotonic() > kill_terminal_at:
            kills["terminal"] += kill(terminal)
            kill_terminal_at = None
        if time.monotonic() > next_watch_kill:
            kills["watch"] += kill(watch)
            watch = cli("watch", "--index", str(index), stdout=logs, stderr=logs)
            next_watch_kill = time.monotonic() + rng.uniform(20, 40)
        time.sleep(rng.uniform(0.05, 0.4))
    probe.stop.set()
    probe.thread.join()
    if terminal is not None:
        terminal.wait()
    time.sleep(3)  # the watcher's last batch
    final = cli("index", *(str(f) for f in folders.values()), "--index", str(index), stdout=logs, stderr=logs)
    final.wait()
    time.sleep(3)
    kill(watch)
    searchers.stop.set()
    for thread in searchers.threads:
        thread.join()
    rebuilt = cli("index", *(str(f) for f in folders.values()), "--index", str(clean), stdout=logs, stderr=logs)
    rebuilt.wait()
    soaked, fresh = snapshot(index), snapshot(clean)
    latencies = sorted(searchers.latencies)
    report = {
        "seconds": args.seconds, "searches": len(latencies), "search_failures": len(searchers.failures),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1) if latencies else None,
        "files_churned": churn.count, "kills": kills, "terminal_runs": step,
        "lock_waits": len(probe.waits), "lock_wait_max_s": round(max(probe.waits, default=0.0), 2),
        "lock_wait_p95_s": round(sorted(probe.waits)[int(len(probe.waits) * 0.95)], 2) if probe.waits else None,
        "lock_holders_of_waits_over_1s": dict(Counter(probe.holders)),
        "files": len(soaked["files"]), "chunks": soaked["chunks"], "vectors": soaked["vectors"],
        "repaired_at_open": soaked["repaired"],
        "equal_files": soaked["files"] == fresh["files"], "equal_chunks": soaked["chunks"] == fresh["chunks"],
        "vectors_match_chunks": soaked["vectors"] == soaked["chunks"],
        "equal_encodings": soaked["encodings"] == fresh["encodings"],
        "equal_top10": soaked["top10"] == fresh["top10"],
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    for failure in searchers.failures[:5]:
        print(f"soak: search failed: {failure}", file=sys.stderr)
    ok = (not searchers.failures and report["equal_files"] and report["equal_chunks"]
          and report["vectors_match_chunks"] and report["equal_encodings"] and report["equal_top10"])
    if not ok:
        print("soak: the soaked index differs from a clean rebuild or a search failed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
