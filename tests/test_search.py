"""Search behaviour: modes, keyword phrases, grouping per file, snippets, terms, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.backends.local.source import fts_query
from desktop_app.core.config import Weights
from desktop_app.core.errors import UsageError
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.search.results import make_snippet
from desktop_app.core.search.searcher import Searcher


@pytest.fixture
def searcher(settings, encoder, aero_corpus):
    long_text = " ".join(f"Paragraph {i} is about landing gear loads." for i in range(150))
    (aero_corpus / "gear.txt").write_text(long_text + " The landing gear shimmy damper is tuned last.")
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings.with_(chunk_tokens=64, chunk_overlap=8)).run([aero_corpus])
    yield Searcher(index, encoder)
    index.close()


def test_hybrid_finds_the_document_by_meaning(searcher) -> None:
    result = searcher.search("what makes an aircraft wing lose lift", k=3)
    assert result.hits[0].path.endswith("stall.txt")
    assert result.mode == "hybrid" and result.channels == ["dense", "keyword"], "the lite model's default"


def test_hits_are_grouped_per_file_with_more_chunks_folded(searcher) -> None:
    hits = searcher.search("landing gear loads", k=5).hits
    paths = [h.path for h in hits]
    assert len(paths) == len(set(paths))
    gear = next(h for h in hits if h.path.endswith("gear.txt"))
    assert gear.more and all(m.score <= gear.score for m in gear.more)


def test_rows_are_read_for_the_chunks_shown_not_for_every_candidate(searcher, monkeypatch) -> None:
    """Reading every candidate's row (text and all) was a tenth of a search's CPU; grouping needs only
    their files, and the shown chunks' rows make the hits."""
    read: list[int] = []
    real_rows = searcher.source.rows

    def rows(ids):
        read.extend(ids)
        return real_rows(ids)

    monkeypatch.setattr(searcher.source, "rows", rows)
    hits = searcher.search("landing gear loads", k=2).hits
    shown = [hit.chunk_id for hit in hits] + [more.chunk_id for hit in hits for more in hit.more]
    assert sorted(read) == sorted(shown) and len(shown) < len(searcher.source.paths(list(range(1, 10_000))))


def test_result_dict_is_what_asdict_gives_without_sharing_containers(searcher) -> None:
    """The JSON of `search --json` and the API: the same fields and values as ``dataclasses.asdict``
    (which deep-copied every value, ten times slower), and no list or dict shared with the hits."""
    result = searcher.search("landing gear loads", k=5)
    folded = next(number for number, hit in enumerate(result.hits) if hit.more)
    data = result.to_dict()
    assert data == dataclasses.asdict(result)
    data["hits"][folded]["terms"].append("changed")
    data["hits"][folded]["more"][0]["scores"]["dense"] = -1.0
    hit = result.hits[folded]
    assert "changed" not in hit.terms and hit.more[0].scores["dense"] != -1.0
    json.dumps(data, allow_nan=False)


def test_hit_carries_page_offsets_snippet_and_terms(searcher) -> None:
    hit = searcher.search("shimmy damper", k=1).hits[0]
    assert hit.path.endswith("gear.txt") and hit.page == 1 and hit.end > hit.start
    assert "shimmy" in hit.terms
    assert "shimmy" in hit.snippet.lower()
    assert set(hit.scores) == {"dense", "sparse", "colbert", "keyword"}


def test_keyword_mode_ranks_by_bm25_and_honours_phrases(searcher) -> None:
    hits = searcher.search('"angle of attack"', k=5, mode="keyword").hits
    assert [h.path.rsplit("/", 1)[1] for h in hits] == ["stall.txt"]
    assert hits[0].scores["keyword"] > 0
    assert [h.without_phrase for h in hits] == [False]
    loose = searcher.search('"attack angle"', k=5, mode="keyword").hits  # a phrase no text holds
    assert loose and all(h.without_phrase for h in loose) and loose[0].path.endswith("stall.txt")


def test_keyword_search_matches_file_names(searcher) -> None:
    hits = searcher.search("buckling", k=5, mode="keyword").hits
    assert hits[0].path.endswith("buckling.txt")


def test_keyword_channel_joins_hybrid_fusion_when_weighted(searcher) -> None:
    result = searcher.search("jet noise", k=3, weights=Weights(0.4, 0.3, 0.0, 0.3))
    assert result.channels == ["dense", "sparse", "keyword"]
    assert result.hits[0].path.endswith("noise.txt") and result.hits[0].scores["keyword"] > 0


def test_colbert_mode_reranks_candidates_by_late_interaction(searcher) -> None:
    result = searcher.search("thin shells buckle under compression", k=3, mode="colbert")
    assert result.channels == ["colbert"]
    assert result.hits[0].path.endswith("buckling.txt") and result.hits[0].scores["colbert"] > 0


def test_colbert_stays_out_of_hybrid_on_cpu_unless_asked(searcher) -> None:
    assert "colbert" not in searcher.search("heat shield", k=2).channels
    assert "colbert" in searcher.search("heat shield", k=2, colbert=True).channels


@pytest.mark.parametrize("query, message", [
    ("", "empty"), ("   ", "empty"), ("?!... ---", "no words"), ("x" * 100_000, "too long"),
])
def test_bad_queries_are_usage_errors(searcher, query, message) -> None:
    with pytest.raises(UsageError, match=message):
        searcher.search(query)


def test_bad_k_and_mode_are_usage_errors(searcher) -> None:
    with pytest.raises(UsageError, match="k must be"):
        searcher.search("wing", k=0)
    with pytest.raises(UsageError, match="unknown mode"):
        searcher.search("wing", mode="fuzzy")
    with pytest.raises(UsageError, match="weight 0"):
        searcher.search("wing", weights=Weights(0, 0, 1, 0))


def test_fts_query_uses_analyzed_terms_and_keeps_phrases() -> None:
    assert fts_query('wings "angle of attack" stalling') == '"angl attack" AND ("wing" OR "stall")'
    assert fts_query("o'brien") == '("brien")', "single letters are not terms"
    assert fts_query("system of systems") == '("system" OR "system")', "repeats weigh more, stop words go"
    assert fts_query("the of") == "", "a query of stop words asks FTS5 for nothing"


def test_snippet_centres_on_the_first_term() -> None:
    text = "filler " * 100 + "the damper target " + "tail " * 100
    snippet = make_snippet(text, ["damper"])
    assert "damper" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 290


def test_context_rebuilds_the_page_text_around_a_chunk(searcher) -> None:
    hit = searcher.search("shimmy damper", k=1).hits[0]
    before, text, after = searcher.store.context(hit.chunk_id, chars=200)
    page = Path(hit.path).read_text()
    assert text == page[hit.start:hit.end] and "shimmy damper" in text
    assert before == page[hit.start - 200:hit.start]
    assert after == page[hit.end:hit.end + 200]


def test_a_new_empty_index_answers_with_a_note_not_an_error(settings, encoder) -> None:
    """Found by running the app as a new user: typing before any folder was added crashed the search."""
    index = LocalIndex.open(settings.index_dir, create=True)
    result = Searcher(index, encoder).search("wing", k=3)
    assert result.hits == [] and "empty" in result.note
    index.close()
