"""BGE-M3's three heads on the body's last hidden state, in numpy on the fp32 weights.

They are FlagEmbedding's own definitions (``_dense_embedding``, ``_sparse_embedding``,
``_colbert_embedding`` followed by its normalisation), written once more without torch so that a CPU
start whose body is a converted graph needs neither torch nor FlagEmbedding: their weights are copied
from the loaded model into a small file beside the conversions the first time the model loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from FlagEmbedding.finetune.embedder.encoder_only.m3.modeling import EncoderOnlyEmbedderM3Model

_EPSILON = 1e-12  # torch.nn.functional.normalize's


@dataclass
class Heads:
    """The pooling and the two linear heads' weights (``weight`` is ``(out, in)``, as torch keeps it)."""

    pooling: str
    sparse_weight: np.ndarray
    sparse_bias: np.ndarray
    colbert_weight: np.ndarray
    colbert_bias: np.ndarray

    @classmethod
    def of_model(cls, model: EncoderOnlyEmbedderM3Model) -> Heads:
        """The heads of FlagEmbedding's loaded BGE-M3 model, in fp32."""

        def array(tensor: object) -> np.ndarray:
            return tensor.detach().float().cpu().numpy().copy()

        return cls(model.sentence_pooling_method, array(model.sparse_linear.weight), array(model.sparse_linear.bias),
                   array(model.colbert_linear.weight), array(model.colbert_linear.bias))

    @classmethod
    def read(cls, path: Path) -> Heads | None:
        """The heads kept in ``path``, or None when there are none (or they cannot be read)."""
        try:
            with np.load(path, allow_pickle=False) as kept:
                return cls(str(kept["pooling"]), kept["sparse_weight"], kept["sparse_bias"], kept["colbert_weight"],
                           kept["colbert_bias"])
        except (OSError, ValueError, KeyError):
            return None

    def write(self, path: Path) -> None:
        """Keep the heads in ``path``, atomically: a killed write leaves no file that is later read."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}.npz")
        try:
            np.savez(temporary, pooling=np.array(self.pooling), sparse_weight=self.sparse_weight,
                     sparse_bias=self.sparse_bias, colbert_weight=self.colbert_weight, colbert_bias=self.colbert_bias)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def __call__(self, hidden: np.ndarray, mask: np.ndarray,
                 colbert: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Unit dense vectors ``(batch, dim)``, token weights ``(batch, tokens)`` and, when asked, unit
        ColBERT vectors ``(batch, tokens - 1, dim)`` (padding rows zero) from the last hidden state."""
        hidden = np.asarray(hidden, dtype=np.float32)
        present = mask.astype(np.float32)
        weights = np.maximum(hidden @ self.sparse_weight.T + self.sparse_bias, 0.0)[..., 0]
        vectors = None
        if colbert:
            vectors = _unit((hidden[:, 1:] @ self.colbert_weight.T + self.colbert_bias) * present[:, 1:, None])
        return _unit(self._pooled(hidden, mask, present)), weights, vectors

    def _pooled(self, hidden: np.ndarray, mask: np.ndarray, present: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "mean":
            return (hidden * present[..., None]).sum(axis=1) / present.sum(axis=1, keepdims=True)
        if self.pooling == "last_token":  # the batches here are padded on the right
            return hidden[np.arange(len(hidden)), mask.sum(axis=1) - 1]
        raise ValueError(f"pooling method {self.pooling} not implemented")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, _EPSILON)
