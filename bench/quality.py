"""Retrieval quality of the desktop-search CLI on the Cranfield collection.

Writes the 1,400 Cranfield abstracts as ``<docid>.txt`` files, indexes them with the real
``desktop-search index`` command, runs one ``desktop-search search --queries`` pass per mode
and scores every pass with nDCG@10 (gain 2^grade - 1, log2(rank + 1) discount) and recall@100,
averaged over the queries. Nothing is tuned here: the modes are the app's defaults and a few
fixed variants of them.

    .venv/bin/python bench/quality.py [--modes dense,hybrid] [--limit-queries 20] [--check]
    .venv/bin/python bench/quality.py --self-test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/datasets/cranfield")
DEFAULT_WORK = REPO / "bench" / "work" / "quality"
LITE_MODEL = REPO / "models" / "bge-m3-lite"
NDCG_DEPTH = 10
RECALL_DEPTH = 100

# Benchmark mode -> search options. ColBERT is pinned on or off so a mode means the same on CPU and CUDA.
MODES: dict[str, list[str]] = {
    "dense": ["--mode", "dense"],
    "sparse": ["--mode", "sparse"],
    "colbert": ["--mode", "colbert"],
    "keyword": ["--mode", "keyword"],
    "hybrid": ["--mode", "hybrid", "--no-colbert"],
    "hybrid+colbert": ["--mode", "hybrid", "--colbert"],
    "hybrid+keyword": ["--mode", "hybrid", "--no-colbert", "--weights", "0.4,0.3,0.3,0.2"],
}
DEFAULT_MODES = "dense,sparse,keyword,hybrid,hybrid+colbert,hybrid+keyword"
SINGLE_CHANNELS = ("dense", "sparse")

Qrels = dict[str, dict[str, int]]


# --- parsing -----------------------------------------------------------------------------------

def parse_smart(text: str) -> list[tuple[str, dict[str, str]]]:
    """SMART records: ``.I id`` starts a record, ``.X`` lines start field X; returns (id, fields)."""
    records: list[tuple[str, dict[str, str]]] = []
    field = ""
    for line in text.splitlines():
        if line.startswith(".I "):
            records.append((line[3:].strip(), {}))
            field = ""
        elif len(line.rstrip()) == 2 and line.startswith(".") and records:
            field = line[1]
            records[-1][1][field] = ""
        elif field:
            records[-1][1][field] += line + "\n"
    return records


def one_line(text: str) -> str:
    """Collapse whitespace, newlines included."""
    return " ".join(text.split())


def read_documents(path: Path) -> dict[str, str]:
    """Doc id -> file text: title, a blank line, abstract."""
    return {doc_id: f"{one_line(fields.get('T', ''))}\n\n{fields.get('W', '').strip()}\n"
            for doc_id, fields in parse_smart(path.read_text(encoding="utf-8"))}


def read_queries(path: Path) -> list[tuple[str, str]]:
    """(query number, text) numbered 1.. in file order, as the qrels number them."""
    records = parse_smart(path.read_text(encoding="utf-8"))
    return [(str(number), one_line(fields.get("W", ""))) for number, (_, fields) in enumerate(records, start=1)]


def read_qrels(path: Path) -> Qrels:
    """Query number -> {doc id: grade} for the relevant documents (grade > 0) only."""
    qrels: Qrels = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 4 and int(parts[3]) > 0:
            qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def doc_id_of(hit_path: str) -> str:
    """``/…/docs/184.txt`` -> ``184``."""
    return Path(hit_path).stem


# --- metrics -----------------------------------------------------------------------------------

def dcg(gains: list[float]) -> float:
    """Discounted cumulative gain, rank r (1-based) discounted by log2(r + 1)."""
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at(ranking: list[str], grades: dict[str, int], k: int = NDCG_DEPTH) -> float:
    """nDCG@k with gain 2^grade - 1; the ideal ranking holds all judged relevant documents."""
    ideal = dcg([2.0 ** g - 1 for g in sorted(grades.values(), reverse=True)[:k]])
    if ideal == 0:
        return 0.0
    return dcg([2.0 ** grades.get(doc, 0) - 1 for doc in ranking[:k]]) / ideal


def recall_at(ranking: list[str], grades: dict[str, int], k: int = RECALL_DEPTH) -> float:
    """Share of the relevant documents found in the top k."""
    if not grades:
        return 0.0
    return len(set(ranking[:k]) & grades.keys()) / len(grades)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def self_test() -> None:
    """Assert the metrics on rankings whose scores are known."""
    grades = {"a": 3, "b": 1}
    assert ndcg_at(["a", "b"], grades) == 1.0
    assert ndcg_at([], grades) == 0.0
    assert ndcg_at(["x", "y"], grades) == 0.0
    assert math.isclose(ndcg_at(["b", "a"], grades), (1 + 7 / math.log2(3)) / (7 + 1 / math.log2(3)))
    assert ndcg_at(["x"] * 10 + ["a"], grades) == 0.0, "rank 11 is beyond nDCG@10"
    assert recall_at(["a", "x", "b"], grades) == 1.0
    assert recall_at(["x", "b"], grades) == 0.5
    assert recall_at([], grades) == 0.0
    assert doc_id_of("/tmp/docs/184.txt") == "184"
    smart = parse_smart(".I 7\r\n.T\r\ntitle\r\n.W\r\nline one\r\nline two\r\n.I 9\r\n.W\r\nq\r\n")
    assert smart == [("7", {"T": "title\n", "W": "line one\nline two\n"}), ("9", {"W": "q\n"})]
    print("self-test passed")


# --- running the CLI ---------------------------------------------------------------------------

def cli_env() -> dict[str, str]:
    """The caller's environment, offline, with the checkout's lite model unless one is set."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if LITE_MODEL.is_dir():
        env.setdefault("DESKTOP_SEARCH_LITE_MODEL", str(LITE_MODEL))
    return env


