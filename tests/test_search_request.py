"""The one place the CLI's flags and the HTTP API's JSON become a search."""

from __future__ import annotations

import os

import pytest

from desktop_app.core.config import Weights
from desktop_app.core.errors import UsageError
from desktop_app.core.search.request import search_request


def test_weights_as_text_or_numbers_give_the_same_request() -> None:
    as_text = search_request("wing", weights="0.5,0,0.2,0.3")
    as_numbers = search_request("wing", weights=[0.5, 0, 0.2, 0.3])
    assert as_text == as_numbers
    assert as_text.weights == Weights(0.5, 0.0, 0.2, 0.3)


def test_a_colbert_weight_turns_colbert_on_unless_told_otherwise() -> None:
    assert search_request("wing", weights=[0.4, 0.3, 0.3]).colbert is True
    assert search_request("wing", weights=[0.4, 0.3, 0.3], colbert=False).colbert is False
    assert search_request("wing", weights=[0.5, 0, 0, 0.5]).colbert is None


def test_filters_take_one_value_or_a_list_and_relative_folders_lie_under_the_roots(tmp_path) -> None:
    request = search_request("wing", filters={"ext": "pdf", "in": ["reports"], "after": "2024-01-01"},
                             roots=[str(tmp_path)])
    assert request.filters.extensions == (".pdf",)
    assert request.filters.folders == (os.path.join(str(tmp_path), "reports"),)
    assert request.filters.after is not None


@pytest.mark.parametrize(("options", "message"), [
    ({"mode": "fuzzy"}, "unknown mode"),
    ({"weights": [1, 2]}, "D,S,C"),
    ({"weights": [-1, 0, 0]}, ">= 0"),
    ({"filters": {"colour": "red"}}, "unknown filter 'colour'"),
    ({"filters": {"after": "yesterday"}}, "YYYY-MM-DD"),
])
def test_malformed_values_are_usage_errors(options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        search_request("wing", **options)
