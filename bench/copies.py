"""How alike copies and non-copies are, to set core/likeness.py's NEAR_COPY threshold by measurement.

For every document of a collection (with at least likeness.MIN_WORDS words) three edited copies are
made, each with one sentence changed as people change drafts: one sentence deleted, one replaced by a
sentence of another document, one sentence added. Their estimated Jaccard similarity to the original
is compared with that of every pair of different documents in the collection. A good threshold sits
below nearly every edit and above every pair of different documents; the band step (LSH) must find
the edits as candidates. Each collection is measured as it is (abstracts of a few sentences, where
one sentence is a third of the text) and as reports of 8 documents joined.

    python bench/copies.py                 # Cranfield (tune) and CACM (report)
    python bench/copies.py --collection cacm
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import testsets  # noqa: E402

from desktop_app.core import likeness  # noqa: E402

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
REPORT_DOCUMENTS = 8  # consecutive documents joined: a report-length text (~1,000 words)
MAY_MISS = 0.05
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE.split(text) if s.strip()]


def edits(text: str, other: str, rng: random.Random) -> dict[str, str]:
    """The document with one sentence deleted, replaced (by one of ``other``'s) and added."""
    own, theirs = sentences(text), sentences(other)
    at = rng.randrange(len(own))
    borrowed = rng.choice(theirs)
    return {
        "deleted": " ".join(own[:at] + own[at + 1:]),
        "replaced": " ".join(own[:at] + [borrowed] + own[at + 1:]),
        "added": " ".join(own[:at] + [borrowed] + own[at:]),
    }


def as_reports(collection: testsets.Collection) -> testsets.Collection:
    """Every ``REPORT_DOCUMENTS`` consecutive documents joined into one: copies of reports, not of abstracts."""
    texts = list(collection.documents.values())
    joined = {str(i): " ".join(texts[i:i + REPORT_DOCUMENTS]) for i in range(0, len(texts), REPORT_DOCUMENTS)}
    return testsets.Collection(collection.name, joined, [], {})


def shares_a_band(one: bytes, other: bytes) -> bool:
    return bool(set(likeness.band_keys(one)) & set(likeness.band_keys(other)))


def measure(collection: testsets.Collection, seed: int = 7) -> dict:
    rng = random.Random(seed)
    texts = [t for t in collection.documents.values() if len(sentences(t)) >= 2]
    started = time.perf_counter()
    signatures = {i: likeness.signature(t) for i, t in enumerate(texts)}
    took = time.perf_counter() - started
    kept = [i for i, s in signatures.items() if s is not None]
    edited: dict[str, list[float]] = {"deleted": [], "replaced": [], "added": []}
    found = 0
    for i in kept:
        other = texts[rng.choice([j for j in rng.sample(kept, 3) if j != i] or [kept[0]])]
        for kind, text in edits(texts[i], other, rng).items():
            edited_signature = likeness.signature(text)
            if edited_signature is None:
                continue
            edited[kind].append(likeness.similarity(signatures[i], edited_signature))
            found += shares_a_band(signatures[i], edited_signature)
    matrix = np.stack([np.frombuffer(signatures[i], np.uint32) for i in kept])
    pair_max = []
    above = {t: 0 for t in THRESHOLDS}
    for row in range(len(kept) - 1):
        alike = (matrix[row + 1:] == matrix[row]).mean(axis=1)
        pair_max.append(float(alike.max()))
        for threshold in THRESHOLDS:
            above[threshold] += int((alike >= threshold).sum())
    edits_all = np.array([v for values in edited.values() for v in values])
    return {
        "documents": len(kept), "pairs": len(kept) * (len(kept) - 1) // 2,
        "signature_ms": 1000 * took / len(texts),
        "edit_min": float(edits_all.min()), "edit_p1": float(np.percentile(edits_all, 1)),
        "edit_median": float(np.median(edits_all)),
        "by_kind_min": {kind: min(values) for kind, values in edited.items()},
        "edits_below": {t: int((edits_all < t).sum()) for t in THRESHOLDS}, "edits": len(edits_all),
        "band_recall": found / len(edits_all),
        "pairs_above": above, "pair_p999": float(np.percentile(pair_max, 99.9)), "pair_max": max(pair_max),
    }


def report(name: str, figures: dict) -> None:
    print(f"## {name}: {figures['documents']} documents, {figures['edits']} one-sentence edits, "
          f"{figures['pairs']:,} pairs of different documents; signature {figures['signature_ms']:.2f} ms/document")
    print(f"edits: min {figures['edit_min']:.3f}, 1st percentile {figures['edit_p1']:.3f}, "
          f"median {figures['edit_median']:.3f}; min by kind {figures['by_kind_min']}")
    print(f"edits that share a band with their original (LSH candidates): {figures['band_recall']:.4f}")
    print(f"different documents: most alike pair {figures['pair_max']:.3f}")
    print("| threshold | edits missed | pairs of different documents grouped |")
    print("|---|---|---|")
    for threshold in THRESHOLDS:
        print(f"| {threshold} | {figures['edits_below'][threshold]} of {figures['edits']} | "
              f"{figures['pairs_above'][threshold]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", choices=("cranfield", "cacm"), action="append")
    args = parser.parse_args(argv)
    status = 0
    for folder in testsets.discover():
        collection = testsets.load(folder)
        if args.collection and collection.name not in args.collection:
            continue
        report(collection.name, measure(collection))
        figures = measure(as_reports(collection))
        report(f"{collection.name} as reports of {REPORT_DOCUMENTS} documents", figures)
        if figures["edits_below"][likeness.NEAR_COPY] > MAY_MISS * figures["edits"] or figures["band_recall"] < 0.99:
            print(f"MISSED: more than {MAY_MISS:.0%} of one-sentence edits of reports fall below "
                  f"NEAR_COPY={likeness.NEAR_COPY}, or more than 1% escape the bands")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