def run_cli(args: list[str]) -> str:
    """Run ``desktop-search ARGS`` with this interpreter; its stdout, or SystemExit on failure."""
    command = [sys.executable, "-m", "desktop_app", *args]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"quality: `desktop-search {' '.join(args)}` exited with {done.returncode}")
    return done.stdout


def write_documents(documents: dict[str, str], folder: Path) -> int:
    """Write each document as ``<docid>.txt`` where it is missing or differs; how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for doc_id, text in documents.items():
        path = folder / f"{doc_id}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written += 1
    return written


def write_queries(queries: list[tuple[str, str]], path: Path) -> None:
    path.write_text("".join(f"{query_id}\t{text}\n" for query_id, text in queries), encoding="utf-8")


def index_documents(folder: Path, index_dir: Path, model: str | None) -> dict:
    """Index (or bring up to date) ``folder``; the CLI's JSON report."""
    args = ["index", str(folder), "--index", str(index_dir), "--json"] + (["--model", model] if model else [])
    return json.loads(run_cli(args))


def build_report(report: dict, saved: Path) -> dict:
    """The report of the run that last encoded documents: this one, or the one saved by an earlier run."""
    if report["added"] or report["updated"] or not saved.exists():
        saved.write_text(json.dumps(report, indent=2), encoding="utf-8")
        return report
    return json.loads(saved.read_text(encoding="utf-8"))


def search_mode(mode: str, queries_file: Path, index_dir: Path) -> list[dict]:
    """One batch search pass; one record per query, in query order."""
    args = ["search", "--queries", str(queries_file), "--index", str(index_dir), "-k", str(RECALL_DEPTH), "--json"]
    return [json.loads(line) for line in run_cli(args + MODES[mode]).splitlines() if line.strip()]


# --- evaluation and reporting ------------------------------------------------------------------

