"""The CLI contract: exit codes, JSON shapes, help texts and readable errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ascii_locale

from desktop_app.cli import main
from desktop_app.cli.arguments import build_parser
from desktop_app.cli.commands import COMMANDS

HIT_KEYS = {"path", "page", "score", "scores", "snippet", "terms"}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_every_command_has_help_text() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)
    for name, sub in subparsers.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help"


def test_index_then_search_json_contract(cli_env, aero_corpus) -> None:
    code, out, err = cli("index", str(aero_corpus), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {"added", "updated", "unchanged", "removed", "failed", "failures"} <= set(report)
    assert report["added"] == 4 and report["failed"] == 0

    code, out, err = cli("search", "how do wings stall", "--json", "-k", "2")
    assert code == 0, err
    result = json.loads(out)
    assert {"query", "mode", "took_ms", "hits"} <= set(result)
    assert result["query"] == "how do wings stall" and result["mode"] == "hybrid"
    assert len(result["hits"]) == 2
    for hit in result["hits"]:
        assert set(hit) >= HIT_KEYS
        assert {"dense", "sparse", "colbert"} <= set(hit["scores"])
    assert result["hits"][0]["path"].endswith("stall.txt")


def test_reindex_json_counts_unchanged_modified_and_deleted(cli_env, aero_corpus) -> None:
    assert cli("index", str(aero_corpus))[0] == 0
    (aero_corpus / "heat.txt").write_text("Regenerative cooling of rocket engine nozzles.")
    (aero_corpus / "noise.txt").unlink()
    (aero_corpus / "new.md").write_text("# Icing\nIce accretion on the leading edge.")
    code, out, _ = cli("index", str(aero_corpus), "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["added"], report["updated"], report["unchanged"], report["removed"]) == (1, 1, 2, 1)


def test_index_json_lists_failures_with_reasons(cli_env, aero_corpus) -> None:
    (aero_corpus / "garbage.txt").write_bytes(b"\x00\xff" * 500)
    code, out, _ = cli("index", str(aero_corpus), "--json")
    report = json.loads(out)
    assert code == 0 and report["failed"] == 1
    assert report["failures"][0]["path"].endswith("garbage.txt")
    assert "binary" in report["failures"][0]["reason"]


def test_status_json_shape(cli_env, aero_corpus) -> None:
    cli("index", str(aero_corpus))
    code, out, _ = cli("status", "--json")
    status = json.loads(out)
    assert code == 0
    assert status["files"] == 4 and status["chunks"] == 4 and status["dim"] == 384
    assert status["model"].endswith("bge-m3-lite") and status["disk_bytes"] > 0
    assert status["roots"] == [{"path": str(aero_corpus), "files": 4, "chunks": 4, "online": True}]


def test_batch_queries_print_one_json_object_per_line(cli_env, aero_corpus, tmp_path) -> None:
    cli("index", str(aero_corpus))
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\twing stall\nq2\tjet exhaust noise\nq3\t???\n")
    code, out, _ = cli("search", "--queries", str(queries), "--json", "-k", "1")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["id"] for line in lines] == ["q1", "q2", "q3"]
    assert lines[0]["hits"][0]["path"].endswith("stall.txt")
    assert lines[1]["hits"][0]["path"].endswith("noise.txt")
    assert "no words" in lines[2]["error"] and lines[2]["hits"] == []


def test_remove_drops_the_folder(cli_env, aero_corpus) -> None:
    cli("index", str(aero_corpus))
    assert cli("remove", str(aero_corpus)) == (0, "removed 4 files from the index\n", "")
    assert json.loads(cli("status", "--json")[1])["files"] == 0
    code, _, err = cli("remove", str(aero_corpus))
    assert code == 1 and "not in the index" in err


def test_missing_index_is_a_clear_error(cli_env) -> None:
    for argv in (["search", "wing"], ["status"]):
        code, out, err = cli(*argv)
        assert code == 1 and out == ""
        assert err.startswith("desktop-search: error: no index at") and "desktop-search index PATH" in err
        assert "Traceback" not in err


def test_missing_model_is_a_clear_error(cli_env, aero_corpus, tmp_path) -> None:
    code, _, err = cli("index", str(aero_corpus), "--model", str(tmp_path / "no-model"))
    assert code == 1 and "model folder" in err and "does not exist" in err


@pytest.mark.parametrize("argv, message", [
    (["search", ""], "empty"),
    (["search", "?!"], "no words"),
    (["search", "wing", "--mode", "fuzzy"], "unknown mode"),
    (["search", "wing", "--weights", "a,b,c"], "numbers"),
    (["search", "wing", "--weights", "0,0,0"], "not all be 0"),
    (["search", "wing", "-k", "0"], "k must be"),
    (["search"], "QUERY or --queries"),
    (["index", "/definitely/not/here"], "does not exist"),
])
def test_bad_usage_exits_2_with_a_message(cli_env, aero_corpus, argv, message) -> None:
    cli("index", str(aero_corpus))
    code, out, err = cli(*argv)
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_unknown_option_exits_2(cli_env) -> None:
    assert cli("search", "wing", "--frobnicate")[0] == 2


def test_console_script_runs_as_a_real_process(cli_env, aero_corpus) -> None:
    script = Path(sys.executable).with_name("desktop-search")
    env = dict(os.environ)
    done = subprocess.run([str(script), "index", str(aero_corpus), "--json"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 4
    missing = subprocess.run([str(script), "status", "--index", str(aero_corpus / "nope")], capture_output=True,
                             text=True, env=env, timeout=120)
    assert missing.returncode == 1 and "no index at" in missing.stderr and "Traceback" not in missing.stderr


def test_output_into_a_closed_pipe_ends_quietly(cli_env, aero_corpus) -> None:
    """``desktop-search status | head -1``: the reader goes before the output comes. That printed a
    BrokenPipeError traceback; it now ends with status 1 and nothing on stderr, as Python's docs advise."""
    assert cli("index", str(aero_corpus))[0] == 0
    child = subprocess.Popen([str(Path(sys.executable).with_name("desktop-search")), "status"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    child.stdout.close()  # before the process has imported anything, let alone printed
    stderr = child.stderr.read()
    assert child.wait(timeout=120) == 1 and stderr == "", stderr


def test_an_ascii_locale_gets_accented_queries_and_file_names_without_a_traceback(cli_env, tmp_path) -> None:
    """``LC_ALL=C`` with Python's UTF-8 mode off: arguments arrive as escaped bytes and stdout takes ASCII only."""
    folder = tmp_path / "Düsen"
    folder.mkdir()
    (folder / "Über Kühlung.txt").write_text("Über die Kühlung von Düsen beim Wiedereintritt.", encoding="utf-8")
    assert cli("index", str(folder))[0] == 0
    env = ascii_locale(dict(os.environ))
    done = subprocess.run([str(Path(sys.executable).with_name("desktop-search")), "search", "Kühlung", "--mode",
                           "keyword"], capture_output=True, encoding="ascii", env=env, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "1 results for 'K\\xfchlung'" in done.stdout
    assert "D\\xfcsen/\\xdcber K\\xfchlung.txt" in done.stdout


@pytest.mark.parametrize("command", [["status"], ["files"], ["search", "wing stall", "--mode", "keyword"]])
def test_cli_does_not_import_torch_for_status_files_or_keyword_search(cli_env, aero_corpus, command) -> None:
    """Nor datasketch and scipy (0.3 s of a 1 s keyword search process before; the app no longer uses datasketch)."""
    cli("index", str(aero_corpus))
    code = (f"import sys; from desktop_app.cli import main; code = main({command!r}); "
            "heavy = {'torch', 'FlagEmbedding', 'datasketch', 'scipy'} & set(sys.modules); "
            "print(sorted(heavy), file=sys.stderr); sys.exit(2 if heavy else code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_disk_full_during_a_commit_keeps_the_last_consistent_state(cli_env, tmp_path, monkeypatch) -> None:
    import sqlite3

    from desktop_app.core.storage.store import Store

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        (folder / f"doc{i:03d}.txt").write_text(f"Document {i} about nozzle erosion {i}.")
    original = Store.replace_file
    calls = {"n": 0}

    def fills_the_disk(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 80:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "replace_file", fills_the_disk)
    code, _, err = cli("index", str(folder))
    assert code == 1 and f"the disk holding {cli_env} is full" in err and "index again" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    status = json.loads(cli("status", "--json")[1])
    kept = status["files"]  # the groups of files committed before the failing one, whole
    assert kept < 80 and status["chunks"] == status["pending_chunks"] == kept and status["vectors"] == 0
    monkeypatch.setattr(Store, "replace_file", original)
    report = json.loads(cli("index", str(folder), "--json")[1])
    assert (report["added"], report["unchanged"], report["pending_chunks"]) == (150 - kept, kept, 0)
    status = json.loads(cli("status", "--json")[1])
    assert status["files"] == status["chunks"] == status["vectors"] == 150


def test_another_model_is_refused_until_rebuild(cli_env, aero_corpus, tmp_path, lite_model_dir) -> None:
    import shutil

    other = tmp_path / "other-model"
    shutil.copytree(lite_model_dir, other)
    (other / "colbert_linear.pt").write_bytes((other / "colbert_linear.pt").read_bytes() + b"\0")
    assert cli("index", str(aero_corpus))[0] == 0
    code, _, err = cli("index", str(aero_corpus), "--model", str(other))
    assert code == 1 and "was built with model" in err and "--rebuild" in err
    code, out, err = cli("index", str(aero_corpus), "--model", str(other), "--rebuild", "--json")
    assert code == 0, err
    assert json.loads(out)["added"] == 4
    status = json.loads(cli("status", "--json")[1])
    assert status["model"] == str(other) and status["chunks"] == status["vectors"] == 4
    assert status["roots"] == [{"path": str(aero_corpus), "files": 4, "chunks": 4, "online": True}]


def test_watch_catches_up_then_indexes_a_new_file(cli_env, aero_corpus) -> None:
    import threading
    import time

    cli("index", str(aero_corpus))
    (aero_corpus / "stall.txt").unlink()
    out, err = io.StringIO(), io.StringIO()
    worker = threading.Thread(target=main, args=(["watch", "--json", "--stop-after", "12"], out, err))
    worker.start()
    deadline = time.monotonic() + 60
    while "caught up" not in out.getvalue() and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.1)
    (aero_corpus / "slats.txt").write_text("Leading-edge slats delay the stall at high angles of attack.")
    worker.join()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["cause"] == "caught up" and lines[0]["removed"] == 1, err.getvalue()
    assert any(line.get("added") == 1 and line["paths"] == [str(aero_corpus / "slats.txt")] for line in lines[1:])
    assert json.loads(cli("status", "--json")[1])["files"] == 4


def test_status_marks_a_missing_folder_offline_and_keeps_it(cli_env, aero_corpus) -> None:
    cli("index", str(aero_corpus))
    aero_corpus.rename(aero_corpus.with_name("unplugged"))
    code, out, _ = cli("status")
    assert code == 0 and "4 files, 4 chunks (offline: folder missing or drive unplugged; kept in the index)" in out
    code, out, _ = cli("watch", "--json", "--stop-after", "0.5")
    assert code == 0 and json.loads(out.splitlines()[0])["offline"] == [str(aero_corpus)]
    assert json.loads(cli("status", "--json")[1])["files"] == 4


def test_watch_without_folders_is_a_usage_error(cli_env, aero_corpus) -> None:
    cli("index", str(aero_corpus))
    cli("remove", str(aero_corpus))
    code, _, err = cli("watch", "--stop-after", "1")
    assert code == 2 and "nothing to watch" in err


def test_pdf_library_warnings_go_to_the_log_not_the_terminal(cli_env, tmp_path) -> None:
    from builders import make_pdf

    folder = tmp_path / "pdfs"
    folder.mkdir()
    good = make_pdf(folder / "good.pdf", ["Ballast water treatment on coastal ferries."])
    (folder / "cut.pdf").write_bytes(good.read_bytes()[:400])  # PDFium refuses it; pypdf warns while trying
    logs = tmp_path / "logs"
    done = subprocess.run([sys.executable, "-m", "desktop_app", "index", str(folder)], capture_output=True,
                          text=True, env=dict(os.environ, DESKTOP_SEARCH_LOG_DIR=str(logs)), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout and "failed: " in done.stdout and "cut.pdf: damaged PDF" in done.stdout
    assert done.stderr.strip() == "", done.stderr
    assert "pypdf" in (logs / "desktop-search.log").read_text()


def test_search_output_names_slides_and_ocr_text(cli_env, tmp_path) -> None:
    from builders import make_pptx, text_image

    folder = tmp_path / "mixed"
    folder.mkdir()
    make_pptx(folder / "deck.pptx", [("Agenda", "Welcome", ""), ("Harbour", "Dredging the silt basin", "")])
    text_image(["Receipt for the kitchen water heater"]).save(folder / "receipt.png")
    assert cli("index", str(folder))[0] == 0
    code, out, _ = cli("search", "dredging silt basin", "--mode", "keyword", "-k", "1")
    assert code == 0 and "deck.pptx (slide 2)" in out
    code, out, _ = cli("search", "kitchen water heater", "--mode", "keyword", "-k", "1", "--json")
    hit = json.loads(out)["hits"][0]
    assert hit["path"].endswith("receipt.png") and hit["ocr"] and hit["unit"] == "image"
    code, out, _ = cli("search", "kitchen water heater", "--mode", "keyword", "-k", "1")
    assert "receipt.png (image, text read by OCR)" in out


def test_no_ocr_leaves_images_out_and_names_the_reason_for_scans(cli_env, tmp_path) -> None:
    from builders import make_scanned_pdf, text_image

    folder = tmp_path / "scans"
    folder.mkdir()
    make_scanned_pdf(folder / "scan.pdf", [["A scanned letter"]])
    text_image(["A photographed page"]).save(folder / "photo.jpg")
    code, out, _ = cli("index", str(folder), "--no-ocr", "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == 0 and report["failed"] == 1
    assert "OCR is turned off" in report["failures"][0]["reason"]
