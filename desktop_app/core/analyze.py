"""Text -> keyword terms, the same way for documents, queries and highlighting.

FTS5's own tokenizers cannot do what a keyword channel over personal documents needs:
``unicode61`` keeps a run of Chinese or Japanese characters as one token (so 東京 never finds
東京都に住む) and ``porter`` only stems English. So the terms are made here and FTS5 indexes
them as given (its ``ascii`` tokenizer only splits on the spaces between them):

- NFKC first (full-width Latin and digits become plain ones), then words are ``\\w+`` runs;
- Chinese, Japanese, Korean (and Thai, Lao, Khmer, Burmese) runs become overlapping character bigrams (a lone character
  stays a unigram), the usual way to index scripts without spaces between words;
- other words lose their diacritics and case ("Résumé" -> "resume"; Cyrillic, Greek and
  Arabic keep their letters), single characters and Lucene's 33 English stop words are dropped,
  and the rest go through the English Snowball stemmer ("articles" -> "articl").

That is the BM25 reference's analysis (bm25s with English stop words and Snowball). Changing
any step changes the stored terms: bump ``ANALYZER_VERSION`` and the store re-indexes them.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

import regex
import snowballstemmer

if TYPE_CHECKING:
    import numpy as np

ANALYZER_VERSION = "1"
# The ``regex`` package's \w follows Unicode: it keeps combining marks inside a word (Arabic
# vowels, Devanagari signs), where the standard library's \w splits the word at each mark.
WORD = regex.compile(r"\w+")
# Scripts written without spaces between words: Chinese, Japanese (with 々 and ー), Korean's
# Hangul (spaced, but with particles glued on) and the Southeast Asian scripts.
CJK = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u3005-\u3007\u30fc]+"
)
# Every script in ``CJK`` lies at or above Thai's block (U+0E00), so a text whose characters are all below it
# holds no CJK run. The standard library finds such characters 10x faster than ``CJK.search`` scans a
# text, and most text has none (or a few quotes and dashes), so the scan is skipped or starts there.
_AT_OR_ABOVE_THAI = re.compile("[\u0e00-\U0010ffff]")
# Lucene's English stop set, as bm25s uses it: function words only, so "what" or "which"
# still count (their low IDF keeps them from mattering much).
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they",
    "this", "to", "was", "will", "with",
})
_STEMMER = snowballstemmer.stemmer("english")


@dataclass(frozen=True)
class Word:
    """One word of a text: where it is, as written, and the terms it stands for (maybe none)."""

    start: int
    end: int
    text: str
    terms: tuple[str, ...]


def _has_cjk(text: str) -> bool:
    """Whether ``text`` holds a character of ``CJK`` (what ``CJK.search(text)`` answers, faster)."""
    if text.isascii():
        return False
    return any(CJK.match(text, high.start()) for high in _AT_OR_ABOVE_THAI.finditer(text))


def fold(word: str) -> str:
    """Lower case without diacritics: "Résumé" -> "resume", "Ἀθῆναι" -> "αθηναι"."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@functools.lru_cache(maxsize=200_000)
def _latin_terms(word: str) -> tuple[str, ...]:
    folded = fold(word)
    if len(folded) < 2 or folded in STOP_WORDS:
        return ()
    return (_STEMMER.stemWord(folded),)


def _cjk_terms(run: str) -> tuple[str, ...]:
    if len(run) == 1:
        return (run,)
    return tuple(run[i:i + 2] for i in range(len(run) - 1))


def words(text: str) -> Iterator[Word]:
    """Every word of ``text`` with its offsets in ``text`` and its terms.

    CJK runs inside a word (Japanese mixes kanji, kana and Latin) are words of their own.
    """
    normal = unicodedata.normalize("NFKC", text)
    # NFKC may change lengths (ligatures, full-width forms); offsets then refer to the
    # normalised text, which is only used for highlighting when the lengths agree.
    for match in WORD.finditer(normal):
        token, offset, position = match.group(), match.start(), 0
        for cjk in CJK.finditer(token):
            if cjk.start() > position:
                yield _latin_word(token[position:cjk.start()], offset + position)
            yield Word(offset + cjk.start(), offset + cjk.end(), cjk.group(), _cjk_terms(cjk.group()))
            position = cjk.end()
        if position < len(token):
            yield _latin_word(token[position:], offset + position)


