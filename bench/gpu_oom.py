"""GPU only: force CUDA out-of-memory with a per-process memory cap and check the back-off.

The encoder must halve the batch on out-of-memory (and, for a single chunk, move to the CPU)
and still return the vectors it returns without the cap. Needs a CUDA GPU; exits 2 without one.

    python bench/gpu_oom.py --cap-gb 2.0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.encode_speed import chunk_texts  # noqa: E402
from bench.sized_model import build  # noqa: E402
from desktop_app.core.model.encoder import Encoder  # noqa: E402
from desktop_app.core.model.resolve import load_spec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap-gb", type=float, default=2.0, help="GPU memory this process may use")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "work" / "bge-m3-sized")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure", file=sys.stderr)
        return 2
    notices: list[str] = []
    encoder = Encoder(load_spec(build(args.model)), device="cuda", dtype="fp16", on_notice=notices.append).load()
    from transformers import AutoTokenizer

    texts = chunk_texts(AutoTokenizer.from_pretrained(str(encoder.spec.path)), args.texts)
    reference = np.stack([e.dense for e in encoder.encode(texts)])
    back_offs: list[int] = []
    original = encoder.back_off

    def counted_back_off(batch: list[int], lengths: list[int]) -> list[list[int]]:
        back_offs.append(len(batch))
        return original(batch, lengths)

    encoder.back_off = counted_back_off
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gb * 2**30 / total))
    capped = np.stack([e.dense for e in encoder.encode(texts)])
    cosine = float(np.min(np.sum(reference * capped, axis=1)))
    result = {"cap_gb": args.cap_gb, "back_offs": len(back_offs), "batch_sizes_halved": back_offs[:10],
              "ended_on": encoder.device, "notices": notices, "min_cosine_vs_uncapped": round(cosine, 5)}
    print(json.dumps(result, indent=2))
    return 0 if back_offs and cosine >= 0.999 else 1


if __name__ == "__main__":
    sys.exit(main())
