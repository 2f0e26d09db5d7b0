"""A whole `desktop-search index` run against plain torch and FlagEmbedding on the same texts (issue 21).

A folder of PDFs, DOCX and text files (``pipeline.make_corpus``: Cranfield abstracts) is indexed into
a fresh index by the real CLI in a process of its own, timed from start to exit, with the model
given by ``--model`` (the BGE-M3-sized one by default) on the CPU and the runtime the probe keeps
for this machine. The chunks it stored are read back, and the baselines encode exactly those
texts, each in a process of its own, timed from start to exit too (imports, load and forward):

- plain torch: ``transformers.AutoModel`` in batches of 8, the body only, in bf16 autocast where the CPU
  has native bf16 (fp32 too with ``--fp32``), else in fp32;
- FlagEmbedding: ``BGEM3FlagModel.encode`` with its defaults, dense and sparse (``--flagembedding``;
  about 70 tokens/s with the sized model on 2 cores, so minutes even for a small folder).

Rounds alternate the runs, and the median of each is reported with the ratios. The probe's own
first run (minutes, once per machine and model) must have happened before: run
``desktop-search index`` once with the model, or ``bench/encode_speed.py``.

    python bench/whole_run.py --files-per-kind 3          # 9 files, about 11k tokens
    python bench/whole_run.py --files-per-kind 20 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline  # noqa: E402

from desktop_app.core.model.cpu_runtime import has_native_bf16  # noqa: E402

WORK = Path(__file__).parent / "work" / "whole_run"

PLAIN_TORCH = """
import sys, json, torch
from transformers import AutoModel, AutoTokenizer
model_dir, texts_file, bf16 = sys.argv[1], sys.argv[2], sys.argv[3] == "bf16"
texts = json.load(open(texts_file))
tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
    for first in range(0, len(texts), 8):
        model(**tokenizer(texts[first:first + 8], padding=True, truncation=True, max_length=512, return_tensors="pt"))
"""

FLAG_EMBEDDING = """
import sys, json
from FlagEmbedding import BGEM3FlagModel
model_dir, texts_file = sys.argv[1], sys.argv[2]
BGEM3FlagModel(model_dir, devices="cpu").encode(json.load(open(texts_file)), return_dense=True, return_sparse=True)
"""


def timed_process(command: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of ``command``; its failure stops the benchmark with its output."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{done.stdout.decode(errors='replace')[-3000:]}")
    return seconds


def index_run(folder: Path, index: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    shutil.rmtree(index, ignore_errors=True)
    report = index.parent / "report.json"
    started = time.perf_counter()
    with report.open("wb") as out:
        done = subprocess.run([sys.executable, "-m", "desktop_app", "index", str(folder), "--index", str(index),
                               "--json"], env=env, stdout=out, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"desktop-search index failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    return seconds, json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "work" / "bge-m3-sized")
    parser.add_argument("--files-per-kind", type=int, default=3, help="PDFs, DOCX and text files each (default 3)")
    parser.add_argument("--per-file", type=int, default=6, help="Cranfield abstracts per file (default 6)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fp32", action="store_true", help="time plain torch in fp32 too where the CPU has native "
                        "bf16 (without it fp32 is the only one timed)")
    parser.add_argument("--flagembedding", action="store_true", help="time FlagEmbedding's default encode too")
    parser.add_argument("--work", type=Path, default=WORK)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    folder = work / f"docs-{args.files_per_kind}x{args.per_file}"
    if not folder.exists():
        pipeline.make_corpus(folder, args.files_per_kind, args.per_file)
    env = dict(os.environ, DESKTOP_SEARCH_MODEL=str(args.model), DESKTOP_SEARCH_DEVICE="cpu",
               DESKTOP_SEARCH_DTYPE=os.environ.get("DESKTOP_SEARCH_DTYPE", "auto"), HF_HUB_OFFLINE="1")
    texts_file = work / "texts.json"
    runs: dict[str, list[float]] = {"index": []}
    # bf16 is plain torch's faster path only where the CPU has it natively (emulated, it is several times
    # slower than fp32); fp32 is timed there too with --fp32, and always elsewhere.
    precisions = ["bf16", "fp32"] if has_native_bf16() and args.fp32 else ["bf16"] if has_native_bf16() else ["fp32"]
    baselines = {f"plain torch {precision}": [sys.executable, "-c", PLAIN_TORCH, str(args.model), str(texts_file),
                                              precision] for precision in precisions}
    if args.flagembedding:
        baselines["FlagEmbedding default"] = [sys.executable, "-c", FLAG_EMBEDDING, str(args.model), str(texts_file)]
    report: dict[str, object] = {}
    for round_number in range(args.rounds):
        order = ["index", *baselines] if round_number % 2 == 0 else [*baselines, "index"]
        for name in order:
            if name == "index":
                seconds, report = index_run(folder, work / "index", env)
                with sqlite3.connect(work / "index" / "index.sqlite3") as db:
                    texts_file.write_text(json.dumps([row[0] for row in db.execute("SELECT text FROM chunks")]))
                runs["index"].append(seconds)
            else:  # round 1 runs the index first: the baselines encode the texts it stored
                runs.setdefault(name, []).append(timed_process(baselines[name], env))
            print(f"round {round_number + 1}: {name} {runs[name][-1]:.1f} s", file=sys.stderr, flush=True)
    ours = statistics.median(runs["index"])
    tokens = int(report["tokens"])
    result = {
        "files": int(report["added"]), "chunks": int(report["chunks_added"]), "tokens": tokens,
        "runtime": report["device"], "threads": os.cpu_count(), "rounds": args.rounds,
        "index_s": round(ours, 2), "index_tokens_per_s": round(tokens / ours, 1),
        "indexer_own_s": report["seconds"],
        **{f"{name}_s": round(statistics.median(times), 2) for name, times in runs.items() if name != "index"},
        **{f"index_vs_{name}": round(statistics.median(times) / ours, 2) for name, times in runs.items()
           if name != "index"},
        "every_run_s": {name: [round(t, 2) for t in times] for name, times in runs.items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
