"""The app's log file in the platform's log folder: what went wrong, with tracebacks, for a bug report.

The user sees one readable sentence; the file keeps the detail (``About`` names it). Warnings of
the libraries that read documents ("Invalid parent xref", "Object 172 0 not defined") go here
too, instead of onto the user's terminal.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from desktop_app.core.config import APP_NAME

LOG_NAME = "desktop-search.log"
LOGGER = "desktop_search"


def default_log_folder() -> Path:
    """The platform's log folder, or ``DESKTOP_SEARCH_LOG_DIR`` when set."""
    if os.environ.get("DESKTOP_SEARCH_LOG_DIR"):
        return Path(os.environ["DESKTOP_SEARCH_LOG_DIR"]).expanduser()
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_NAME, appauthor=False))


def log_path(folder: Path | None = None) -> Path:
    return (folder or default_log_folder()) / LOG_NAME


def start_logging(folder: Path | None = None) -> Path:
    """Send the app's log (errors with tracebacks, notices) and every library's warnings to a
    rotating file; return its path."""
    path = log_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if not any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, logging.WARNING))
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    logging.captureWarnings(True)
    return path
