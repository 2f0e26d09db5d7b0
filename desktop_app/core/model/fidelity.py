"""Whether a converted or quantised model still gives the fp32 model's signals, measured on fixed texts.

A faster CPU runtime is used only when, on :data:`PROBE_TEXTS`, its dense vectors keep cosine >=
0.99 with the fp32 model's, each text's ten heaviest lexical tokens stay at least nine of the
same ten (counting tokens of at least 5 % of the largest weight: lighter ones rank nothing), and
every ColBERT vector keeps cosine >= 0.98 (issue 21's thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desktop_app.core.model.encoding import Encoding

DENSE_MIN_COSINE = 0.99
SPARSE_MIN_TOP_OVERLAP = 0.9
COLBERT_MIN_COSINE = 0.98
TOP_TOKENS = 10
# Lexical weights under this share of the largest weight on the probe texts rank nothing: whether fp32
# gives a token 0.006 and bf16 rounds it to 0 (a weight of 0.18 elsewhere) is not a change of top tokens.
MATERIAL_WEIGHT_SHARE = 0.05

# Prose, a title, code, numbers, another script and a long passage: what documents hold.
PROBE_TEXTS = (
    "The boundary layer of a swept wing separates near the leading edge at high angles of attack.",
    "Quarterly report: revenue rose 12 % to 4.2 million euros; costs fell in every region but Asia.",
    "def parse(path):\n    with open(path) as handle:\n        return [line.split(',') for line in handle]",
    "Meeting notes",
    "Die Ergebnisse zeigen, dass die Wärmeübertragung mit der Reynolds-Zahl zunimmt.",
    "東京の研究チームは新しい電池材料を発表した。",
    "Invoice #20931 due 2026-12-31, IBAN DE89 3704 0044 0532 0130 00, contact billing@example.org",
    " ".join(["An experimental study of heat transfer to blunt bodies in hypersonic flow, with pressure and "
              "temperature measured along the surface and compared with laminar and turbulent theory."] * 6),
)

# What int8 quantisation calibrates its activations on: the same kinds of text, none of the probe's,
# so the gate above judges a quantised model on texts it was not tuned to.
CALIBRATION_TEXTS = (
    "Lift and drag of a delta wing were measured in a low-speed wind tunnel at several sweep angles.",
    "Minutes of the board meeting: the budget for next year was approved with two amendments.",
    "class Cache:\n    def __init__(self, size):\n        self.items = {}\n        self.size = size",
    "Project plan",
    "La température de la paroi augmente avec le nombre de Mach dans l'écoulement hypersonique.",
    "北京大学的研究人员发表了关于量子计算的新论文。",
    "Order 55-0192 shipped 2026-11-02 to 14 Rue de la Paix, Paris; tracking 1Z999AA10123456784",
    "Patients receiving the new treatment recovered faster, with fewer side effects reported after six weeks.",
    " ".join(["The buckling load of thin cylindrical shells under axial compression depends strongly on "
              "small initial imperfections, as tests on machined and electroformed specimens show."] * 6),
    "Terms and conditions: the subscription renews every month unless cancelled before the renewal date.",
    "SELECT name, count(*) FROM files GROUP BY folder ORDER BY 2 DESC LIMIT 10;",
    "Recipe: whisk two eggs with sugar, fold in the flour, and bake for twenty minutes at 180 degrees.",
)

# What the runtimes race on: the probe texts and two passages cut at an index run's chunk length, since
# runtimes rank differently by length. On an AMX CPU (BGE-M3-sized model, 8 texts a batch) ONNX Runtime
# int8 tied OpenVINO int8 at 25 tokens (1,768 and 1,779 tokens/s) and ran at half its speed at 500 tokens
# (1,121 and 2,130), and torch bf16 went from a third of OpenVINO bf16's speed to the same.
TIMING_MAX_TOKENS = 512  # the chunks' length (Settings.chunk_tokens)
TIMING_TEXTS = PROBE_TEXTS + (" ".join(PROBE_TEXTS * 4), " ".join(CALIBRATION_TEXTS * 4))


@dataclass(frozen=True)
class Fidelity:
    """The worst case over the probe texts of each signal's agreement with the fp32 model."""

    dense_cosine: float
    sparse_top_overlap: float
    colbert_cosine: float

    @property
    def passes(self) -> bool:
        return (self.dense_cosine >= DENSE_MIN_COSINE and self.sparse_top_overlap >= SPARSE_MIN_TOP_OVERLAP
                and self.colbert_cosine >= COLBERT_MIN_COSINE)

    def describe(self) -> str:
        return (f"dense cosine {self.dense_cosine:.4f}, top-{TOP_TOKENS} lexical tokens kept "
                f"{self.sparse_top_overlap:.0%}, ColBERT cosine {self.colbert_cosine:.4f}")

    def as_dict(self) -> dict[str, float]:
        return {"dense_cosine": round(self.dense_cosine, 5), "sparse_top_overlap": round(self.sparse_top_overlap, 3),
                "colbert_cosine": round(self.colbert_cosine, 5)}


def measure(reference: list[Encoding], candidate: list[Encoding]) -> Fidelity:
    """Compare ``candidate``'s encodings of the probe texts with the fp32 ``reference`` (same order)."""
    dense, sparse, colbert = [], [], []
    floor = MATERIAL_WEIGHT_SHARE * max((max(ref.sparse.values(), default=0.0) for ref in reference), default=0.0)
    for ref, got in zip(reference, candidate, strict=True):
        dense.append(float(np.dot(ref.dense, got.dense)))
        sparse.append(_top_overlap(ref.sparse, got.sparse, floor))
        if ref.colbert is not None and got.colbert is not None and len(ref.colbert):
            colbert.append(float(np.min(np.sum(ref.colbert * got.colbert, axis=1))))
    return Fidelity(min(dense), min(sparse), min(colbert, default=1.0))


def _top_overlap(reference: dict[int, float], candidate: dict[int, float], floor: float) -> float:
    """The share of the reference's heaviest tokens (of weight ``floor`` or more) that are also among the
    candidate's heaviest; where the reference has none, whether the candidate has none either."""
    material = {token: weight for token, weight in reference.items() if weight >= floor}
    size = min(TOP_TOKENS, len(material))
    if size == 0:
        return 1.0 if all(weight < floor for weight in candidate.values()) else 0.0
    heaviest = set(sorted(material, key=lambda token: -material[token])[:size])
    kept = set(sorted(candidate, key=lambda token: -candidate[token])[:size])
    return len(heaviest & kept) / size
