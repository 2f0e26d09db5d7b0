"""Hostile input to the query syntax and to a search request, below any front-end (the CLI passes argv
straight here): any text parses or is a readable usage error, never another exception, and an engine
searched with it answers or says why, and still answers a known query afterwards."""

from __future__ import annotations

import pytest
from hostile import HOSTILE, MEGABYTE, assert_readable, hostile_number, hostile_query, hostile_text
from hypothesis import example, given
from hypothesis import strategies as st

from desktop_app.core.errors import UsageError
from desktop_app.core.search.query import Query
from desktop_app.core.search.request import SearchRequest, search_request
from desktop_app.core.search.searcher import validate_query

ROOTS = ["/home/someone/Documents", "C:\\Users\\someone"]


@HOSTILE
@given(hostile_query)
@example("after:0001-01-01")  # the year before year 1 starts in most time zones
@example("in:/a\x00b name:\ud800 ext:\u202e")
@example("a" * MEGABYTE)
def test_any_text_parses_or_is_a_readable_usage_error(text: str) -> None:
    try:
        parsed = validate_query(text, roots=ROOTS)
    except UsageError as error:
        assert_readable(str(error))
        return
    assert isinstance(parsed, Query)


@HOSTILE
@given(weights=st.one_of(st.none(), hostile_text, st.lists(hostile_number, max_size=5)),
       filters=st.dictionaries(st.sampled_from(["ext", "in", "name", "after", "before"]),
                               st.one_of(st.none(), hostile_text, st.lists(hostile_text, max_size=3)), max_size=5))
@example(weights=[1e308, 1e308, 1e308], filters={})
@example(weights="nan,0,0", filters={"before": "0001-01-01"})
def test_any_weights_and_filters_make_a_request_or_a_readable_usage_error(weights: object, filters: dict) -> None:
    try:
        request = search_request("wing", weights=weights, filters=filters, roots=ROOTS)
    except UsageError as error:
        assert_readable(str(error))
        return
    assert isinstance(request, SearchRequest)


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_an_engine_searched_with_any_text_answers_or_says_why_and_still_answers(aero_engine, mode: str) -> None:
    """Through the parser into the channels (FTS5 and BM25 for words, the model for meaning): a query the
    parser lets through must not break the backend's own syntax or encoding."""

    @HOSTILE
    @given(hostile_query)
    @example("\ud800 wing")
    @example('"wing" OR "')
    @example("wing* NEAR(stall) ^lift")
    def search(text: str) -> None:
        try:
            result = aero_engine.search(text, k=3, mode=mode)
        except UsageError as error:
            assert_readable(str(error))
            return
        assert isinstance(result.to_dict()["hits"], list)

    search()
    hits = aero_engine.search("how do wings stall", k=1, mode=mode).hits
    assert hits and hits[0].path.endswith("stall.txt")


def test_a_day_the_clock_cannot_count_is_said_to_be_so_not_to_be_malformed() -> None:
    """``after:0001-01-01`` is a well-formed date whose midnight falls in year 0 (before Python's calendar)."""
    with pytest.raises(UsageError, match="further back or ahead than this computer's clock can count"):
        validate_query("wing after:0001-01-01")
