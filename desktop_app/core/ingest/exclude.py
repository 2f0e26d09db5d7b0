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
        return self.why(path, is_dir) is not None

    def why(self, path: Path, is_dir: bool) -> str | None:
        """The rule that leaves ``path`` out (``pattern 'build/'`` or ``.gitignore in FOLDER: 'x'``), or None."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return None
        if not relative.parts:
            return None
        suffix = "/" if is_dir else ""
        verdict = self.patterns.check_file(relative.as_posix() + suffix)
        reason = f"exclusion pattern '{self.patterns.patterns[verdict.index].pattern}'" if verdict.include else None
        if self.honour_gitignore:
            folders = [self.root.joinpath(*relative.parts[:depth]) for depth in range(len(relative.parts))]
            for folder in folders:  # shallow to deep: a deeper .gitignore has the last word
                spec = self.gitignore_of(folder)
                if spec is not None:
                    found = spec.check_file(path.relative_to(folder).as_posix() + suffix)
                    if found.include is not None:
                        reason = (f".gitignore in {folder}: '{spec.patterns[found.index].pattern}'"
                                  if found.include else None)
        return reason

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
