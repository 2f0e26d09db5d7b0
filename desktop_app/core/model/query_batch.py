"""Concurrent searches' queries, encoded together: one forward pass for every query that waits.

A search hands its query to the :class:`QueryBatcher` and waits. One thread encodes: it takes every
query that arrived while its previous forward pass ran (plus, with ``window_s``, those arriving
within that much longer), encodes them as one batch and hands each search its own
:class:`~desktop_app.core.model.encoder.Encoding`. A query that finds the batcher idle waits for
nothing; under load a forward pass serves many searches, and one thread means one tokenizer copy
instead of one per request thread. The window is measured, not guessed (bench/README.md,
"Concurrent searches").
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from desktop_app.core.errors import IndexClosedError

if TYPE_CHECKING:
    from desktop_app.core.model.encoder import Encoder
    from desktop_app.core.model.encoding import Encoding

# Measured with bench/api_load.py (bench/README.md): no added wait was best; queries that come
# during a forward pass already make the next batch.
WINDOW_S = 0.0
MAX_BATCH = 64


@dataclass
class _Ask:
    text: str
    max_tokens: int
    colbert: bool
    done: threading.Event = field(default_factory=threading.Event)
    encoding: Encoding | None = None
    error: BaseException | None = None


class QueryBatcher:
    """Encodes the queries of concurrent searches in shared forward passes (see the module docstring)."""

    def __init__(self, encoder: Encoder, window_s: float | None = None, max_batch: int = MAX_BATCH) -> None:
        self.encoder = encoder
        self.window_s = WINDOW_S if window_s is None else window_s
        self.max_batch = max_batch
        self._waiting: list[_Ask] = []
        self._arrived = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # forward rounds so far, and the queries they encoded (for tests and the benchmark)
        self.batched = 0

    def encode(self, text: str, max_tokens: int, colbert: bool = False) -> Encoding:
        """This query's encoding, computed in a batch with whatever other searches ask meanwhile."""
        ask = _Ask(text, max_tokens, colbert)
        with self._arrived:
            if self._closed:
                raise IndexClosedError("the index was closed (its model or folder is being switched): try again "
                                       "in a moment")
            self._waiting.append(ask)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="query-encoder", daemon=True)
                self._thread.start()
            self._arrived.notify()
        ask.done.wait()
        if ask.error is not None:
            raise ask.error
        assert ask.encoding is not None
        return ask.encoding

    def close(self) -> None:
        """Finish the queries already handed in, then stop the thread."""
        with self._arrived:
            self._closed = True
            self._arrived.notify()
        if self._thread is not None:
            self._thread.join(30)

    def _serve(self) -> None:
        while True:
            with self._arrived:
                while not self._waiting and not self._closed:
                    self._arrived.wait()
                if not self._waiting:
                    return
            if self.window_s > 0:
                time.sleep(self.window_s)
            with self._arrived:
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
            for max_tokens in sorted({ask.max_tokens for ask in batch}):
                self._encode([ask for ask in batch if ask.max_tokens == max_tokens], max_tokens)
            self.batches += 1
            self.batched += len(batch)

    def _encode(self, asks: list[_Ask], max_tokens: int) -> None:
        try:
            encodings = self.encoder.encode([ask.text for ask in asks], max_tokens,
                                            colbert=any(ask.colbert for ask in asks))
        except BaseException as error:  # noqa: BLE001 - each search raises it in its own thread
            for ask in asks:
                ask.error = error
                ask.done.set()
            return
        for ask, encoding in zip(asks, encodings):
            ask.encoding = encoding if ask.colbert else replace(encoding, colbert=None)
            ask.done.set()
