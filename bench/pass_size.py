"""How many tokens one CPU forward pass should hold: encoding speed against a search's wait beside it.

An OpenVINO body runs one inference at a time (its CPU plugin serialises the requests of a
one-stream compiled model), so a search's query waits for the indexer's pass in progress; ONNX
Runtime and torch run the query beside it. For each pass size, in a process of its own and in
alternating rounds, with the runtime the probe chose (or ``--runtime``):

- tokens/s encoding chunks in the encoder's length mix (``encode_speed.chunk_texts``);
- one short query's latency alone, and beside an indexing thread that encodes those chunks
  with the same encoder (p50, p95, max).

    python bench/pass_size.py --model models/bge-m3-lite --sizes 4096,1024,512
    python bench/pass_size.py --runtime openvino-fp32 --rounds 1     # the BGE-M3-sized model
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encode_speed import alone, chunk_texts, count_tokens  # noqa: E402
from search_latency import percentile  # noqa: E402

from desktop_app.core.model import encoder as encoder_module  # noqa: E402
from desktop_app.core.model.encoder import Encoder  # noqa: E402
from desktop_app.core.model.resolve import load_spec  # noqa: E402

QUERIES = ["lift of a wing at high angle of attack", "heat transfer in hypersonic flow", "buckling of shells",
           "boundary layer transition", "supersonic inlet design", "jet noise reduction"]


def measure(model: Path, runtime: str, pass_tokens: int, texts: list[str], queries: int) -> dict:
    encoder_module.CPU_TOKENS_PER_BATCH = pass_tokens
    encoder = Encoder(load_spec(model), device="cpu", dtype=runtime).load()
    encoder.encode(texts[:2], max_length=512)
    started = time.perf_counter()
    encoder.encode(texts, max_length=512)
    seconds = time.perf_counter() - started
    alone_ms = [_query_ms(encoder, n) for n in range(queries)]
    stop = threading.Event()

    def halt() -> None:
        if stop.is_set():
            raise _Stopped

    def index() -> None:
        try:
            while True:
                encoder.encode(texts, max_length=512, checkpoint=halt)
        except _Stopped:
            pass

    indexer = threading.Thread(target=index, daemon=True)
    indexer.start()
    time.sleep(0.5)
    beside_ms = []
    for n in range(queries):
        beside_ms.append(_query_ms(encoder, n))
        time.sleep(0.2)
    stop.set()
    indexer.join()
    return {"runtime": encoder.dtype, "seconds": seconds, "alone_ms": alone_ms, "beside_ms": beside_ms}


class _Stopped(Exception):
    """The indexing thread's signal to leave between two passes."""


def _query_ms(encoder: Encoder, n: int) -> float:
    started = time.perf_counter()
    encoder.encode([QUERIES[n % len(QUERIES)]], max_length=64)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "work" / "bge-m3-sized")
    parser.add_argument("--runtime", default="auto", help="a CPU runtime (openvino-fp32, onnx-int8, ...) or auto")
    parser.add_argument("--sizes", default="4096,1024", help="tokens per forward pass, comma-separated")
    parser.add_argument("--texts", type=int, default=24)
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    texts = chunk_texts(tokenizer, args.texts)
    tokens = count_tokens(tokenizer, texts)
    sizes = [int(size) for size in args.sizes.split(",")]
    runs: dict[int, list[dict]] = {size: [] for size in sizes}
    for round_number in range(args.rounds):
        for size in sizes if round_number % 2 == 0 else reversed(sizes):
            run = alone(measure, args.model, args.runtime, size, texts, args.queries)
            runs[size].append(run)
            print(f"round {round_number + 1}: {size} tokens a pass, {run['runtime']}: "
                  f"{tokens / run['seconds']:.0f} tokens/s, query alone p50 "
                  f"{statistics.median(run['alone_ms']):.0f} ms, beside indexing p50 "
                  f"{statistics.median(run['beside_ms']):.0f} ms max {max(run['beside_ms']):.0f} ms", flush=True)
    report = {"model": args.model.name, "texts": len(texts), "tokens": tokens, "rounds": args.rounds, "sizes": {}}
    for size, measured in runs.items():
        beside = [ms for run in measured for ms in run["beside_ms"]]
        report["sizes"][size] = {
            "runtime": measured[0]["runtime"],
            "tokens_per_s": [round(tokens / run["seconds"]) for run in measured],
            "query_alone_p50_ms": round(statistics.median([ms for run in measured for ms in run["alone_ms"]]), 1),
            "beside_indexing_ms": {"p50": round(statistics.median(beside)), "p95": round(percentile(beside, 0.95)),
                                   "max": round(max(beside))},
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
