"""CPU (or GPU) encoding throughput: our encoder against BGEM3FlagModel.encode's defaults.

Every encoder runs on the same texts (a realistic mix of chunk lengths cut from the Cranfield
abstracts), producing dense + sparse outputs, on a BGE-M3-sized model with random weights
(bench/sized_model.py), each timed in a fresh process of its own: a runtime timed after another
in one process shared the cores with the first one's idle thread pool (OpenVINO's made torch
bf16 look 1.6x slower than it is). Prints tokens/s and the ratio; exits 1 below ``--target``.

    python bench/encode_speed.py                 # CPU: target 3.0x
    python bench/encode_speed.py --device cuda   # GPU: also compares with ~250,000 tokens/s
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sized_model import build  # noqa: E402
from desktop_app.core.model.cpu_runtime import has_native_bf16  # noqa: E402
from desktop_app.core.model.encoder import Encoder  # noqa: E402
from desktop_app.core.model.resolve import load_spec  # noqa: E402

CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cranfield" / "cran.all.1400"
H100_REFERENCE_TOKENS_PER_S = 250_000
LENGTH_MIX = ((0.55, 510, 510), (0.25, 150, 400), (0.20, 20, 150))


def chunk_texts(tokenizer: object, count: int, seed: int = 0) -> list[str]:
    """Texts whose token counts follow LENGTH_MIX: most chunks full, a tail of short ones."""
    words = re.sub(r"\.[ITABW]\s|\.I \d+", " ", CRANFIELD.read_text()).split()
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(count):
        share = rng.random()
        low, high = next((lo, hi) for p, lo, hi in accumulate(LENGTH_MIX) if share <= p)
        target = int(rng.integers(low, high + 1))
        start = int(rng.integers(0, len(words) - 2 * target))
        ids = tokenizer(" ".join(words[start:start + 2 * target]), add_special_tokens=False)["input_ids"][:target]
        texts.append(tokenizer.decode(ids))
    return texts


def accumulate(mix: tuple[tuple[float, int, int], ...]) -> list[tuple[float, int, int]]:
    total, out = 0.0, []
    for share, low, high in mix:
        total += share
        out.append((total, low, high))
    return out


def count_tokens(tokenizer: object, texts: list[str]) -> int:
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"])


def alone(timing: Callable[..., object], *args: object) -> object:
    """``timing(*args)`` in a fresh process (spawned, so nothing of this one's thread pools comes along)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(timing, *args).result()


def time_flagembedding(model_dir: Path, texts: list[str], device: str) -> float:
    """Seconds for BGEM3FlagModel.encode with its defaults (dense + sparse requested)."""
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(str(model_dir), devices=device)
    started = time.perf_counter()
    model.encode(texts, return_dense=True, return_sparse=True)
    return time.perf_counter() - started


def time_plain_torch(model_dir: Path, texts: list[str], bf16: bool) -> float:
    """Seconds for a plain transformers forward of the texts in batches of 8 (the body only, no heads)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(str(model_dir)), AutoModel.from_pretrained(str(model_dir)).eval()
    started = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for first in range(0, len(texts), 8):
            model(**tokenizer(texts[first:first + 8], padding=True, truncation=True, max_length=512,
                              return_tensors="pt"))
    return time.perf_counter() - started


def time_ours(model_dir: Path, texts: list[str], device: str, dtype: str) -> tuple[float, str]:
    encoder = Encoder(load_spec(model_dir), device=device, dtype=dtype).load()
    encoder.encode(texts[:2], max_length=64)
    started = time.perf_counter()
    encoder.encode(texts, max_length=512)
    return time.perf_counter() - started, encoder.dtype


def time_torch_variant(model_dir: Path, texts: list[str], variant: str) -> dict:
    """Our encoder with its torch body changed as issue 21 asked to try: ``torch-compile`` (inductor,
    dynamic shapes, under bf16 autocast where the CPU has bf16) or ``torch-int8`` (dynamic int8 of every
    Linear layer). Seconds on ``texts``, the first-use cost (quantising or compiling, with a short and a
    long batch) and fidelity against torch fp32 on the probe's texts, as the start-up probe judges."""
    import copy

    import torch

    from desktop_app.core.model import fidelity
    from desktop_app.core.model.cpu_runtime import TorchBody

    encoder = Encoder(load_spec(model_dir), device="cpu", dtype="fp32").load()
    probe = list(fidelity.PROBE_TEXTS)
    reference = encoder.encode(probe, colbert=True)
    started = time.perf_counter()
    if variant == "torch-int8":
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(encoder.torch_module()), {torch.nn.Linear},
                                                           dtype=torch.qint8)
        body = TorchBody(quantized, bf16=False)
    else:
        body = TorchBody(torch.compile(encoder.torch_module(), dynamic=True), bf16=has_native_bf16())
    encoder.encode(texts[:2], max_length=64, body=body)
    encoder.encode(texts[:2], max_length=512, body=body)
    first_use_s = time.perf_counter() - started
    found = fidelity.measure(reference, encoder.encode(probe, colbert=True, body=body))
    started = time.perf_counter()
    encoder.encode(texts, max_length=512, body=body)
    return {"seconds": time.perf_counter() - started, "first_use_s": round(first_use_s, 1),
            "fidelity": found.as_dict(), "passes_gate": found.passes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=24)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--target", type=float, default=3.0)
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "work" / "bge-m3-sized")
    parser.add_argument("--runtimes", default="openvino-fp32,onnx-int8",
                        help="CPU runtimes to time beside fp32 and auto (each forced, fidelity not checked)")
    parser.add_argument("--torch-variants", default="",
                        help="also time torch-compile and/or torch-int8 (comma-separated; not app runtimes)")
    args = parser.parse_args()
    model_dir = build(args.model)
    from transformers import AutoTokenizer  # no model here: this process only hands out the texts

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = chunk_texts(tokenizer, args.texts)
    tokens = count_tokens(tokenizer, texts)
    baseline_s = alone(time_flagembedding, model_dir, texts, args.device)
    ours_fp32_s, _ = alone(time_ours, model_dir, texts, args.device, "fp32" if args.device == "cpu" else "fp16")
    ours_auto_s, dtype = alone(time_ours, model_dir, texts, args.device, "auto")
    forced = {name: alone(time_ours, model_dir, texts, args.device, name)[0]
              for name in args.runtimes.split(",") if name and args.device == "cpu"}
    variants = {name: alone(time_torch_variant, model_dir, texts, name)
                for name in args.torch_variants.split(",") if name and args.device == "cpu"}
    # The plain forward in the faster of fp32 and bf16 (bf16 only where the CPU has it natively).
    plain_s = min(alone(time_plain_torch, model_dir, texts, bf16)
                  for bf16 in ((False, True) if args.device == "cpu" and has_native_bf16() else (False,)))
    result = {
        "device": args.device, "texts": len(texts), "tokens": tokens,
        "flagembedding_default_tokens_per_s": round(tokens / baseline_s, 1),
        "ours_fp32_tokens_per_s": round(tokens / ours_fp32_s, 1),
        "ours_auto_tokens_per_s": round(tokens / ours_auto_s, 1), "auto_dtype": dtype,
        "ratio_fp32": round(baseline_s / ours_fp32_s, 2), "ratio_auto": round(baseline_s / ours_auto_s, 2),
        "plain_torch_forward_tokens_per_s": round(tokens / plain_s, 1),
        "auto_over_plain_torch": round(plain_s / ours_auto_s, 2),
        **{f"ours_{name}_tokens_per_s": round(tokens / seconds, 1) for name, seconds in forced.items()},
        **{f"{name}_tokens_per_s": round(tokens / found.pop("seconds"), 1) for name, found in variants.items()},
        **{name: found for name, found in variants.items()},
    }
    if args.device == "cuda":
        result["share_of_h100_reference"] = round(tokens / ours_auto_s / H100_REFERENCE_TOKENS_PER_S, 3)
    print(json.dumps(result, indent=2))
    return 0 if result["ratio_auto"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
