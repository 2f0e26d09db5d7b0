"""Fusing the channels' scores into one ranking.

Every candidate has every active channel's exact score (the searcher sees to that), so fusion
never mixes an approximate score with an exact one. Channels are put on a common scale by
dividing by the best candidate's score for that query: raw BGE-M3 scales differ between
channels and between models (the lite model's sparse head is not calibrated).

A mixed index (stage 2 still encoding, or a file past its meaning cap) holds chunks with words
only: such a chunk stands in with the fused score that encoded chunks get at its keyword score
(:func:`stand_in_scores`; bench/README.md, "Search over a mixed index").
"""

from __future__ import annotations

import numpy as np

FUSIONS = ("max", "raw")
# A mixed index's stand-in scores come from a line fitted to at least this many encoded candidates.
MIN_CALIBRATION_PAIRS = 5


def colbert_score(query: np.ndarray, document: np.ndarray) -> float:
    """BGE-M3's late interaction: mean over query tokens of the best document-token match."""
    if len(query) == 0 or len(document) == 0:
        return 0.0
    return float((query @ document.T).max(axis=1).sum() / len(query))


def fuse(scores: dict[str, dict[int, float]], weights: dict[str, float], ids: list[int],
         fusion: str = "max") -> dict[int, float]:
    """Weighted mean of per-channel scores over ``ids``.

    ``max`` divides each channel by its best score among ``ids`` first (scales differ per
    model and channel); ``raw`` is BGE-M3's own ``compute_score`` weighted sum.
    """
    total = sum(weights.values())
    fused = dict.fromkeys(ids, 0.0)
    for channel, weight in weights.items():
        values = scores.get(channel, {})
        scale = 1.0
        if fusion == "max":
            best = max((values.get(i, 0.0) for i in ids), default=0.0)
            if best <= 0:
                continue
            scale = 1.0 / best
        for i in ids:
            fused[i] += weight / total * values.get(i, 0.0) * scale
    return fused


def stand_in_scores(ranked: list[tuple[int, float]], dense: dict[int, float],
                    keyword: dict[int, float], encoded_share: float = 1.0) -> list[tuple[int, float]]:
    """The ranking of a mixed index: a chunk with vectors keeps its fused score; one without them (no
    dense score) stands in with the fused score that chunks with vectors get, in this query, at its
    keyword score: a line fitted by least squares to the (keyword, fused) pairs of the encoded
    candidates that hold a query word, keyword scores taken over the best among the candidates.

    Every candidate's score is then blended with its keyword score by the index's share of encoded
    chunks (``encoded_share``): while few are encoded, a line fitted to few is noisy and words lead.
    So with nothing encoded hybrid ranks exactly as keyword search does, with everything encoded
    exactly as before, and in between a chunk without vectors ranks where an average chunk with
    its words would.
    """
    unencoded = [cid for cid, _ in ranked if cid not in dense]
    if not unencoded:
        return ranked
    best = max(keyword.values(), default=0.0)
    if best <= 0:
        return ranked
    pairs = np.array([(keyword[cid] / best, score) for cid, score in ranked
                      if cid in dense and keyword.get(cid, 0.0) > 0])
    slope, intercept = 1.0, 0.0
    if len(pairs) >= MIN_CALIBRATION_PAIRS and np.ptp(pairs[:, 0]) > 0:
        fitted_slope, fitted_intercept = np.polyfit(pairs[:, 0], pairs[:, 1], 1)
        if fitted_slope > 0:
            slope, intercept = float(fitted_slope), float(fitted_intercept)
    stand_in = {cid: intercept + slope * keyword.get(cid, 0.0) / best for cid in unencoded}
    share = min(max(encoded_share, 0.0), 1.0)
    return sorted(((cid, (1 - share) * keyword.get(cid, 0.0) / best + share * stand_in.get(cid, score))
                   for cid, score in ranked), key=lambda item: -item[1])
