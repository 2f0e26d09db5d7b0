"""A BGE-M3-sized model with random weights and the lite model's tokenizer, for speed benchmarks.

Real BGE-M3 weights cannot be downloaded here; throughput depends on the shape (24 layers,
hidden 1024, 16 heads, FFN 4096), not on the values, so a seeded random model measures the same.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
LITE = REPO / "models" / "bge-m3-lite"


BGE_M3_VOCAB = 250_002  # real BGE-M3's vocabulary: its embeddings make the fp32 weights 2.3 GB


def build(out_dir: Path, lite: Path = LITE, vocab_size: int | None = None) -> Path:
    """Write the random BGE-M3-sized model to ``out_dir`` (skipped when it is already there).

    ``vocab_size`` (e.g. :data:`BGE_M3_VOCAB`) widens the embedding table beyond the lite tokenizer's
    ids, so the weights weigh what real BGE-M3's do (over protobuf's 2 GB once exported)."""
    if (out_dir / "sparse_linear.pt").is_file():
        return out_dir
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    tokenizer_vocab = json.loads((lite / "tokenizer.json").read_text())["model"]["vocab"]
    config = XLMRobertaConfig(
        vocab_size=vocab_size or len(tokenizer_vocab), hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, max_position_embeddings=8194, pad_token_id=0, type_vocab_size=1,
    )
    model = XLMRobertaModel(config, add_pooling_layer=False).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy2(lite / name, out_dir / name)
    linear = torch.nn.Linear(1024, 1024)
    torch.save(linear.state_dict(), out_dir / "colbert_linear.pt")
    torch.save(torch.nn.Linear(1024, 1).state_dict(), out_dir / "sparse_linear.pt")
    (out_dir / "desktop_search.json").write_text(json.dumps({"label": "bench", "pooling": "cls"}))
    return out_dir


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "bench" / "work" / "bge-m3-sized"))
