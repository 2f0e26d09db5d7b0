"""How alike two files' texts are: MinHash signatures of word shingles, and the bands that find
likely copies without comparing every pair.

A file's text becomes the set of its overlapping ``SHINGLE_WORDS``-word sequences (lower case, words
only, so line breaks, punctuation and a PDF's layout do not matter); MinHash keeps ``PERMUTATIONS``
numbers from which the Jaccard similarity of two such sets is estimated. Files at or
above ``NEAR_COPY`` are copies of each other ("the same report, one sentence changed"). The threshold,
the shingle length and the bands were tuned on Cranfield and checked on CACM (bench/copies.py,
bench/README.md "Copies": at 0.6 no two different Cranfield or CACM documents are grouped, only
the collection's own duplicate versions, while a one-sentence edit of a report-length text stays
above it 97-100 % of the time; a third of a three-sentence abstract changed is not a copy).

The MinHash is datasketch 2's default ("affine32": SHA-1's first 32 bits, the MurmurHash3 finalizer,
then ``a * h + b`` mod 2**32 with odd ``a``), written out here and held equal to it by a test: the
signatures are stored, so a library upgrade must not change them (datasketch 1.x made other numbers,
and its range ``<3`` allowed both), and importing datasketch imports scipy, 1.4 s that a terminal's
``index`` spent holding the writer lock.

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
_SHINGLES_AT_ONCE = 8192  # bounds the shingles x permutations matrix (32 MB) for a long text


def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters for ``SEED``: odd multipliers ``a`` and offsets ``b``."""
    numbers = np.random.RandomState(SEED)
    a = numbers.randint(0, 1 << 31, PERMUTATIONS, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = numbers.randint(0, 1 << 32, PERMUTATIONS, dtype=np.uint32)
    return a, b


_A, _B = _permutations()


def _premix(hashes: np.ndarray) -> np.ndarray:
    """The MurmurHash3 finalizer on uint32s (wrapping multiplication is the modulo)."""
    hashes = hashes ^ (hashes >> np.uint32(16))
    hashes = hashes * np.uint32(0x85EBCA6B)
    hashes = hashes ^ (hashes >> np.uint32(13))
    hashes = hashes * np.uint32(0xC2B2AE35)
    return hashes ^ (hashes >> np.uint32(16))


def signature(text: str) -> bytes | None:
    """The MinHash signature of ``text`` (``PERMUTATIONS`` uint32s), or None when it is too short to tell."""
    words = [word.lower() for word in _WORD.findall(text[:MAX_CHARS])]
    if len(words) < MIN_WORDS:
        return None
    shingles = list({" ".join(words[i:i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)})
    least = np.full(PERMUTATIONS, np.iinfo(np.uint32).max, dtype=np.uint32)
    for start in range(0, len(shingles), _SHINGLES_AT_ONCE):
        digests = b"".join(hashlib.sha1(shingle).digest()[:4] for shingle in shingles[start:start + _SHINGLES_AT_ONCE])
        hashes = _premix(np.frombuffer(digests, dtype="<u4").astype(np.uint32))
        np.minimum(least, (hashes[:, None] * _A + _B).min(axis=0), out=least)
    return least.tobytes()


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
