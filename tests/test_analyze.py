"""The keyword analyzer: the same terms for documents and queries, in every script."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.core import analyze


def marked(text: str, query: str) -> list[str]:
    return [text[start:end] for start, end in analyze.highlight_spans(text, set(analyze.terms(query)))]


def test_english_is_stemmed_and_stop_words_dropped() -> None:
    assert analyze.terms("What articles exist on the operating systems?") == [
        "what", "articl", "exist", "oper", "system"]


def test_diacritics_and_case_fold_so_resume_finds_resume() -> None:
    assert analyze.terms("Résumé") == analyze.terms("resume") == analyze.terms("RESUME")
    assert analyze.terms("Ἀθῆναι") == analyze.terms("αθηναι")


def test_cyrillic_greek_and_arabic_words_are_terms() -> None:
    assert analyze.terms("Москва — столица России") == ["москва", "столица", "россии"]
    assert analyze.terms("Η Αθήνα είναι η πρωτεύουσα") == ["αθηνα", "ειναι", "πρωτευουσα"]
    # Arabic vowel marks are combining characters: the word stays one word, marks folded away.
    assert analyze.terms("عَرَبِيّ") == analyze.terms("عربي") == ["عربي"]


def test_cjk_runs_become_bigrams_so_a_word_inside_a_run_matches() -> None:
    assert analyze.terms("東京都に住む") == ["東京", "京都", "都に", "に住", "住む"]
    assert set(analyze.terms("東京")) <= set(analyze.terms("私は東京都に住んでいます"))
    assert analyze.terms("서울에 살아요") == ["서울", "울에", "살아", "아요"]
    assert analyze.terms("猫") == ["猫"], "a lone character stays a term"


def test_full_width_latin_is_plain_latin() -> None:
    assert analyze.terms("ＰＤＦ１２３") == analyze.terms("pdf123")


def test_highlight_marks_stemmed_forms_in_the_original_text() -> None:
    assert marked("The wings stalled at high angle.", "wing stall") == ["wings", "stalled"]
    assert marked("Mon résumé est prêt", "resume") == ["résumé"]


def test_highlight_marks_a_cjk_word_inside_a_longer_run() -> None:
    assert marked("私は東京都に住んでいます", "東京") == ["東京"]
    assert marked("東京タワーと東京駅", "東京") == ["東京", "東京"]


def test_highlight_never_marks_stop_words() -> None:
    assert marked("the wing of the plane", "the wing") == ["wing"]


def test_highlight_segments_alternate_plain_and_matching_words() -> None:
    segments = analyze.highlight_segments("Wings stall; the wing's lift drops.", ["wing"])
    assert segments == ["", "Wings", " stall; the ", "wing", "'s lift drops."]
    assert "".join(segments) == "Wings stall; the wing's lift drops."


def test_highlight_segments_of_text_without_matches_is_the_text_alone() -> None:
    assert analyze.highlight_segments("nothing here", ["wing"]) == ["nothing here"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["Wings", "wing", "flutter", "Résumé", "the", "x", "naïve", "déjà", "ﬁle",
                                 "東京都", "Δέλτα", "3.14", "don't", "  ", "\n", ",", "ＡＢＣ", "studies"]),
                max_size=30),
       st.sets(st.sampled_from(["wing", "flutter", "resum", "naiv", "東京", "δελτα", "studi", "file", "abc"])))
def test_matches_fast_path_finds_what_word_by_word_analysis_finds(pieces, query_terms) -> None:
    """Latin-only text skips the word-by-word analysis; its spans must stay those of words()."""
    text = " ".join(pieces)
    expected = []
    if len(unicodedata.normalize("NFKC", text)) == len(text) and query_terms:
        for word in analyze.words(text):
            if analyze.CJK.fullmatch(word.text):
                expected += [(word.start + i, word.start + i + len(t)) for i, t in enumerate(word.terms)
                             if t in query_terms]
            elif query_terms.intersection(word.terms):
                expected.append((word.start, word.end))
        assert list(analyze.matches(text, query_terms)) == expected


def test_no_character_below_thais_block_is_in_the_cjk_class() -> None:
    """What the fast CJK check relies on: every script it looks for starts at U+0E00 or later."""
    assert [hex(code) for code in range(0xE00) if analyze.CJK.search(chr(code))] == []
    assert analyze.CJK.search("\u0e01") and analyze.CJK.search("\u3005")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(max_codepoint=0x24F), st.sampled_from(
    "“”‘’—–…€™ﬁ \u00a0\u200f\u0e01\u0e81\u1000\u1780\u3005\u30fc東京都に住むカタカナ서울"
    "\U00020000\ufeff")), max_size=80))
def test_the_fast_cjk_check_answers_as_the_cjk_search_does(text) -> None:
    assert analyze._has_cjk(text) == (analyze.CJK.search(text) is not None)
