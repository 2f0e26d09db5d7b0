"""Hypothesis strategies for hostile input, shared by the query parser's and the HTTP API's properties.

Text reaches every Unicode category (lone surrogates, NUL, right-to-left marks included) and, now
and then, a megabyte; numbers reach the negative, the huge and the not-a-number. Profiles are fixed
(``derandomize``, no example database), so a run is the same on every machine and in ``make test``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Few examples, the same ones every run, no deadline (a shared CI core is slow now and then).
HOSTILE = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MEGABYTE = 1024 * 1024
# Characters that broke parsers and databases elsewhere: NUL, a lone surrogate (valid in JSON, not in
# UTF-8), right-to-left and zero-width marks, a BOM, the replacement character, a combining mark alone.
NASTY = ("\x00", "\ud800", "\udfff", "\u202e", "\u200f", "\u200b", "\ufeff", "\ufffd", "\u0301", "\n", "\t", "\\",
         '"', "%", "'", "*", "^", "(", ")", ":", "-", "~", "/", "\U0001f600")
# The query syntax's operators, so generated queries reach the filters and not only the words.
OPERATORS = ("ext:", "type:", "in:", "name:", "after:", "before:", "OR", "-", '"', "-\"", "AND", "NEAR", "*",
             "2024-01-31", "0001-01-01", "9999-12-31", "2024-02-30", "~", "..", "/")

any_character = st.characters(exclude_categories=())  # every category, surrogates (Cs) included
any_text = st.text(any_character, max_size=40)
huge_text = st.sampled_from(["a" * MEGABYTE, "\x00" * MEGABYTE, "\u202e" * MEGABYTE, "word " * (MEGABYTE // 5)])
# Short enough for a URL (a client refuses a megabyte of them itself), long enough to pass a field's limit.
short_hostile_text = st.one_of(any_text, st.sampled_from(NASTY), st.lists(st.sampled_from(NASTY)).map("".join),
                               st.sampled_from(["a" * 5000, "\u202e" * 5000]))
hostile_text = st.one_of(short_hostile_text, huge_text)
hostile_number = st.one_of(st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
                           st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 10**30]),
                           st.floats(allow_nan=True, allow_infinity=True))
# Queries built from the syntax's pieces and hostile text, joined by spaces or not at all.
hostile_query = st.one_of(
    hostile_text,
    st.lists(st.one_of(st.sampled_from(OPERATORS), any_text, st.sampled_from(NASTY)), max_size=12).flatmap(
        lambda parts: st.sampled_from([" ", ""]).map(lambda glue: glue.join(parts))),
)
hostile_scalar = st.one_of(st.none(), st.booleans(), hostile_number, hostile_text)
hostile_json = st.recursive(hostile_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)), max_leaves=8)


def assert_readable(message: object) -> None:
    """A message a person can read: one sentence, not a trace, not an echo of a megabyte."""
    assert isinstance(message, str) and message.strip(), message
    assert "Traceback" not in message and len(message) < 3000, message[:300]
