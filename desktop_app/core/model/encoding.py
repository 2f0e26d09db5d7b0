"""What the model gives for one text, shared by the encoder and whatever compares its outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Encoding:
    """One text's BGE-M3 signals: unit dense vector, token-id -> weight, ColBERT vectors."""

    dense: np.ndarray
    sparse: dict[int, float]
    colbert: np.ndarray | None = None
