"""Query syntax and filters: parsed in the core, applied inside candidate generation, through the CLI."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from conftest import make_folder

from desktop_app.cli import main
from desktop_app.core.errors import UsageError
from desktop_app.core.search.query import parse

DAY = 86_400


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def names(out: str) -> list[str]:
    return [Path(hit["path"]).name for hit in json.loads(out)["hits"]]


@pytest.fixture
def library(tmp_path: Path, cli_env) -> Path:
    """Notes and reports of different types, folders and dates, indexed through the CLI."""
    folder = make_folder(tmp_path, "library", {
        "wing-notes.md": "Wing stall notes: the angle of attack grows and lift drops suddenly.",
        "draft-wing.md": "Draft about wing stall and flutter of the wing, not reviewed.",
        "noise.txt": "Jet noise from turbulent mixing; chevrons reduce the noise.",
    })
    reports = make_folder(folder, "reports", {
        "stall-report.txt": "Report: wing stall tests at high angle of attack in the wind tunnel.",
        "budget.txt": "Budget report for the wind tunnel, no aerodynamics here.",
    })
    old = time.mktime((2023, 6, 1, 12, 0, 0, 0, 0, -1))
    for path in (folder / "noise.txt", reports / "budget.txt"):
        os.utime(path, (old, old))
    assert cli("index", str(folder))[0] == 0
    return folder


def test_operators_are_parsed_out_of_the_text() -> None:
    query = parse('wing "angle of attack" -draft -"wind tunnel" a OR b ext:md type:TXT name:Notes '
                  'after:2024-01-01 before:2025-01-01 in:/data/reports')
    assert query.text == 'wing "angle of attack" a b'
    assert query.phrases == ("angle of attack",) and query.excluded == ("draft", "wind tunnel")
    filters = query.filters
    assert filters.extensions == (".md", ".txt") and filters.names == ("notes",)
    assert filters.folders == ("/data/reports",) and filters.after < filters.before


def test_in_relative_to_an_indexed_folder() -> None:
    assert parse("in:reports", ["/home/u/docs", "/mnt/usb"]).filters.folders == (
        "/home/u/docs/reports", "/mnt/usb/reports")


@pytest.mark.parametrize("text, message", [
    ("wing after:yesterday", "after: needs a date as YYYY-MM-DD"),
    ("wing ext:", "ext: needs a value"),
    ("wing before:2024-13-40", "before: needs a date"),
    ("wing after:2025-01-01 before:2024-01-01", "earlier day"),
])
def test_malformed_operators_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(text)


def test_cli_malformed_operator_exits_2(library) -> None:
    code, out, err = cli("search", "wing after:yesterday")
    assert code == 2 and "after: needs a date" in err and out == ""


def test_ext_filter_keeps_k_hits_inside_the_filter(library) -> None:
    code, out, err = cli("search", "wing stall ext:txt", "--json", "-k", "5")
    assert code == 0, err
    assert names(out) and all(name.endswith(".txt") for name in names(out))
    assert names(out)[0] == "stall-report.txt"


def test_hits_with_the_phrase_come_first_in_every_mode_and_the_rest_are_marked(library) -> None:
    for mode in ("hybrid", "dense", "keyword"):
        code, out, err = cli("search", '"angle of attack"', "--mode", mode, "--json")
        assert code == 0, err
        hits = json.loads(out)["hits"]
        holding = [Path(hit["path"]).name for hit in hits if not hit["without_phrase"]]
        assert sorted(holding) == ["stall-report.txt", "wing-notes.md"], mode
        assert [hit["without_phrase"] for hit in hits] == sorted(hit["without_phrase"] for hit in hits), mode


def test_exclusions_drop_hits_that_hold_the_word_or_phrase(library) -> None:
    assert "draft-wing.md" in names(cli("search", "wing stall", "--json")[1])
    shown = names(cli("search", "wing stall -draft", "--json")[1])
    assert "draft-wing.md" not in shown and "wing-notes.md" in shown
    assert "stall-report.txt" not in names(cli("search", 'wing stall -"wind tunnel"', "--json")[1])


def test_in_name_and_dates_filter_by_file(library) -> None:
    assert set(names(cli("search", "report in:reports", "--json")[1])) == {"stall-report.txt", "budget.txt"}
    assert names(cli("search", "wing", "--name", "notes", "--json")[1]) == ["wing-notes.md"]
    old_files = set(names(cli("search", "wind tunnel before:2024-01-01", "--json")[1]))
    assert old_files == {"budget.txt", "noise.txt"}, "the two files dated 2023, whatever they say"
    assert "budget.txt" not in names(cli("search", "wind tunnel after:2024-01-01", "--json")[1])


def test_flags_work_like_operators_and_combine(library) -> None:
    code, out, err = cli("search", '"wing stall" -draft', "--ext", "md", "--after", "2024-01-01", "--json")
    assert code == 0, err
    assert names(out) == ["wing-notes.md"]
    hit = json.loads(out)["hits"][0]
    assert hit["size"] > 0 and hit["mtime"][:4] >= "2024" and "T" in hit["mtime"]


def test_filters_alone_list_the_matching_files_newest_first(library) -> None:
    code, out, err = cli("search", f"in:{library}", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["mode"] == "files" and len(listed["hits"]) == 5
    assert [h["mtime"] for h in listed["hits"]] == sorted((h["mtime"] for h in listed["hits"]), reverse=True)
    assert names(cli("search", "--ext", "md", "--json")[1]) and set(names(cli("search", "--ext", "md", "--json")[1])) \
        == {"wing-notes.md", "draft-wing.md"}


def test_sort_by_name_and_date(library) -> None:
    by_name = names(cli("search", "wing wind noise", "--sort", "name", "--json", "-k", "5")[1])
    assert by_name == sorted(by_name, key=str.lower)
    hits = json.loads(cli("search", "wing wind noise", "--sort", "date", "--json", "-k", "5")[1])["hits"]
    assert [h["mtime"] for h in hits] == sorted((h["mtime"] for h in hits), reverse=True)


def test_an_empty_result_says_which_filter_removed_everything(library) -> None:
    result = json.loads(cli("search", "wing ext:pdf", "--json")[1])
    assert result["hits"] == [] and result["note"] == "no indexed file matches ext:pdf"
    result = json.loads(cli("search", '"attack angle" ext:md', "--json")[1])
    assert result["hits"] and all(hit["without_phrase"] for hit in result["hits"])
    assert 'no indexed text holds the phrase "attack angle" among the files that match ext:md' in result["note"]
    code, out, _ = cli("search", "wing ext:pdf")
    assert code == 0 and "no indexed file matches ext:pdf" in out


def test_a_filter_matching_few_chunks_still_returns_k_of_them(settings, encoder, tmp_path: Path) -> None:
    """Inside candidate generation: the 3 matching files are found although 200 others rank higher."""
    from desktop_app.core.backends.local.index import LocalIndex
    from desktop_app.core.ingest.indexer import Indexer
    from desktop_app.core.search.query import Filters
    from desktop_app.core.search.searcher import Searcher

    many = {f"stall{i:03d}.txt": f"Wing stall study {i}: angle of attack and lift." for i in range(200)}
    many.update({f"rare{i}.md": f"A note {i} that mentions gardening and once the wing." for i in range(3)})
    folder = make_folder(tmp_path, "many", many)
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([folder])
    searcher = Searcher(index, encoder)
    for mode in ("hybrid", "dense", "sparse", "keyword"):
        hits = searcher.search("wing stall angle of attack", k=3, mode=mode, filters=Filters(extensions=(".md",))).hits
        assert sorted(Path(h.path).name for h in hits) == ["rare0.md", "rare1.md", "rare2.md"], mode
    index.close()


def test_more_like_this_from_the_cli(library) -> None:
    code, out, err = cli("search", "--like", str(library / "wing-notes.md"), "--json", "-k", "3")
    assert code == 0, err
    result = json.loads(out)
    assert result["mode"] == "like" and "wing-notes.md" not in names(out)
    assert names(out)[0] in ("stall-report.txt", "draft-wing.md"), "the other wing-stall passages come first"
    code, out, err = cli("search", "--like", str(library / "wing-notes.md") + ":1", "--json")
    assert code == 0 and names(out)
    code, _, err = cli("search", "--like", str(library / "missing.md"))
    assert code == 2 and "is not in the index" in err
    code, _, err = cli("search", "--like", str(library / "wing-notes.md") + ":9")
    assert code == 2 and "page 9" in err


def test_files_lists_every_indexed_file_with_its_state(library) -> None:
    (library / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    assert cli("index", str(library))[0] == 0
    code, out, err = cli("files", "--json")
    assert code == 0, err
    files = {Path(f["path"]).name: f for f in json.loads(out)["files"]}
    assert len(files) == 6 and files["wing-notes.md"]["state"] == "indexed"
    assert files["wing-notes.md"]["chunks"] == 1 and files["wing-notes.md"]["size"] > 0
    assert files["broken.pdf"]["state"] == "failed" and files["broken.pdf"]["reason"]
    failed = json.loads(cli("files", "--failed", "--json")[1])["files"]
    assert [Path(f["path"]).name for f in failed] == ["broken.pdf"]
    assert [Path(f["path"]).name for f in json.loads(cli("files", "REPORTS", "--json")[1])["files"]] == [
        "budget.txt", "stall-report.txt"]
    code, out, _ = cli("files", "noise")
    assert code == 0 and "noise.txt" in out and "indexed" in out


def test_files_marks_an_unplugged_folder_offline(library) -> None:
    library.rename(library.with_name("elsewhere"))
    states = {f["state"] for f in json.loads(cli("files", "--json")[1])["files"]}
    assert states == {"offline"}


def test_the_file_list_pages_stay_fast_with_100k_files(tmp_path: Path, settings) -> None:
    from desktop_app.core.engine import Engine
    from desktop_app.core.storage.store import Store

    (tmp_path / "index").mkdir()
    store = Store(tmp_path / "index" / "index.sqlite3")
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO files(path, size, mtime_ns, sha256, status, chunks, settings, indexed_at) "
            "VALUES (?, 100, 1, 'x', 'indexed', 1, '{}', 0)",
            [(f"/archive/{i % 100:02d}/report-{i:06d}.txt",) for i in range(100_000)])
    store.close()
    engine = Engine.open(settings.with_(index_dir=tmp_path / "index"), with_model=False)
    try:
        for offset, text in ((0, ""), (99_500, ""), (0, "report-0999")):
            started = time.perf_counter()
            page = engine.files(text, offset=offset, limit=500)
            assert page and time.perf_counter() - started < 1.0, (offset, text, time.perf_counter() - started)
        assert len(engine.files("report-0999", limit=500)) == 100
    finally:
        engine.close()


def test_exclusions_alone_block_chunks_without_listing_every_chunk(library, monkeypatch) -> None:
    """``wing -draft`` blocks the draft's chunks; it must not read every chunk id of the index
    (about a second at 1M chunks) to subtract them."""
    from desktop_app.core.storage.store import Store

    def refuse(self: Store) -> None:
        raise AssertionError("listed every chunk id for an exclusion")

    monkeypatch.setattr(Store, "all_chunk_ids", refuse)
    for mode in ("hybrid", "dense", "keyword", "sparse"):
        code, out, err = cli("search", "wing stall -draft", "--mode", mode, "--json")
        assert code == 0, err
        assert "draft-wing.md" not in names(out) and "wing-notes.md" in names(out), mode


def test_one_quoted_word_among_others_is_ranked_not_required() -> None:
    from desktop_app.core.search.query import parse

    assert parse('how can a module "match" the contexts it is used in').phrases == ()
    assert parse('"matches"').phrases == ("matches",), "a quoted word alone is what the user asks for"
    assert parse('"angle of attack" of a wing').phrases == ("angle of attack",)
