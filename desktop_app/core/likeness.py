"""How alike two files' texts are: MinHash signatures of word shingles, and the bands that find
likely copies without comparing every pair.

A file's text becomes the set of its overlapping ``SHINGLE_WORDS``-word sequences (lower case, words
only, so line breaks, punctuation and a PDF's layout do not matter); MinHash (datasketch) keeps
``PERMUTATIONS`` numbers from which the Jaccard similarity of two such sets is estimated. Files at or
above ``NEAR_COPY`` are copies of each other ("the same report, one sentence changed"). The threshold,
the shingle length and the bands were tuned on Cranfield and checked on CACM (bench/copies.py,
bench/README.md "Copies": at 0.6 no two different Cranfield or CACM documents are grouped, only
the collection's own duplicate versions, while a one-sentence edit of a report-length text stays
above it 97-100 % of the time; a third of a three-sentence abstract changed is not a copy).

Bands (locality-sensitive hashing): the signature is cut into ``BANDS`` runs of ``ROWS`` numbers and
each run hashed to one key; two files share a key with probability 1 - (1 - J^ROWS)^BANDS, so
candidates at the threshold are all but certain to be found, and each is then checked on its
whole signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import regex

SHINGLE_WORDS = 3
PERMUTATIONS = 128
BANDS, ROWS = 42, 3  # 126 of the 128 numbers
NEAR_COPY = 0.6
# Texts shorter than this many words are grouped only when byte-identical: two short notes that
# share a greeting are not copies.
MIN_WORDS = 40
# A signature reads this much of a file's text: enough to tell copies apart, cheap for a 200 MB log.
MAX_CHARS = 2_000_000
SEED = 1
_WORD = regex.compile(r"\w+")


def signature(text: str) -> bytes | None:
    """The MinHash signature of ``text`` (``PERMUTATIONS`` uint32s), or None when it is too short to tell."""
    words = [word.lower() for word in _WORD.findall(text[:MAX_CHARS])]
    if len(words) < MIN_WORDS:
        return None
    shingles = {" ".join(words[i:i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}
    from datasketch import MinHash  # here, not at the top: it imports scipy, 0.3 s of every search process

    minhash = MinHash(num_perm=PERMUTATIONS, seed=SEED)
    minhash.update_batch(list(shingles))
    return minhash.hashvalues.astype(np.uint32).tobytes()


def head(texts: Iterable[str], limit: int = MAX_CHARS) -> str:
    """The first ``limit`` characters of a document's pages joined, without joining a 200 MB log whole."""
    parts, size = [], 0
    for text in texts:
        parts.append(text[:limit - size])
        size += len(parts[-1])
        if size >= limit:
            break
    return "\n".join(parts)


def similarity(one: bytes, other: bytes) -> float:
    """The estimated Jaccard similarity of the two texts' shingle sets."""
    return float(np.mean(np.frombuffer(one, np.uint32) == np.frombuffer(other, np.uint32)))


def band_keys(signature_bytes: bytes) -> list[int]:
    """One signed 64-bit key per band (SQLite's integer), band number mixed in."""
    values = np.frombuffer(signature_bytes, np.uint32)
    keys = []
    for band in range(BANDS):
        digest = hashlib.blake2b(values[band * ROWS:(band + 1) * ROWS].tobytes(), digest_size=8,
                                 person=band.to_bytes(2, "little")).digest()
        keys.append(int.from_bytes(digest, "little", signed=True))
    return keys
