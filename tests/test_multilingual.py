"""Keyword search, snippets and highlighting in CJK, accented and non-Latin text, CLI and window."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import make_folder

from desktop_app.cli import main
from desktop_app.core.storage.store import Store

SENTENCES = {
    "japanese.txt": "私は東京都に住んでいます。毎朝、電車で会社に通っています。",
    "chinese.txt": "北京是中华人民共和国的首都，也是一座历史悠久的文化名城。",
    "korean.txt": "저는 서울에 살고 있습니다. 한국어를 배우는 것은 재미있습니다.",
    "russian.txt": "Москва — столица России и крупнейший город страны.",
    "greek.txt": "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μια από τις αρχαιότερες πόλεις.",
    "arabic.txt": "القاهرة هي عاصمة مصر وأكبر مدينة في العالم العربي.",
    "french.txt": "Veuillez trouver ci-joint mon résumé et ma lettre de motivation pour le poste.",
}
# (query, the one file it must find, the text that must be highlighted in its snippet)
QUERIES = [
    ("東京", "japanese.txt", "東京"),
    ("電車", "japanese.txt", "電車"),
    ("首都", "chinese.txt", "首都"),
    ("서울", "korean.txt", "서울"),
    ("столица", "russian.txt", "столица"),
    ("Αθηνα", "greek.txt", "Αθήνα"),
    ("عاصمة", "arabic.txt", "عاصمة"),
    ("resume", "french.txt", "résumé"),
]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def scripts_corpus(tmp_path: Path) -> Path:
    return make_folder(tmp_path, "scripts", SENTENCES)


@pytest.mark.parametrize(("query", "expected", "marked"), QUERIES)
def test_cli_keyword_search_finds_words_inside_any_script(cli_env, scripts_corpus, query, expected, marked) -> None:
    assert cli("index", str(scripts_corpus))[0] == 0
    code, out, err = cli("search", query, "--mode", "keyword", "--json")
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert [Path(hit["path"]).name for hit in hits] == [expected]
    assert hits[0]["terms"] == [query.lower()]
    assert marked in hits[0]["snippet"]


def test_cli_hybrid_search_also_finds_the_cjk_word(cli_env, scripts_corpus) -> None:
    assert cli("index", str(scripts_corpus))[0] == 0
    code, out, err = cli("search", "東京", "--json", "-k", "3")
    assert code == 0, err
    first = json.loads(out)["hits"][0]
    assert Path(first["path"]).name == "japanese.txt" and first["terms"] == ["東京"]
    assert first["scores"]["keyword"] > 0


def test_an_index_from_an_older_keyword_analyzer_is_re_indexed_at_open(cli_env, scripts_corpus) -> None:
    assert cli("index", str(scripts_corpus))[0] == 0
    store = Store(cli_env / "index.sqlite3")
    store.set_meta("keyword_analyzer", "0")
    store.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')")
    store.close()
    code, out, _ = cli("search", "東京", "--mode", "keyword", "--json")
    assert code == 0 and [Path(h["path"]).name for h in json.loads(out)["hits"]] == ["japanese.txt"]


def test_window_highlights_a_cjk_word_inside_a_sentence(qtbot, tmp_path, lite_model_dir, scripts_corpus) -> None:
    from test_gui import drop, search

    from desktop_app.gui.app import MainWindow
    from desktop_app.gui.results import CardHtmlRole, HitRole
    from desktop_app.gui.settings import open_qsettings

    ini = tmp_path / "settings.ini"
    qsettings = open_qsettings(ini)
    for key, value in (("index_dir", str(tmp_path / "gui-index")), ("model", str(lite_model_dir)), ("device", "cpu")):
        qsettings.setValue(key, value)
    qsettings.sync()
    window = MainWindow(open_qsettings(ini))
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_control.ready, timeout=120_000):
        window.show()
    try:
        with qtbot.waitSignal(window.indexing.finished, timeout=120_000):
            drop(window, scripts_corpus)
        index = window.search_bar.mode.findData("keyword")
        window.search_bar.mode.setCurrentIndex(index)
        search(qtbot, window, "東京")
        first = window.searching.results.index(0)
        assert Path(first.data(HitRole).path).name == "japanese.txt"
        assert '<span style="background-color:#ffe28a;color:#000000;font-weight:600">東京</span>' in first.data(
            CardHtmlRole)
        search(qtbot, window, "resume")
        first = window.searching.results.index(0)
        assert Path(first.data(HitRole).path).name == "french.txt"
        assert ">résumé</span>" in first.data(CardHtmlRole)
    finally:
        window.close()
