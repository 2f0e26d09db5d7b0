"""Open a hit on the server's desktop (the search page's page and folder links), as the window does.

Only files whose text is in the index, only for clients on this computer, and never by running
them: :mod:`desktop_app.core.launch` shows scripts and programs in their folder instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from desktop_app.core import DesktopSearchError, Engine, plan_open, plan_show_in_folder


def open_indexed(engine: Engine, path: str, page: int, reveal: bool) -> dict[str, object] | None:
    """Start the viewer (or the file manager at its folder); None when ``path`` is not in the index."""
    if not engine.holds(path):
        return None
    plan = None if reveal else plan_open(Path(path), page)
    command = plan.command if plan is not None and plan.command else plan_show_in_folder(Path(path))
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError as error:
        raise DesktopSearchError(f"cannot open {path}: {command[0]} did not start ({error.strerror})") from None
    shown = plan is None or not plan.command
    return {"path": path, "action": "shown in folder" if shown else "opened", "note": plan.reason if plan else ""}
