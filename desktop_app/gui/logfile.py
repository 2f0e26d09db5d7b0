"""The window's log file in the platform's log folder: what went wrong, with tracebacks, for a bug report.

The user sees one readable sentence; the file keeps the detail (``About`` names it).
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from desktop_app.core.config import APP_NAME

LOG_NAME = "desktop-search.log"
LOGGER = "desktop_search"


def default_log_folder() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_NAME, appauthor=False))


def log_path(folder: Path | None = None) -> Path:
    return (folder or default_log_folder()) / LOG_NAME


def start_logging(folder: Path | None = None) -> Path:
    """Send the app's log (errors with tracebacks, notices) to a rotating file; return its path."""
    path = log_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in logger.handlers):
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path
