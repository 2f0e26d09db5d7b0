"""First use of a model on a CPU: how long the conversions and the probe take, and how much memory they need.

Builds a BGE-M3-sized model with real BGE-M3's vocabulary (568M parameters, 2.3 GB of fp32 weights, so
its ONNX graph is over protobuf's 2 GB and must be written with external data), removes any earlier
conversion, then loads it once with the runtime on auto in a fresh process, as a user's first start
does: ONNX export, ONNX Runtime int8, OpenVINO int8 (where the CPU has VNNI or AMX), the fidelity
gate and the timing rounds. Prints each step's seconds (from the progress lines the app shows), the
process's peak resident memory, the verdict and the disk the conversions take.

    python bench/conversion.py [--model DIR] [--lite-vocab]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sized_model import BGE_M3_VOCAB, build  # noqa: E402
from desktop_app.core.model import conversion, cpu_runtime  # noqa: E402


def _peak_rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:"))


def first_load(model_dir: str) -> dict:
    """In a fresh process: load with the runtime on auto; the steps' times, peak memory and the verdict."""
    from desktop_app.core.model.encoder import Encoder
    from desktop_app.core.model.resolve import load_spec

    started = time.perf_counter()
    steps: list[tuple[float, str]] = []
    encoder = Encoder(load_spec(Path(model_dir)), device="cpu", dtype="auto",
                      on_notice=lambda line: steps.append((time.perf_counter() - started, line)))
    encoder.load()
    total = time.perf_counter() - started
    verdict = encoder.verdict
    encoder.close()
    marks = [*steps, (total, "end")]
    return {
        "seconds": round(total, 1),
        "steps": [{"line": line, "from_s": round(at, 1), "took_s": round(marks[i + 1][0] - at, 1)}
                  for i, (at, line) in enumerate(steps)],
        "peak_rss_gib": round(_peak_rss_bytes() / 2**30, 2),
        "chosen": verdict.chosen if verdict else encoder.dtype,
        "tokens_per_s": verdict.tokens_per_s if verdict else {},
        "fidelity": verdict.fidelity if verdict else {},
        "rejected": verdict.rejected if verdict else {},
    }


def _folder_sizes(folder: Path) -> dict[str, float]:
    return {sub.name: round(sum(f.stat().st_size for f in sub.rglob("*") if f.is_file()) / 2**30, 2)
            for sub in sorted(folder.iterdir()) if sub.is_dir()} if folder.is_dir() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "work" / "bge-m3-full-vocab")
    parser.add_argument("--lite-vocab", action="store_true", help="the smaller sized model (1.3 GB, lite vocabulary)")
    args = parser.parse_args()
    model_dir = build(args.model, vocab_size=None if args.lite_vocab else BGE_M3_VOCAB)
    shutil.rmtree(model_dir / cpu_runtime.FOLDER_NAME, ignore_errors=True)
    weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    low_memory = [conversion.memory_available()]
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.5):
            low_memory.append(conversion.memory_available())

    threading.Thread(target=watch_memory, daemon=True).start()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = pool.submit(first_load, str(model_dir)).result()
    done.set()
    graph = model_dir / cpu_runtime.FOLDER_NAME / conversion.ONNX_GRAPH.parent
    result.update({
        "model": str(model_dir), "weights_gib": round(weights / 2**30, 2),
        "graph_has_external_data": graph.is_dir() and len(list(graph.iterdir())) > 1,
        "conversions_gib": _folder_sizes(model_dir / cpu_runtime.FOLDER_NAME),
        "system_memory_used_at_most_gib": round((low_memory[0] - min(low_memory)) / 2**30, 2),
    })
    print(json.dumps(result, indent=1))
    return 0 if result["chosen"] != cpu_runtime.TORCH_FP32 or not cpu_runtime.has_native_bf16() else 1


if __name__ == "__main__":
    sys.exit(main())
