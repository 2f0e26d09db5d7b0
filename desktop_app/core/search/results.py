"""What a search returns: hits grouped by file, with snippets, the query words each chunk holds,
and the file's time, size and how its meaning was made."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from desktop_app.core import analyze
from desktop_app.core.ingest.extract.base import place_of
from desktop_app.core.storage.records import ChunkRow

TOP_TERMS = 5
TERM_SHARE_OF_BEST = 0.1
SNIPPET_CHARS = 280


@dataclass
class ChunkHit:
    chunk_id: int
    page: int
    start: int
    end: int
    score: float
    scores: dict[str, float | None]
    snippet: str = ""
    terms: list[str] = field(default_factory=list)
    found_by: list[str] = field(default_factory=list)
    ocr: bool = False


@dataclass
class Hit:
    """The best chunk of one file, with the file's other matching chunks folded under it."""

    path: str
    page: int
    score: float
    scores: dict[str, float | None]
    snippet: str
    terms: list[str]
    chunk_id: int
    start: int
    end: int
    more: list[ChunkHit] = field(default_factory=list)
    # The channels whose own top candidates held this chunk; dense alone means "by meaning".
    found_by: list[str] = field(default_factory=list)
    mtime: str = ""  # the file's modification time, ISO 8601 (local time with its offset)
    size: int = 0
    unit: str = "page"  # what ``page`` counts: page, slide, sheet, chapter, message, image
    ocr: bool = False  # the text was read from an image of the page
    pending: bool = False  # found by its words; its vectors are not made yet
    without_phrase: bool = False  # ranked after the hits that hold the query's exact phrase, without it
    meaning: str = ""  # why it was ranked without meaning, in words ("meaning pending", ...)
    duplicates: list[str] = field(default_factory=list)  # the file's copies elsewhere (same or nearly the same text)
    duplicates_total: int = 0  # how many copies in all (``duplicates`` names the first 50 or so)

    @property
    def place(self) -> str:
        return place_of(self.unit, self.page)

    def to_dict(self) -> dict[str, object]:
        data = _fields_of(self)
        data["more"] = [_fields_of(chunk) for chunk in self.more]
        return data


@dataclass
class SearchResult:
    query: str
    mode: str
    channels: list[str]
    weights: dict[str, float]
    took_ms: float
    hits: list[Hit]
    # Why there are no hits (a filter, phrase or exclusion removed everything), or why they were
    # ranked otherwise than asked (by words while the model loads).
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        data = _fields_of(self)
        data["hits"] = [hit.to_dict() for hit in self.hits]
        return data


def _fields_of(record: ChunkHit | Hit | SearchResult) -> dict[str, object]:
    """A result record's fields, its lists and dicts copied: what ``dataclasses.asdict`` gives for these
    records (their containers hold plain values), without its deep copy of every value (0.42 ms for a
    10-hit result on a 2-core VM, and a result was copied twice; this takes 0.04 ms)."""
    return {name: value.copy() if isinstance(value, (list, dict)) else value for name, value in vars(record).items()}


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the first occurrence of the best term."""
    position = -1
    for term in terms:
        position = analyze.first_match(text, set(analyze.terms(term)))
        if position >= 0:
            break
    if len(text) <= width:
        return text
    start = 0 if position < 0 else max(0, position - width // 3)
    end = min(len(text), start + width)
    start = max(0, end - width)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > end - 20 else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def meaning_of(row: ChunkRow) -> str:
    """What a hit says when it was ranked by its words alone."""
    if row.meaning == "pending":
        return "meaning pending"
    if row.meaning == "capped":
        return f"meaning: first {row.meaning_cap:,} chunks of this file; this part by its words"
    return ""


class QueryWords:
    """The query's words as a reader sees them, to tell which of them a chunk really contains.

    A word counts for a chunk only if the chunk holds one of its keyword terms (the same
    analysis as the keyword index: stems, folded accents, CJK bigrams), so a hit found by
    meaning alone gets no invented terms. Found words are ranked by their tokens' share of the
    chunk's lexical score (``q_w * d_w``) where the model gave one, else kept in query order;
    words adding under a tenth of the best word's share are left out.
    """

    def __init__(self, text: str, tokens: dict[str, set[int]]) -> None:
        self.words: dict[str, set[str]] = {}
        for word in analyze.words(text):
            if word.terms:
                self.words.setdefault(word.text.lower(), set()).update(word.terms)
        self.tokens = tokens

    def found_in(self, text: str, contribution: dict[int, float]) -> list[str]:
        present = set(analyze.terms(text))
        found = [word for word, terms in self.words.items() if present & terms]
        if contribution:
            share = {w: sum(contribution.get(t, 0.0) for t in self.tokens.get(w, ())) for w in found}
            floor = TERM_SHARE_OF_BEST * max(share.values(), default=0.0)
            found = sorted((w for w in found if share[w] >= floor), key=lambda w: -share[w])
        return found[:TOP_TERMS]


def iso_time(mtime_ns: int) -> str:
    """A file time as ISO 8601 in local time with its UTC offset."""
    return datetime.fromtimestamp(mtime_ns / 1e9).astimezone().isoformat(timespec="seconds")


def rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v, 6) if v is not None else None) for k, v in values.items()}
