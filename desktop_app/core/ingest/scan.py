"""Which files a folder holds for indexing: supported, let through by the exclusions, readable.

Paths are taken as the user named them (absolute, ``~`` expanded, symlinks kept), so an
indexed folder keeps its name even when it is a link.
"""

from __future__ import annotations

import os
from pathlib import Path

from desktop_app.core.config import Settings
from desktop_app.core.errors import UsageError
from desktop_app.core.ingest.exclude import Excluder
from desktop_app.core.ingest.extract import is_supported
from desktop_app.core.ingest.progress import Failure
from desktop_app.core.ingest.reading import Candidate
from desktop_app.core.paths import to_text


def scan(root: Path, settings: Settings, base: Path | None = None,
         excluded: list[tuple[str, str]] | None = None) -> tuple[list[Candidate], list[Failure]]:
    """Supported files under ``root`` (or ``root`` itself) that the exclusions let through.

    ``base`` is the indexed folder ``root`` lies in (``root`` itself by default): exclusion
    patterns and ``.gitignore`` files apply relative to it, and a ``root`` inside an excluded
    folder finds nothing (so a watcher's update of an ignored file removes it, never adds it).
    ``excluded`` (when given) receives (path, rule) for each file or folder left out, a folder
    once for all it holds, so the file list can say what was excluded and why.
    """
    found: list[Candidate] = []
    problems: list[Failure] = []
    if not os.path.lexists(root):
        return found, problems
    excluder = Excluder(base or root, settings.exclude_patterns, settings.honour_gitignore)
    if base is not None and excluder.excluded_with_folders(root, root.is_dir()):
        return found, problems
    if root.is_file():
        paths = [root]
    else:
        paths = []

        def report(error: OSError) -> None:
            problems.append(Failure(to_text(str(error.filename)), f"cannot list folder: {error.strerror}"))

        def kept(path: Path, is_dir: bool) -> bool:
            rule = excluder.why(path, is_dir)
            if rule is not None and excluded is not None:
                excluded.append((to_text(str(path)) + (os.sep if is_dir else ""), rule))
            return rule is None

        for folder, dirs, files in os.walk(root, onerror=report):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if kept(here / d, True))
            paths.extend(here / name for name in sorted(files) if kept(here / name, False))
    for path in paths:
        if not is_supported(path, settings.ocr) or not settings.wants_suffix(path.suffix):
            continue
        try:
            stat = path.stat()
        except OSError as error:
            reason = "broken link: its target is missing" if path.is_symlink() else f"cannot read: {error.strerror}"
            problems.append(Failure(to_text(str(path)), reason))
            continue
        if path.is_file():
            found.append(Candidate(to_text(str(path)), stat.st_size, stat.st_mtime_ns, str(path)))
    return found, problems


def normalise_root(path: Path) -> Path:
    """Absolute path without symlink resolution; a path that does not exist is a usage error."""
    full = absolute(path)
    if not full.exists():
        raise UsageError(f"path does not exist: {path}")
    return full


def absolute(path: Path) -> Path:
    """``~`` expanded and made absolute, symlinks kept as the user named them."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))
