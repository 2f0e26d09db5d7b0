"""How soon a dropped folder is searchable: by its words, then by meaning.

A real `desktop-search index` process indexes the folder (Cranfield's abstracts as files, or any
folder by argument) while this process watches the index from outside, as a second app would:

- **words**: seconds from the start of `index` until every file is in the index and a keyword
  search from this process finds the last one (no model loaded here);
- **meaning**: seconds until every chunk has its vectors (nothing pending);
- with Cranfield, nDCG@10 of keyword and hybrid search at 25, 50, 75 and 100 % encoded. At 25 %
  and 75 % the indexer is frozen (SIGSTOP) while the questions run; at 50 % it is SIGKILLed and a
  second `index` run resumes the pending work, so the figures also show that a killed run loses
  nothing and re-reads nothing.

    .venv/bin/python bench/time_to_search.py [--model lite|sized|PATH] [--docs N] [--folder DIR]

``sized`` is bench/sized_model.py's BGE-M3-sized model (random weights: its times are real, its
rankings are not, so no nDCG is computed for it). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import quality
import sized_model
import testsets

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "work" / "time_to_search"
POLL_S = 0.05
CHECKPOINTS = (0.25, 0.5, 0.75)
KILLED_AT = 0.5


def model_path(name: str) -> Path:
    if name == "lite":
        return quality.LITE_MODEL
    if name == "sized":
        return sized_model.build(REPO / "bench" / "work" / "bge-m3-sized")
    return Path(name).expanduser().resolve()


def start_index(folder: Path, index_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "desktop_app", "index", str(folder), "--index", str(index_dir),
                             "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def counts(index_dir: Path) -> tuple[int, int, int]:
    """(indexed files, chunks, chunks with vectors), read as another process reads them."""
    try:
        with sqlite3.connect(f"file:{index_dir / 'index.sqlite3'}?mode=ro", uri=True, timeout=5) as conn:
            files = conn.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0]
            chunks, encoded = conn.execute(
                "SELECT count(*), coalesce(sum(length(dense) > 0), 0) FROM chunks").fetchone()
            return files, chunks, encoded
    except sqlite3.OperationalError:  # not created yet, or its schema is being made
        return 0, 0, 0


def keyword_finds(index_dir: Path, word: str, path_end: str) -> bool:
    """A keyword search from this process (no model) finds the file."""
    from desktop_app.core.config import Settings
    from desktop_app.core.engine import Engine

    engine = Engine.open(Settings.from_env(index_dir=index_dir), with_model=False)
    try:
        return any(hit.path.endswith(path_end) for hit in engine.search(word, mode="keyword", k=50).hits)
    finally:
        engine.close()


def evaluate(collection: testsets.Collection, queries_file: Path, index_dir: Path) -> dict[str, float]:
    return {mode: round(quality.evaluate(quality.search_mode(mode, queries_file, index_dir),
                                         collection.qrels)["ndcg@10"], 4) for mode in ("keyword", "hybrid")}


def measure(folder: Path, expected_files: int, probe: tuple[str, str], model: Path,
            collection: testsets.Collection | None, queries_file: Path | None) -> dict[str, object]:
    index_dir = WORK / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    env = dict(quality.cli_env(), DESKTOP_SEARCH_MODEL=str(model), DESKTOP_SEARCH_DEVICE="cpu")
    result: dict[str, object] = {"files": expected_files, "model": str(model), "stages": {}}
    started = time.monotonic()
    process = start_index(folder, index_dir, env)
    paused_s = 0.0
    words_s = None
    todo = list(CHECKPOINTS)
    while True:
        files, chunks, encoded = counts(index_dir)
        if words_s is None and files >= expected_files and keyword_finds(index_dir, *probe):
            words_s = time.monotonic() - started - paused_s
            result["words_s"] = round(words_s, 2)
            result["chunks"] = chunks
        if words_s is not None and todo and encoded >= todo[0] * chunks:
            fraction = todo.pop(0)
            stop = signal.SIGKILL if fraction == KILLED_AT else signal.SIGSTOP
            process.send_signal(stop)
            frozen = time.monotonic()
            state = {"encoded": round(encoded / chunks, 3), "signal": stop.name}
            if collection is not None:
                state.update(evaluate(collection, queries_file, index_dir))
            result["stages"][f"{int(fraction * 100)}%"] = state
            print(f"time_to_search: at {fraction:.0%} encoded: {state}", file=sys.stderr)
            if stop == signal.SIGKILL:
                process.wait()
                process = start_index(folder, index_dir, env)  # resumes: nothing is read again
            else:
                process.send_signal(signal.SIGCONT)
            paused_s += time.monotonic() - frozen
        if process.poll() is not None:
            break
        time.sleep(POLL_S)
    last = json.loads(process.stdout.read() or "{}")
    result["meaning_s"] = round(time.monotonic() - started - paused_s, 2)
    result["resumed_run"] = {key: last.get(key) for key in ("added", "updated", "unchanged", "chunks_encoded",
                                                               "pending_chunks")}
    result["words_share"] = round(result["words_s"] / result["meaning_s"], 4) if words_s else None
    if collection is not None:
        result["stages"]["100%"] = {"encoded": 1.0, **evaluate(collection, queries_file, index_dir)}
    return result


def rarest_word(text: str, texts: Iterable[str]) -> str:
    """The word of ``text`` that the fewest of ``texts`` hold: a keyword search for it finds ``text``."""
    words = {w for w in re.findall(r"[a-z]{4,}", text.lower())}
    held = Counter(w for other in texts for w in words & set(re.findall(r"[a-z]{4,}", other.lower())))
    return min(words, key=lambda w: (held[w], w))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lite", help="lite, sized, or a model folder (default lite)")
    parser.add_argument("--docs", type=int, help="only the first N Cranfield documents")
    parser.add_argument("--folder", type=Path, help="index this folder instead of Cranfield (no nDCG)")
    args = parser.parse_args(argv)
    model = model_path(args.model)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.folder is not None:
        files = [p for p in args.folder.rglob("*") if p.is_file()]
        newest = max(files, key=lambda p: p.stat().st_size)  # read last: the biggest file
        word = rarest_word(newest.read_text(errors="ignore")[:100_000], (p.read_text(errors="ignore")[:100_000]
                                                                         for p in files if p != newest))
        result = measure(args.folder, len(files), (word, newest.name), model, None, None)
    else:
        collection = testsets.load(testsets.DATASETS / "cranfield")
        documents = dict(list(collection.documents.items())[:args.docs])
        folder = WORK / f"cranfield-{len(documents)}"
        shutil.rmtree(folder, ignore_errors=True)
        quality.write_documents(documents, folder)
        last_doc, last_text = max(documents.items(), key=lambda item: len(item[1]))  # the biggest is read last
        word = rarest_word(last_text, documents.values())
        queries_file = WORK / "queries.tsv"
        quality.write_queries(collection.judged_queries, queries_file)
        ranked = collection if args.model != "sized" else None
        result = measure(folder, len(documents), (word, f"{last_doc}.txt"), model, ranked, queries_file)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
