"""The one entry point every front-end (window, CLI, HTTP) goes through: an index opened with its model.

Front-ends never touch ``Store``: searching, indexing, the folder list, failures, a hit's
context and the status all go through an :class:`Engine`. The model is chosen here by one
rule for all of them (see :func:`choose_model`), so the window and a terminal never rank one
index with two different models.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.core.backends.choice import Backend
from desktop_app.core.backends.opening import open_index
from desktop_app.core.backends.protocol import Index
from desktop_app.core.config import Settings, Weights
from desktop_app.core.errors import (
    IndexClosedError,
    IndexMismatchError,
    StorageError,
    UsageError,
    is_storage_error,
    storage_message,
)
from desktop_app.core.ingest.live_sync import root_online
from desktop_app.core.model import resolve as models
from desktop_app.core.model.resolve import ModelSpec
from desktop_app.core.paths import is_within
from desktop_app.core.search.result_cache import ResultCache
from desktop_app.core.storage.folder import DB_NAME
from desktop_app.core.storage.store import Store

if TYPE_CHECKING:  # imported where used: opening an index for status must not import torch
    from desktop_app.core.ingest.indexer import Indexer
    from desktop_app.core.model.encoder import Encoder
    from desktop_app.core.search.results import SearchResult
    from desktop_app.core.search.searcher import Searcher

# Searchers (reading connections) an engine keeps at most: a few searches side by side; more would
# only share the same cores and the GIL.
READERS = 4
CLOSED = "the index was closed (its model or folder is being switched): try again in a moment"


@dataclass(frozen=True)
class ModelChoice:
    """The model to open an index with, and (when the user named another one) why it is not that one."""

    spec: ModelSpec
    mismatch: str = ""
    wanted: ModelSpec | None = None


def choose_model(info: dict[str, object] | None, settings: Settings, named: str | None = None,
                 adopt: bool = False) -> ModelChoice:
    """The model the user named (``named``, else the setting), the index's own, or the default.

    When the named model is not the one the index was built with, ``adopt`` takes it anyway
    (a rebuild follows); otherwise the index keeps its own model and ``mismatch`` says why, so
    a front-end can offer "Rebuild with this model" instead of searching 384-d vectors with a
    1024-d query.
    """
    named = named or settings.model
    if info is None:
        return ModelChoice(models.resolve(named) if named else models.resolve_default(settings))
    if not named:
        return ModelChoice(models.resolve_recorded(info, settings))
    wanted = models.resolve(named)
    if adopt or models.built_with(wanted, info):
        return ModelChoice(wanted)
    mismatch = (f"this index was built with {info.get('name')}; the settings name {wanted.display_name}. "
                f"Searches use {info.get('name')} until the index is rebuilt with {wanted.display_name}")
    return ModelChoice(models.resolve_recorded(info, settings), mismatch, wanted)


@dataclass(eq=False)
class _Turn:
    """A thread's place in the line for a searcher: set with one when its turn comes (None: the index closed)."""

    given: threading.Event = field(default_factory=threading.Event)
    searcher: Searcher | None = None