def _latin_word(text: str, start: int) -> Word:
    return Word(start, start + len(text), text, _latin_terms(text))


def terms(text: str) -> list[str]:
    """The terms of ``text`` in order (what FTS5 indexes)."""
    normal = unicodedata.normalize("NFKC", text)
    if not _has_cjk(normal):  # the common case, 5x faster than going through words()
        return [term for word in WORD.findall(normal) for term in _latin_terms(word)]
    return [term for word in words(normal) for term in word.terms]


def keyword_terms(text: str, path: str) -> list[str]:
    """What the keyword channel indexes of a chunk: its terms and its file name's (without the suffix)."""
    return terms(text) + terms(PurePath(path).stem)


def index_text(text: str) -> str:
    """The terms of ``text`` as one space-separated string for FTS5."""
    return " ".join(terms(text))


def highlight_spans(text: str, query_terms: set[str]) -> list[tuple[int, int]]:
    """(start, end) of the words of ``text`` that share a term with the query, in order.

    A Latin word matches by its stem ("wings" for "wing"); in a CJK run, the characters of
    each matching bigram are marked and touching marks are merged, so 東京 lights up inside
    東京都に住む.
    """
    return _merge(list(matches(text, query_terms)))


def highlight_segments(text: str, hit_terms: list[str]) -> list[str]:
    """``text`` cut at the words that match ``hit_terms`` as the keyword index matches them:
    plain, match, plain, ... (always odd in length). Front-ends escape and style the pieces their own way;
    no offsets cross to them, since Python's code points and JavaScript's UTF-16 units differ."""
    pieces, last = [], 0
    for start, end in highlight_spans(text, set(terms(" ".join(hit_terms)))):
        pieces += [text[last:start], text[start:end]]
        last = end
    return [*pieces, text[last:]]


def first_match(text: str, query_terms: set[str]) -> int:
    """Offset of the first word of ``text`` that shares a term with the query, or -1."""
    return next((start for start, _ in matches(text, query_terms)), -1)


def matches(text: str, query_terms: set[str]) -> Iterator[tuple[int, int]]:
    """The spans of :func:`highlight_spans`, unmerged, found lazily."""
    if not query_terms:
        return
    normal = unicodedata.normalize("NFKC", text)
    if len(normal) != len(text):
        # NFKC changed lengths (ligatures, some compatibility forms): analyse word by word
        # so the offsets stay those of ``text``.
        for match in WORD.finditer(text):
            if query_terms.intersection(terms(match.group())):
                yield match.span()
        return
    if not _has_cjk(normal):  # the common case: every word is one Latin word (3x faster than words())
        for match in WORD.finditer(normal):
            if query_terms.intersection(_latin_terms(match.group())):
                yield match.span()
        return
    for word in words(text):
        if CJK.fullmatch(word.text):
            for i, term in enumerate(word.terms):
                if term in query_terms:
                    yield word.start + i, word.start + i + len(term)
        elif query_terms.intersection(word.terms):
            yield word.start, word.end


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# BM25's term-frequency saturation, the same for both backends' keyword channels.
K1, B = 1.2, 0.75


def saturation(frequency: float | np.ndarray, length: float | np.ndarray, mean_length: float) -> float | np.ndarray:
    """BM25's term-frequency part: ``tf (k1 + 1) / (tf + k1 (1 - b + b length / mean length))``."""
    return frequency * (K1 + 1) / (frequency + K1 * (1 - B + B * length / max(mean_length, 1e-9)))


def fts5_idf(chunks: int, having: int) -> float:
    """FTS5's ``bm25()`` IDF: ``log((N - n + 0.5) / (n + 0.5))``, 1e-6 where that is not positive (a term
    in half the chunks or more adds next to nothing)."""
    idf = math.log((chunks - having + 0.5) / (having + 0.5))
    return idf if idf > 0 else 1e-6


def lucene_idf(chunks: int, having: int) -> float:
    """The IDF Qdrant's ``idf`` modifier applies (Lucene's): ``log(1 + (N - n + 0.5) / (n + 0.5))``."""
    return math.log(1 + (chunks - having + 0.5) / (having + 0.5))
