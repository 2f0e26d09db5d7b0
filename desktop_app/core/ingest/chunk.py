"""Pages -> chunks of at most N model tokens with overlap, each knowing its page and offsets.

Token counts come from the model's own fast tokenizer (``tokenizers``, no torch), so a chunk
always fits the encoder's window and its character offsets point back into the page text.

A file's first ``meaning_cap`` chunks are the ones the model will encode; the text past them (a
200 MB log, a huge export) is still cut into chunks, by characters and without the tokenizer,
so that every word of it is findable by keyword at reading speed. Long pages are tokenized a
slice at a time, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.ingest.extract import Page

SPECIAL_TOKENS_PER_SEQUENCE = 2
BOUNDARY_LOOKBACK = 0.2
SLICE_CHARS = 200_000  # a page longer than this is tokenized a slice at a time
WORDS_CHUNK_CHARS = 2_000  # words-only chunks (past the meaning cap): about 500 tokens of prose
WORDS_OVERLAP_CHARS = 100  # so a phrase across two of them is still in one
CHARS_PER_TOKEN = 4  # a words-only chunk's token count is estimated, not counted


@dataclass(frozen=True)
class Chunk:
    page: int
    start: int
    end: int
    text: str
    tokens: int
    meaning: bool = True  # the model encodes it (False: past the file's meaning cap, words only)


class Chunker:
    """Cuts page text into windows of ``max_tokens`` tokens that overlap by ``overlap`` tokens; past
    ``meaning_cap`` chunks per file (None: no cap), into words-only windows of characters."""

    def __init__(self, tokenizer_file: Path, max_tokens: int, overlap: int, meaning_cap: int | None = None) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.meaning_cap = meaning_cap

    def chunk(self, pages: list[Page]) -> list[Chunk]:
        chunks: list[Chunk] = []
        budget = self.meaning_cap if self.meaning_cap is not None else float("inf")
        for page in pages:
            if budget <= 0:
                chunks.extend(words_chunks(page.number, page.text, 0))
                continue
            made, stopped_at = self.chunk_page(page, budget)
            chunks.extend(made)
            budget -= len(made)
            if stopped_at < len(page.text):
                chunks.extend(words_chunks(page.number, page.text, stopped_at))
        return chunks

    def chunk_page(self, page: Page, budget: float = float("inf")) -> tuple[list[Chunk], int]:
        """Token windows of ``page`` until ``budget`` chunks are made; returns them and where they stopped."""
        text = page.text
        chunks: list[Chunk] = []
        base = 0
        while base < len(text) and len(chunks) < budget:
            edge = min(len(text), base + SLICE_CHARS)
            final = edge == len(text)
            offsets = [(s + base, e + base) for s, e in
                       self.tokenizer.encode(text[base:edge], add_special_tokens=False).offsets]
            if not offsets:
                break
            first = 0
            while first < len(offsets) and len(chunks) < budget:
                last = min(first + self.max_tokens, len(offsets))
                if last == len(offsets) and not final and first > 0:
                    break  # this window reaches the slice's edge: the next slice starts with it
                if last < len(offsets):
                    last = self.sentence_end(text, offsets, first, last)
                start, end = offsets[first][0], offsets[last - 1][1]
                chunks.append(Chunk(page.number, start, end, text[start:end], last - first))
                if last >= len(offsets):
                    first = len(offsets)
                    break
                first = max(last - self.overlap, first + 1)
            if first >= len(offsets):
                if final:
                    return chunks, len(text)
                base = offsets[-1][1]
            else:
                base = offsets[first][0]
        return chunks, (len(text) if len(chunks) < budget else chunks[-1].end if chunks else 0)

    @staticmethod
    def sentence_end(text: str, offsets: list[tuple[int, int]], first: int, last: int) -> int:
        """Pull the window's end back to just after a sentence or line end, if one is near."""
        floor = last - int((last - first) * BOUNDARY_LOOKBACK)
        for index in range(last - 1, max(floor, first + 1) - 1, -1):
            token_end = offsets[index][1]
            if text[token_end - 1:token_end] in (".", "!", "?", "\n") or text[token_end:token_end + 1] == "\n":
                return index + 1
        return last


def words_chunks(page: int, text: str, start: int) -> list[Chunk]:
    """Words-only chunks of ``text`` from ``start``: windows of about ``WORDS_CHUNK_CHARS`` cut at a
    space or line end, overlapping a little; no tokenizer, so a huge file costs reading speed only."""
    chunks: list[Chunk] = []
    while start < len(text):
        end = min(len(text), start + WORDS_CHUNK_CHARS)
        if end < len(text):
            space = max(text.rfind(" ", start + WORDS_CHUNK_CHARS // 2, end), text.rfind("\n", start, end))
            end = space + 1 if space > start else end
        piece = text[start:end]
        if piece.strip():
            chunks.append(Chunk(page, start, end, piece, max(1, len(piece) // CHARS_PER_TOKEN), meaning=False))
        if end >= len(text):
            break
        start = max(end - WORDS_OVERLAP_CHARS, start + 1)
        while start < end and not text[start - 1].isspace():  # start at a word
            start += 1
    return chunks
