"""Answers to repeated searches, kept until anything in the index changes.

People and programs repeat searches: type-ahead that comes back to a word, a page of results
asked again, a script or a RAG pipeline that asks the same question. Like Elasticsearch's
request cache (dropped at each refresh), an answer is kept only while the index is unchanged:
every reading connection tells, before each read, whether anyone committed since it last
looked (SQLite's ``data_version``), and the first one that sees a commit starts a new *epoch*,
which drops every answer. An answer is stored under the epoch its search began in, so one
computed from the old state never passes for the new one. Answers ranked otherwise than asked
(by words while the model loads) are not kept, nor large ones, nor any after ``MAX_AGE_S``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop_app.core.search.results import SearchResult

ENTRIES = 512
MAX_HITS = 100
MAX_AGE_S = 60.0


class ResultCache:
    """Search answers by (query, options), for the current epoch of the index."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._answers: OrderedDict[Hashable, tuple[int, float, SearchResult]] = OrderedDict()
        self.epoch = 0
        self.hits = self.misses = 0

    def changed(self) -> None:
        """Something in the index changed (or may have): forget every answer."""
        with self._lock:
            self.epoch += 1
            self._answers.clear()

    def get(self, key: Hashable) -> SearchResult | None:
        """The kept answer (with this lookup's own ``took_ms``), or None."""
        started = time.perf_counter()
        with self._lock:
            kept = self._answers.get(key)
            if kept is None or kept[0] != self.epoch or started - kept[1] > MAX_AGE_S:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
        return replace(kept[2], took_ms=round((time.perf_counter() - started) * 1000, 2))

    def put(self, key: Hashable, epoch: int, started: float, result: SearchResult) -> None:
        """Keep ``result`` of a search that began in ``epoch`` at ``started`` (``time.perf_counter``)."""
        if result.note or len(result.hits) > MAX_HITS:
            return
        with self._lock:
            if epoch != self.epoch:
                return
            self._answers[key] = (epoch, started, result)
            self._answers.move_to_end(key)
            while len(self._answers) > self.entries:
                self._answers.popitem(last=False)
