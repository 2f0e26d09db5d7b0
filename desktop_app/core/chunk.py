"""Pages -> chunks of at most N model tokens with overlap, each knowing its page and offsets.

Token counts come from the model's own fast tokenizer (``tokenizers``, no torch), so a chunk
always fits the encoder's window and its character offsets point back into the page text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.extract import Page

SPECIAL_TOKENS_PER_SEQUENCE = 2
BOUNDARY_LOOKBACK = 0.2


@dataclass(frozen=True)
class Chunk:
    page: int
    start: int
    end: int
    text: str
    tokens: int


class Chunker:
    """Cuts page text into windows of ``max_tokens`` tokens that overlap by ``overlap`` tokens."""

    def __init__(self, tokenizer_file: Path, max_tokens: int, overlap: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_tokens = max_tokens
        self.overlap = overlap

    def chunk(self, pages: list[Page]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for page in pages:
            chunks.extend(self.chunk_page(page))
        return chunks

    def chunk_page(self, page: Page) -> list[Chunk]:
        offsets = self.tokenizer.encode(page.text, add_special_tokens=False).offsets
        if not offsets:
            return []
        chunks: list[Chunk] = []
        first = 0
        while first < len(offsets):
            last = min(first + self.max_tokens, len(offsets))
            if last < len(offsets):
                last = self.sentence_end(page.text, offsets, first, last)
            start, end = offsets[first][0], offsets[last - 1][1]
            chunks.append(Chunk(page.number, start, end, page.text[start:end], last - first))
            if last >= len(offsets):
                break
            first = max(last - self.overlap, first + 1)
        return chunks

    @staticmethod
    def sentence_end(text: str, offsets: list[tuple[int, int]], first: int, last: int) -> int:
        """Pull the window's end back to just after a sentence or line end, if one is near."""
        floor = last - int((last - first) * BOUNDARY_LOOKBACK)
        for index in range(last - 1, max(floor, first + 1) - 1, -1):
            token_end = offsets[index][1]
            if text[token_end - 1:token_end] in (".", "!", "?", "\n") or text[token_end:token_end + 1] == "\n":
                return index + 1
        return last
