"""Stage 2 encodes each text once: a chunk of an exact copy takes the vectors its twin already has,
and equal texts within a batch share one encoding. A folder of copies, or re-indexing one, then
costs the model nothing for the copies (issue 24; tests/test_copies.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from desktop_app.core.model.encoder import Encoder
from desktop_app.core.storage.records import ChunkEncoding, PendingChunk
from desktop_app.core.storage.store import Store


def encode_once(batch: list[PendingChunk], encoder: Encoder, store: Store, colbert: bool, max_length: int,
                checkpoint: Callable[[], None]) -> list[ChunkEncoding]:
    """The batch's vectors, in its order, with ``shared`` set on those not encoded for their own chunk.

    Twins in the store are used only where ``colbert`` is off: the store keeps no ColBERT vectors, and a
    backend that keeps them needs them made.
    """
    twins = {} if colbert else store.encoded_twins([c.chunk_id for c in batch])
    texts = list(dict.fromkeys(c.text for c in batch if c.chunk_id not in twins))
    made = dict(zip(texts, encoder.encode(texts, max_length=max_length, checkpoint=checkpoint,
                                          colbert=colbert))) if texts else {}
    first_of: dict[str, int] = {}
    items = []
    for chunk in batch:
        if chunk.chunk_id in twins:
            items.append(replace(twins[chunk.chunk_id], shared=True))
            continue
        encoding = made[chunk.text]
        shared = first_of.setdefault(chunk.text, chunk.chunk_id) != chunk.chunk_id
        items.append(ChunkEncoding(chunk.chunk_id, encoding.dense, encoding.sparse, encoding.colbert, shared))
    return items
