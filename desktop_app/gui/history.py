"""Recent searches: kept on this computer with the window's settings and offered as the user types.

A search is remembered when the user settles on it (Enter, or opening one of its hits), never at
every keystroke, so the list holds what was looked for, not its prefixes. Turning it off forgets
what was kept.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings, QStringListModel, Qt
from PySide6.QtWidgets import QCompleter, QLineEdit

MAX_SEARCHES = 50
SEARCHES_KEY = "history/searches"


class SearchHistory:
    """The most recent searches first, each once, at most :data:`MAX_SEARCHES` of them."""

    def __init__(self, store: QSettings, remember: bool = True) -> None:
        self._store = store
        self._model = QStringListModel(self._read())
        self.set_remember(remember)

    def record(self, query: str) -> None:
        query = " ".join(query.split())
        if not self.remember or not query:
            return
        kept = [query] + [q for q in self.entries() if q.casefold() != query.casefold()]
        self._write(kept[:MAX_SEARCHES])

    def entries(self) -> list[str]:
        return self._model.stringList()

    def clear(self) -> None:
        self._write([])

    def set_remember(self, on: bool) -> None:
        """Remember searches from now on, or stop and forget those kept."""
        self.remember = on
        if not on:
            self.clear()

    def offer_in(self, line: QLineEdit) -> QCompleter:
        """Offer the kept searches that contain what ``line`` holds, as the user types."""
        completer = QCompleter(self._model, line)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        line.setCompleter(completer)
        return completer

    def _read(self) -> list[str]:
        """The kept list; a value that is not a list of text (edited by hand, another version) is none."""
        try:
            kept = json.loads(str(self._store.value(SEARCHES_KEY, "[]") or "[]"))
        except ValueError:
            return []
        return [q for q in kept if isinstance(q, str)][:MAX_SEARCHES] if isinstance(kept, list) else []

    def _write(self, queries: list[str]) -> None:
        self._model.setStringList(queries)
        self._store.setValue(SEARCHES_KEY, json.dumps(queries))
        self._store.sync()
