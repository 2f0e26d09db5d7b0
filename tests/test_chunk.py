"""Token-aware chunking: sizes, overlap and offsets back into the page text."""

from __future__ import annotations

from pathlib import Path

from desktop_app.core.ingest.chunk import Chunker
from desktop_app.core.ingest.extract import Page


def make_chunker(model_dir: Path, max_tokens: int, overlap: int) -> Chunker:
    return Chunker(model_dir / "tokenizer.json", max_tokens, overlap)


def test_chunks_fit_the_token_budget_and_point_back_into_the_page(lite_model_dir: Path) -> None:
    text = " ".join(f"Sentence number {i} talks about supersonic inlets." for i in range(200))
    chunker = make_chunker(lite_model_dir, 64, 8)
    chunks = chunker.chunk([Page(4, text)])
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.page == 4
        assert chunk.text == text[chunk.start:chunk.end]
        assert len(chunker.tokenizer.encode(chunk.text, add_special_tokens=False).ids) <= 64
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_neighbouring_chunks_overlap(lite_model_dir: Path) -> None:
    text = " ".join(f"w{i}" for i in range(400))
    chunks = make_chunker(lite_model_dir, 50, 10).chunk([Page(1, text)])
    for before, after in zip(chunks, chunks[1:]):
        assert after.start < before.end


def test_chunks_prefer_to_end_at_a_sentence(lite_model_dir: Path) -> None:
    text = " ".join("The shock wave stands ahead of the blunt nose." for _ in range(40))
    chunks = make_chunker(lite_model_dir, 60, 0).chunk([Page(1, text)])
    assert all(chunk.text.endswith(".") for chunk in chunks[:-1])


def test_each_page_is_chunked_on_its_own(lite_model_dir: Path) -> None:
    chunks = make_chunker(lite_model_dir, 128, 16).chunk([Page(1, "short first page"), Page(2, "second page")])
    assert [(c.page, c.text) for c in chunks] == [(1, "short first page"), (2, "second page")]


def test_empty_page_gives_no_chunk(lite_model_dir: Path) -> None:
    assert make_chunker(lite_model_dir, 128, 16).chunk([Page(1, "   ")]) == []
