"""How to open a hit: in the system viewer (at its page for PDFs), never by executing it.

Returns a plan (a command or a folder to show) rather than acting, so the rule is testable
and the GUI only carries it out.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.paths import to_os

RUNNABLE_SUFFIXES = {
    ".sh", ".bash", ".zsh", ".py", ".pyw", ".pl", ".rb", ".php", ".js", ".mjs", ".ps1", ".bat", ".cmd", ".com",
    ".exe", ".msi", ".app", ".jar", ".desktop", ".run", ".bin", ".appimage", ".vbs", ".scr", ".command",
}
PDF_VIEWERS = (
    ("evince", ["--page-index={page}"]),
    ("okular", ["-p", "{page}"]),
    ("zathura", ["-P", "{page}"]),
    ("qpdfview", []),
)


@dataclass(frozen=True)
class OpenPlan:
    """``command`` to start detached, or ``None`` with ``folder`` to show instead."""

    command: list[str] | None
    folder: str
    reason: str = ""


def is_runnable(path: Path) -> bool:
    """Scripts and programs: opening them with the desktop's default handler could run them."""
    if path.suffix.lower() in RUNNABLE_SUFFIXES:
        return True
    return os.name != "nt" and path.is_file() and os.access(path, os.X_OK)


def plan_open(path: Path, page: int = 1) -> OpenPlan:
    """``path`` as the index stores it (see core.paths); the plan names the real file."""
    path = Path(to_os(str(path)))
    folder = str(path.parent)
    if is_runnable(path):
        return OpenPlan(None, folder, f"{path.name} is a program or script: showing it in its folder instead")
    if path.suffix.lower() == ".pdf":
        for viewer, arguments in PDF_VIEWERS:
            executable = shutil.which(viewer)
            if executable:
                return OpenPlan([executable, *(a.format(page=page) for a in arguments), str(path)], folder)
    return OpenPlan(default_opener(path), folder)


def default_opener(path: Path) -> list[str]:
    if sys.platform == "darwin":
        return ["open", str(path)]
    if os.name == "nt":
        return ["explorer", str(path)]
    return ["xdg-open", str(path)]


def plan_show_in_folder(path: Path) -> list[str]:
    path = Path(to_os(str(path)))
    if sys.platform == "darwin":
        return ["open", "-R", str(path)]
    if os.name == "nt":
        return ["explorer", f"/select,{path}"]
    return ["xdg-open", str(path.parent)]
