"""An index folder: what every backend's index holds, whatever it searches with.

The folder keeps SQLite (the truth: files, chunks, vectors, the model record, the generation
counter) and the writer lock; a backend keeps its search side beside it (the local caches'
files) or elsewhere (a Qdrant collection). Both backends' indexes hold one of these instead of
inheriting each other, so opening, the model record, the lock and the state a backend records
about its search side mean the same thing for both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from desktop_app.core.errors import IndexMismatchError, IndexMissingError
from desktop_app.core.model.resolve import ModelSpec, built_with, mixing_refused
from desktop_app.core.storage.lock import WriterLock
from desktop_app.core.storage.store import Store

DB_NAME = "index.sqlite3"
# Where removable drives are mounted: an index folder below one of these whose drive is not plugged in
# would otherwise be made anew on the system disk, under the empty mount point.
REMOVABLE_MEDIA = ("/media", "/run/media", "/mnt", "/Volumes")


class IndexFolder:
    """``path`` with its store open; open with :meth:`open`."""

    def __init__(self, path: Path, store: Store) -> None:
        self.path = path
        self.store = store

    @classmethod
    def open(cls, path: Path, create: bool = False) -> IndexFolder:
        """The index in ``path``; a folder without one is an error unless ``create``."""
        path = Path(path).expanduser()
        if not (path / DB_NAME).exists():
            if not create:
                raise IndexMissingError(f"no index at {path}: run `desktop-search index PATH` to build one")
            unplugged = drive_not_mounted(path)
            if unplugged is not None:
                raise IndexMissingError(
                    f"the index folder {path} is on a drive that is not connected (nothing is mounted at "
                    f"{unplugged}): plug the drive in, or choose another index folder — a new index is not made "
                    "on the system disk in its place")
            path.mkdir(parents=True, exist_ok=True)
        return cls(path, Store(path / DB_NAME))

    def connect(self) -> Store:
        """A connection of its own to the store (a thread that reads while another writes)."""
        return Store(self.path / DB_NAME)

    @property
    def model_info(self) -> dict[str, object] | None:
        return self.store.model_info()

    def bind_model(self, spec: ModelSpec, rebuild: bool, forget: Callable[[], None]) -> bool:
        """Record the model of a new index, or check that an existing index was built with it.

        ``rebuild`` records it anyway, after ``forget`` dropped what the old model made. True when
        the model was recorded now (the caller then readies its search side for the dimension).
        """
        existing = self.model_info
        if existing is not None and not rebuild:
            if not built_with(spec, existing):
                raise IndexMismatchError(mixing_refused(self.path, f"{existing['name']} (dim {existing['dim']})",
                                                        spec.name))
            return False
        if existing is not None:
            forget()
        record = {"name": spec.name, "dim": spec.hidden_size, "fingerprint": spec.fingerprint(), "label": spec.label,
                  "trusted_channels": list(spec.trusted)}
        self.store.set_meta("model", json.dumps(record))
        return True

    def check_dim(self, dim: int, store: Store | None = None) -> None:
        """Refuse to go on with ``dim``-d vectors once another process rebuilt the index with another model."""
        info = (store or self.store).model_info()
        if info is not None and int(info["dim"]) != dim:
            raise IndexMismatchError(f"the index at {self.path} was rebuilt with model {info['name']} by another "
                                     "process; open it again to search it")

    def writer_lock(self, purpose: str, wait: bool, on_wait: Callable[[str], None] | None,
                    cancelled: Callable[[], bool] | None) -> WriterLock:
        """The lock one writer at a time holds (see :mod:`desktop_app.core.storage.lock`)."""
        return WriterLock(self.path, purpose, wait, on_wait, cancelled)

    def search_state(self, key: str, store: Store | None = None) -> dict[str, object]:
        """What a backend recorded about its search side under ``key`` (empty when nothing was)."""
        return json.loads((store or self.store).get_meta(key) or "{}")

    def record_search_state(self, key: str, state: dict[str, object]) -> int:
        """Record ``state`` with the store generation it reflects; return that generation."""
        generation = self.store.generation()
        self.store.set_meta(key, json.dumps({**state, "generation": generation}))
        return generation

    def clear(self, *cache_names: str) -> None:
        """Forget every file, chunk and the model record (roots are kept), and delete these cache files."""
        self.store.clear()
        for name in cache_names:
            (self.path / name).unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def close(self) -> None:
        self.store.close()


def drive_not_mounted(path: Path) -> Path | None:
    """The folder that ``path`` would be made in although it is an empty mount point: ``path`` lies below a
    removable-media folder (``/media``, ``/mnt``, ...) and its nearest existing folder is on the same disk
    as the folder holding that one, so no drive is mounted on the way. None where a drive is, or elsewhere.
    """
    path = path.resolve()
    for base in map(Path, REMOVABLE_MEDIA):
        if base not in path.parents:
            continue
        existing = next(folder for folder in path.parents if folder.exists())
        try:
            if existing.stat().st_dev == base.parent.stat().st_dev:
                return existing
        except OSError:
            return None
    return None
