"""Which files and folders stay out of the index: .gitignore semantics, through ``pathspec``.

Patterns match paths relative to the indexed folder: ``build/`` (folders only), ``/top.txt``
(anchored), ``**/*.tmp``, ``!keep.log`` (negation). The global patterns come from the settings
(and ``--exclude``); ``.gitignore`` files inside an indexed folder apply below their own folder,
a deeper file overriding a shallower one, as git does. A folder that is excluded hides
everything in it (git cannot re-include a file whose folder is ignored either).
"""

from __future__ import annotations

from pathlib import Path

import pathspec

GITIGNORE = ".gitignore"


class Excluder:
    """Answers "is this path excluded?" for paths inside one indexed folder ``root``."""

    def __init__(self, root: Path, patterns: tuple[str, ...], honour_gitignore: bool = True) -> None:
        self.root = root
        self.patterns = pathspec.GitIgnoreSpec.from_lines(patterns)
        self.honour_gitignore = honour_gitignore
        self.gitignores: dict[Path, pathspec.GitIgnoreSpec | None] = {}

    def excluded(self, path: Path, is_dir: bool) -> bool:
        """True when ``path`` itself is matched (its folders are the caller's to check, e.g. by pruning a walk)."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        if not relative.parts:
            return False
        suffix = "/" if is_dir else ""
        result = self.patterns.match_file(relative.as_posix() + suffix)
        if self.honour_gitignore:
            folders = [self.root.joinpath(*relative.parts[:depth]) for depth in range(len(relative.parts))]
            for folder in folders:  # shallow to deep: a deeper .gitignore has the last word
                spec = self.gitignore_of(folder)
                if spec is not None:
                    verdict = spec.check_file(path.relative_to(folder).as_posix() + suffix).include
                    if verdict is not None:
                        result = verdict
        return result

    def excluded_with_folders(self, path: Path, is_dir: bool) -> bool:
        """True when ``path`` or one of its folders below ``root`` is excluded (a single changed file)."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        folder = self.root
        for part in relative.parts[:-1]:
            folder = folder / part
            if self.excluded(folder, True):
                return True
        return self.excluded(path, is_dir)

    def gitignore_of(self, folder: Path) -> pathspec.GitIgnoreSpec | None:
        if folder not in self.gitignores:
            try:
                lines = (folder / GITIGNORE).read_text(encoding="utf-8", errors="replace").splitlines()
                self.gitignores[folder] = pathspec.GitIgnoreSpec.from_lines(lines)
            except OSError:
                self.gitignores[folder] = None
        return self.gitignores[folder]