def evaluate(records: list[dict], qrels: Qrels) -> dict:
    """Mean nDCG@10 and recall@100, mean and median took_ms, per-query scores and errors."""
    took = [r["took_ms"] for r in records if "took_ms" in r]
    ndcg: dict[str, float] = {}
    recall: dict[str, float] = {}
    for record in records:
        ranking = [doc_id_of(hit["path"]) for hit in record["hits"]]
        grades = qrels.get(record["id"], {})
        ndcg[record["id"]] = ndcg_at(ranking, grades)
        recall[record["id"]] = recall_at(ranking, grades)
    return {
        "queries": len(records),
        "ndcg@10": mean(list(ndcg.values())),
        "recall@100": mean(list(recall.values())),
        "mean_ms": mean(took),
        "median_ms": statistics.median(took) if took else 0.0,
        "errors": {r["id"]: r["error"] for r in records if "error" in r},
        "per_query": {"ndcg@10": ndcg, "recall@100": recall},
    }


def markdown_table(results: dict[str, dict]) -> str:
    lines = ["| mode | nDCG@10 | recall@100 | mean ms/query | median ms/query | query errors |",
             "| --- | --- | --- | --- | --- | --- |"]
    for mode, r in results.items():
        lines.append(f"| {mode} | {r['ndcg@10']:.3f} | {r['recall@100']:.3f} | {r['mean_ms']:.1f} | "
                     f"{r['median_ms']:.1f} | {len(r['errors'])} |")
    return "\n".join(lines)


def check_hybrid(results: dict[str, dict]) -> bool:
    """True if hybrid's nDCG@10 beats every single channel's (dense, sparse)."""
    best = max(results[mode]["ndcg@10"] for mode in SINGLE_CHANNELS)
    return results["hybrid"]["ndcg@10"] > best


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work folder for documents, index, results "
                        "(default bench/work/quality)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"the Cranfield folder (default {DEFAULT_DATA})")
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"comma-separated, from {', '.join(MODES)} "
                        f"(default {DEFAULT_MODES})")
    parser.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries (quick runs)")
    parser.add_argument("--model", help="passed to `desktop-search index --model` (default: the CLI's choice)")
    parser.add_argument("--check", action="store_true", help="exit 1 unless hybrid's nDCG@10 beats dense and sparse")
    parser.add_argument("--self-test", action="store_true", help="only check the metric functions")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(MODES)}")
    if args.check and not {"hybrid", *SINGLE_CHANNELS} <= set(args.modes):
        parser.error("--check needs the modes hybrid, dense and sparse")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.self_test:
        self_test()
        return 0
    work = args.work.resolve()
    docs_dir, index_dir = work / "docs", work / "index"
    queries = read_queries(args.data / "cran.qry")[:args.limit_queries]
    qrels = read_qrels(args.data / "QRelsCorrectedforTRECeval")
    written = write_documents(read_documents(args.data / "cran.all.1400"), docs_dir)
    queries_file = work / "queries.tsv"
    write_queries(queries, queries_file)

    print(f"quality: {written} document files written; indexing {docs_dir}", file=sys.stderr)
    report = index_documents(docs_dir, index_dir, args.model)
    built = build_report(report, work / "index_build.json")
    print(f"quality: index run: {report['added']} added, {report['updated']} updated, {report['unchanged']} "
          f"unchanged, {report['failed']} failed; built in {built['seconds']:.1f} s ({built['tokens']} tokens) "
          f"on {built['device']}", file=sys.stderr)

    results: dict[str, dict] = {}
    for mode in args.modes:
        started = time.perf_counter()
        results[mode] = evaluate(search_mode(mode, queries_file, index_dir), qrels)
        print(f"quality: {mode}: nDCG@10 {results[mode]['ndcg@10']:.3f} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    summary = {"queries": len(queries), "index_run": report, "index_build": built, "options": MODES,
               "modes": results}
    (work / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"{len(queries)} queries; index built in {built['seconds']:.1f} s, {built['tokens']} tokens, "
          f"{built['device']}\n")
    print(markdown_table(results))
    if args.check and not check_hybrid(results):
        print("\nquality: check failed: hybrid's nDCG@10 does not beat the best single channel", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
