"""Exclusions with .gitignore semantics: global patterns, --exclude, and .gitignore files in folders."""

from __future__ import annotations

import io
import json
from pathlib import Path

from desktop_app.cli import main
from desktop_app.core.config import DEFAULT_EXCLUDES
from desktop_app.core.ingest.exclude import Excluder
from desktop_app.core.ingest.scan import scan


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(root: Path, settings) -> list[str]:
    found, _ = scan(root, settings)
    return sorted(Path(c.path).relative_to(root).as_posix() for c in found)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def test_patterns_have_gitignore_semantics(tmp_path: Path) -> None:
    excluder = Excluder(tmp_path, ("build/", "*.log", "!keep.log", "/top.txt", "docs/**/*.tmp"), False)
    assert excluder.excluded(tmp_path / "build", True) and not excluder.excluded(tmp_path / "build", False)
    assert excluder.excluded(tmp_path / "a" / "build", True), "a folder pattern matches at any depth"
    assert excluder.excluded(tmp_path / "x.log", False) and not excluder.excluded(tmp_path / "keep.log", False)
    assert excluder.excluded(tmp_path / "top.txt", False) and not excluder.excluded(tmp_path / "a" / "top.txt", False)
    assert excluder.excluded(tmp_path / "docs" / "a" / "b" / "c.tmp", False)
    assert excluder.excluded_with_folders(tmp_path / "build" / "out.txt", False)


def test_defaults_leave_out_vcs_caches_and_virtualenvs(tmp_path: Path, settings) -> None:
    tree(tmp_path, {"notes.md": "x", ".git/config.txt": "x", "node_modules/pkg/readme.md": "x",
                    "__pycache__/m.txt": "x", ".venv/lib/site.txt": "x", "venv/lib/a.txt": "x", "draft.txt~": "x"})
    assert names(tmp_path, settings) == ["notes.md"]
    assert settings.exclude_patterns == DEFAULT_EXCLUDES


def test_gitignore_files_apply_below_their_folder_and_deeper_ones_win(tmp_path: Path, settings) -> None:
    tree(tmp_path, {".gitignore": "build/\n*.log\n", "src/a.md": "x", "build/out.md": "x", "run.log": "x",
                    "sub/.gitignore": "!important.log\nlocal.md\n", "sub/important.log": "x", "sub/local.md": "x",
                    "sub/other.md": "x", "local.md": "x"})
    assert names(tmp_path, settings) == ["local.md", "src/a.md", "sub/important.log", "sub/other.md"]
    assert "build/out.md" in names(tmp_path, settings.with_(honour_gitignore=False))


def test_changing_the_patterns_removes_and_adds_without_re_encoding_the_rest(cli_env, tmp_path: Path) -> None:
    folder = tree(tmp_path / "notes", {"a.md": "alpha wing", "b.md": "beta stall", "drafts/c.md": "gamma",
                                       "drafts/d.md": "delta"})
    code, out, err = cli("index", str(folder), "--json")
    assert code == 0 and json.loads(out)["added"] == 4, err
    code, out, err = cli("index", str(folder), "--json", "--exclude", "drafts/")
    report = json.loads(out)
    assert (report["removed"], report["added"], report["updated"], report["unchanged"]) == (2, 0, 0, 2), report
    code, out, err = cli("index", str(folder), "--json")
    report = json.loads(out)
    assert (report["removed"], report["added"], report["updated"], report["unchanged"]) == (0, 2, 0, 2), report


def test_cli_no_gitignore_indexes_what_gitignore_leaves_out(cli_env, tmp_path: Path) -> None:
    folder = tree(tmp_path / "code", {".gitignore": "generated/\n", "main.py": "print('wing')",
                                      "generated/big.py": "x = 1"})
    assert json.loads(cli("index", str(folder), "--json")[1])["added"] == 1
    assert json.loads(cli("index", str(folder), "--json", "--no-gitignore")[1])["added"] == 1


def test_the_watcher_ignores_changes_in_ignored_folders(tmp_path: Path, settings) -> None:
    from desktop_app.core.ingest.live_sync import FolderWatcher

    tree(tmp_path, {".gitignore": "out/\n", "doc.md": "x", "out/gen.md": "x"})
    watcher = FolderWatcher(settings, lambda batch: None)
    watcher.roots = {str(tmp_path): None}
    assert watcher.wants(str(tmp_path / "doc.md"), False)
    assert not watcher.wants(str(tmp_path / "out" / "gen.md"), False)
    assert not watcher.wants(str(tmp_path / "node_modules" / "x.md"), False)


def test_the_file_list_says_what_was_excluded_and_by_which_rule(cli_env, tmp_path: Path) -> None:
    folder = tree(tmp_path / "code", {".gitignore": "generated/\n*.log\n", "main.py": "print('wing')",
                                      "generated/big.py": "x = 1", "run.log": "x", "node_modules/pkg/a.md": "x"})
    assert cli("index", str(folder))[0] == 0
    files = {Path(f["path"]).name: f for f in json.loads(cli("files", "--json")[1])["files"]}
    assert files["main.py"]["state"] == "indexed"
    assert files["generated"]["state"] == "excluded" and "generated/" in files["generated"]["reason"]
    assert ".gitignore" in files["run.log"]["reason"] and files["node_modules"]["reason"] == (
        "exclusion pattern 'node_modules/'")
    assert "big.py" not in files, "an excluded folder is listed once, not file by file"
    assert not json.loads(cli("files", "--failed", "--json")[1])["files"]
    assert cli("index", str(folder), "--no-gitignore")[0] == 0
    files = {Path(f["path"]).name: f for f in json.loads(cli("files", "--json")[1])["files"]}
    assert files["big.py"]["state"] == "indexed" and "generated" not in files
    assert cli("remove", str(folder))[0] == 0
    assert json.loads(cli("files", "--json")[1])["files"] == []
