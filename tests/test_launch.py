"""Opening a hit never executes it."""

from __future__ import annotations

import os
from pathlib import Path

from desktop_app.core import launch


def test_scripts_and_executables_are_only_shown_in_their_folder(tmp_path: Path) -> None:
    script = tmp_path / "install.sh"
    script.write_text("rm -rf /")
    plan = launch.plan_open(script)
    assert plan.command is None and plan.folder == str(tmp_path) and "script" in plan.reason
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF")
    os.chmod(binary, 0o755)
    assert launch.plan_open(binary).command is None


def test_documents_open_with_the_desktop_handler(tmp_path: Path, monkeypatch) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("x")
    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    assert launch.plan_open(doc).command[-1] == str(doc)


def test_pdf_opens_at_its_page_when_the_viewer_supports_it(tmp_path: Path, monkeypatch) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    monkeypatch.setattr(launch.shutil, "which", lambda name: "/usr/bin/okular" if name == "okular" else None)
    assert launch.plan_open(pdf, page=7).command == ["/usr/bin/okular", "-p", "7", str(pdf)]
    monkeypatch.setattr(launch.shutil, "which", lambda name: "/usr/bin/evince" if name == "evince" else None)
    assert launch.plan_open(pdf, page=7).command == ["/usr/bin/evince", "--page-index=7", str(pdf)]