class Engine:
    """An open index, its model's encoder and a few searchers, each with a reading connection of its own.

    Several threads call one engine at once: the window's search and index workers, the HTTP
    server's request threads (and the window's server beside them). Each read takes a searcher
    from a small pool (up to ``READERS``, made as they are needed): its own ``sqlite3`` connection,
    so searches run side by side where SQLite, numpy and hnswlib let go of the GIL, and a catch-up
    with other processes that opens a transaction on one connection never meets another thread.
    Their queries go through one :class:`~desktop_app.core.model.query_batch.QueryBatcher`, so
    concurrent searches share forward passes. Indexing writes through the index's own connection in
    its own thread; :meth:`embed` touches no SQLite (each thread has its own tokenizer, and
    inference shares the model's weights read-only). :meth:`close` waits for the reads in progress,
    and a later call is a readable :class:`IndexClosedError`, never a closed-database crash.
    """

    def __init__(self, settings: Settings, index: Index, choice: ModelChoice | None, encoder: Encoder | None) -> None:
        from desktop_app.core.model.query_batch import QueryBatcher

        self.settings = settings
        self._index = index
        self._choice = choice
        self._encoder = encoder
        self._queries = QueryBatcher(encoder) if encoder is not None else None
        self._answers = ResultCache()
        self._changes = Store(Path(index.folder) / DB_NAME)  # only asked whether anyone committed
        self._changes_lock = threading.Lock()
        self._seen: tuple[int, int | None] | None = None
        self._wait_for_model = True
        self._idle: list[Searcher] = [self._new_searcher()]  # the first now: a bad folder fails at open
        self._made = 1
        self._returned = threading.Condition()
        self._waiting: deque[_Turn] = deque()  # threads waiting for a searcher, oldest first
        self._closed = False

    def _new_searcher(self) -> Searcher:
        from desktop_app.core.search.searcher import Searcher

        return Searcher(self._index, self._encoder, store=Store(Path(self._index.folder) / DB_NAME),
                        queries=self._queries)

    @classmethod
    def open(cls, settings: Settings, named_model: str | None = None, adopt: bool = False, create: bool = False,
             load: bool = True, with_model: bool = True, on_notice: Callable[[str], None] | None = None,
             backend: Backend | None = None) -> Engine:
        """Open ``settings.index_dir`` with the model :func:`choose_model` picks; ``load`` imports torch now.

        ``with_model=False`` opens without any model (status, the file list, keyword search): no
        model files are needed and torch is never imported. ``backend`` is the one a new index
        records (an existing one keeps its own; naming another is an error).
        """
        from desktop_app.core.model.encoder import Encoder

        folder = Path(settings.index_dir).expanduser()
        try:
            index = open_index(folder, create, backend)
        except (sqlite3.Error, OSError) as error:  # a full, read-only or unplugged disk: one sentence
            if not is_storage_error(error, folder):
                raise
            raise StorageError(storage_message(error, folder)) from error
        try:
            if not with_model:
                return cls(settings, index, None, None)
            choice = choose_model(index.model_info, settings, named_model, adopt)
            encoder = Encoder(choice.spec, settings.device, settings.dtype, on_notice=on_notice)
            if load:
                encoder.load()
            return cls(settings, index, choice, encoder)
        except BaseException:
            index.close()
            raise

    @property
    def spec(self) -> ModelSpec | None:
        return self._choice.spec if self._choice else None

    @property
    def mismatch(self) -> str:
        return self._choice.mismatch if self._choice else ""

    @property
    def wanted_model(self) -> ModelSpec | None:
        """The model the user named when it is not the index's own (see :attr:`mismatch`), else None."""
        return self._choice.wanted if self._choice else None

    def refuse_mixing(self) -> None:
        """For a writer: an index of one model never gets another model's vectors (re-index instead)."""
        wanted = self.wanted_model
        if self.mismatch and wanted is not None and self.spec is not None:
            raise IndexMismatchError(models.mixing_refused(self.settings.index_dir, self.spec.name, wanted.name))

    @property
    def empty(self) -> bool:
        """Nothing indexed yet: no model is bound to the index."""
        return self._index.model_info is None

    @property
    def on_gpu(self) -> bool:
        return self._encoder is not None and self._encoder.device.startswith("cuda")

    @property
    def dimension(self) -> int | None:
        """Numbers per dense vector (and per ColBERT token vector) of the engine's model."""
        return self.spec.hidden_size if self.spec is not None else None

    @contextmanager
    def _reading(self) -> Iterator[Searcher]:
        """A searcher of this thread's own while the block runs (one of the pool; see the class docstring)."""
        searcher = self._take()
        searcher.wait_for_model = self._wait_for_model
        try:
            yield searcher
        finally:
            self._give_back(searcher)

    def _take(self) -> Searcher:
        """A searcher: an idle one, a new one while the pool is not full, else the next one given back, in
        the order asked. Waiting on a Condition alone let a thread that asked just after a searcher came
        back take it before the woken waiter ran, so a request could be passed over again and again."""
        with self._returned:
            if self._closed:
                raise IndexClosedError(CLOSED)
            if self._idle and not self._waiting:
                return self._idle.pop()
            make = self._made < READERS and not self._waiting
            if make:
                self._made += 1
            else:
                turn = _Turn()
                self._waiting.append(turn)
        if make:
            try:
                return self._new_searcher()
            except BaseException:
                with self._returned:
                    self._made -= 1
                raise
        try:
            turn.given.wait()
        except BaseException:  # interrupted (Ctrl+C in the main thread): leave the line, or pass the searcher on
            with self._returned:
                if turn in self._waiting:
                    self._waiting.remove(turn)
            if turn.searcher is not None:
                self._give_back(turn.searcher)
            raise
        if turn.searcher is None:
            raise IndexClosedError(CLOSED)
        return turn.searcher

    def _give_back(self, searcher: Searcher) -> None:
        """To the thread that has waited longest, or back to the pool."""
        with self._returned:
            if self._waiting and not self._closed:
                turn = self._waiting.popleft()
                turn.searcher = searcher
                turn.given.set()
            else:
                self._idle.append(searcher)
                self._returned.notify_all()

    def describe(self) -> str:
        return self._encoder.describe()

    @property
    def model_loaded(self) -> bool:
        return self._encoder is not None and self._encoder.loaded

    def answer_by_words_until_loaded(self) -> None:
        """Searches that need the model are answered by keyword, with a note, until it is loaded (by
        :meth:`load_model` in another thread): a window or a server answers from its first second."""
        self._wait_for_model = False  # each searcher takes it up when it is next taken

    def load_model(self) -> None:
        """Import torch and load the model now (in the caller's thread), and wait for the index's caches."""
        if self._encoder is None:
            raise UsageError("this engine was opened without a model")
        self._encoder.load()
        self._index.wait_until_loaded()  # the caches the model's channels search

    def load_in_background(self, on_error: Callable[[str], None]) -> threading.Thread:
        """:meth:`answer_by_words_until_loaded`, and load the model in a thread of its own; ``on_error``
        hears why it could not be loaded."""
        self.answer_by_words_until_loaded()

        def load() -> None:
            try:
                self.load_model()
            except Exception as error:  # noqa: BLE001 - said to the user; searches stay by words
                on_error(str(error))

        thread = threading.Thread(target=load, name="model-load", daemon=True)
        thread.start()
        return thread

    def default_weights(self) -> Weights:
        with self._reading() as searcher:
            return searcher.default_weights()

    def search(self, query: str, **options: object) -> SearchResult:
        """The ranking for ``query``; an answer kept from the same search is given while nothing in the
        index changed (:mod:`~desktop_app.core.search.result_cache`), without waiting for a searcher."""
        key = (query, repr(sorted(options.items())))
        keeps = self._notice_changes()
        kept = self._answers.get(key) if keeps else None
        if kept is not None:
            return kept
        epoch, started = self._answers.epoch, time.perf_counter()
        with self._reading() as searcher:
            result = searcher.search(query, **options)
        if keeps:
            self._answers.put(key, epoch, started, result)
        return result

    def _notice_changes(self) -> bool:
        """Start a new epoch of kept answers when anyone committed or the caches changed since the last
        look; False when this index's answers are never kept."""
        with self._changes_lock:
            if self._closed:
                raise IndexClosedError(CLOSED)
            seen = (self._changes.data_version(), self._index.version)
            if seen != self._seen or seen[1] is None:
                self._seen = seen
                self._answers.changed()
        return seen[1] is not None

    def more_like(self, path: str, page: int | None = None, k: int = 10) -> SearchResult:
        """Hits like the indexed passage at ``path`` (its first one, or the first on ``page``)."""
        with self._reading() as searcher:
            chunk = searcher.store.chunk_at(path, page)
            if chunk is None:
                where = f" (page {page})" if page is not None else ""
                raise UsageError(f"{path}{where} is not in the index: index it first, or check the page number")
            return searcher.more_like(chunk, k)

    def more_like_chunk(self, chunk_id: int, k: int = 10) -> SearchResult:
        with self._reading() as searcher:
            return searcher.more_like(chunk_id, k)

    def holds(self, path: str) -> bool:
        """True when ``path`` (as the index stores it) has text in the index."""
        with self._reading() as searcher:
            return searcher.store.chunk_at(path) is not None

    def embed(self, texts: list[str], dense: bool = True, sparse: bool = True,
              colbert: bool = False) -> dict[str, object]:
        """BGE-M3's outputs for ``texts``, named as ``BGEM3FlagModel.encode`` names them: ``dense_vecs``,
        ``lexical_weights`` keyed by token text, ``colbert_vecs`` (what the BGE-M3 service this app grew
        from answered); texts longer than the model takes are cut at its length."""
        if self._encoder is None:
            raise UsageError("embedding needs the model, which this engine was opened without")
        encodings = self._encoder.encode(texts, colbert=colbert)
        embedded: dict[str, object] = {"model": self._encoder.spec.display_name, "dim": self._encoder.dim}
        if dense:
            embedded["dense_vecs"] = [e.dense.tolist() for e in encodings]
        if sparse:
            embedded["lexical_weights"] = [self._encoder.lexical_text(e.sparse) for e in encodings]
        if colbert:
            embedded["colbert_vecs"] = [e.colbert.tolist() for e in encodings]
        return embedded

    def files(self, text: str = "", failed_only: bool = False, offset: int = 0,
              limit: int = 1000) -> list[dict[str, object]]:
        """Files whose path contains ``text`` (case-insensitive), by path: folder, size, date, chunks and
        state (indexed, failed with the reason, excluded with the rule, or offline when its folder is away)."""
        from desktop_app.core.search.results import iso_time

        away = [root["path"] for root in self.folders() if not root["online"]]
        with self._reading() as searcher:
            rows = searcher.store.file_list(text, failed_only, offset, limit)
        listed = []
        for path, size, mtime_ns, chunks, status, error in rows:
            state = "offline" if status == "indexed" and any(is_within(path, root) for root in away) else status
            listed.append({"path": path, "folder": str(Path(path).parent), "size": size,
                           "mtime": iso_time(mtime_ns) if status != "excluded" else "",
                           "chunks": chunks, "state": state, "reason": error})
        return listed

    def indexer(self, purpose: str = "indexing", wait: bool = True) -> Indexer:
        """An :class:`~desktop_app.core.ingest.indexer.Indexer` over this engine's index and model."""
        from desktop_app.core.ingest.indexer import Indexer

        self.refuse_mixing()
        return Indexer(self._index, self._encoder, self.settings, purpose=purpose, wait=wait)

    def remove(self, paths: list[Path], wait: bool = True, on_wait: Callable[[str], None] | None = None) -> int:
        from desktop_app.core.ingest.indexer import remove_paths

        return remove_paths(self._index, paths, wait=wait, on_wait=on_wait)

    def roots(self) -> dict[str, int | None]:
        """Indexed folders -> the device each was indexed on."""
        with self._reading() as searcher:
            return searcher.store.root_devices()

    def folders(self) -> list[dict[str, object]]:
        """Per indexed folder: path, files, chunks and whether it is reachable now (stats the folder, without
        holding the reading connection: a dead network share must not stall searches)."""
        with self._reading() as searcher:
            roots = searcher.store.root_counts()
        return [{**root, "online": root_online(root["path"], root["device"])} for root in roots]

    def failures(self) -> list[tuple[str, str]]:
        with self._reading() as searcher:
            return searcher.store.failures()

    def context(self, chunk_id: int, chars: int = 600) -> tuple[str, str, str]:
        """(text before, the chunk, text after); a folder that only searches a shared collection has
        the chunk's own text, from the collection."""
        with self._reading() as searcher:
            if self._index.searches_only:
                row = searcher.source.rows([chunk_id]).get(chunk_id)
                return ("", row.text, "") if row is not None else ("", "", "")
            return searcher.store.context(chunk_id, chars)

    def status(self) -> dict[str, object]:
        """What ``desktop-search status --json`` prints: counts, model, the vectors search has, folders."""
        info = self._index.model_info or {}
        with self._reading() as searcher:
            self._index.catch_up(searcher.store)
            counts = searcher.store.counts()
            pending = searcher.store.pending_counts()
            failures = searcher.store.failures()
        return {
            "index": str(self.settings.index_dir), **counts,
            "pending_chunks": pending["pending_chunks"], "pending_files": pending["pending_files"],
            "model": info.get("name"), "label": info.get("label"), "dim": info.get("dim"),
            "trusted_channels": info.get("trusted_channels"),
            "backend": self._index.backend_name, "searches_only": self._index.searches_only,
            "model_loaded": self.model_loaded, "runtime": self.runtime(),
            "vectors": self._index.vector_count, "repaired": self._index.repaired,
            "disk_bytes": self._index.disk_bytes(),
            "roots": [{"path": r["path"], "files": r["files"], "chunks": r["chunks"], "online": r["online"]}
                      for r in self.folders()],
            "failures": [{"path": p, "reason": r} for p, r in failures],
        }

    def runtime(self) -> dict[str, object] | None:
        """How the loaded model encodes (device, precision or CPU runtime) and what the CPU probe measured."""
        if self._encoder is None or not self._encoder.loaded:
            return None
        verdict = self._encoder.verdict
        return {"device": self._encoder.device, "precision": self._encoder.dtype, "describe": self.describe(),
                "probe": None if verdict is None else {"tokens_per_s": verdict.tokens_per_s,
                                                       "fidelity": verdict.fidelity, "rejected": verdict.rejected}}

    def close(self) -> None:
        """Close the index once no read is in progress; later calls raise :class:`IndexClosedError`."""
        with self._returned:
            if self._closed:
                return
            self._closed = True
            while self._waiting:  # they are told the index closed
                self._waiting.popleft().given.set()
            while len(self._idle) < self._made:
                self._returned.wait()
            for searcher in self._idle:
                searcher.store.close()
            self._idle.clear()
        with self._changes_lock:
            self._changes.close()
        if self._queries is not None:
            self._queries.close()
        if self._encoder is not None:
            self._encoder.close()
        self._index.close()
