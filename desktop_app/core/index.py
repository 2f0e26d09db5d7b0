"""An index folder: the SQLite store, the hnswlib cache beside it and the model they belong to.

Opening checks that the cache matches the store (a crash between a commit and a save leaves
them apart) and repairs it from the dense blobs, so search never sees a missing vector.
"""

from __future__ import annotations

import json
from pathlib import Path

from desktop_app.core.errors import IndexMismatchError, IndexMissingError
from desktop_app.core.models import ModelSpec
from desktop_app.core.store import Store
from desktop_app.core.vectors import VectorIndex

DB_NAME = "index.sqlite3"
VECTORS_NAME = "dense.hnsw"
COMPACT_DELETED_FRACTION = 0.3


class Index:
    """Open with :meth:`open`; bind a model before writing with :meth:`bind_model`."""

    def __init__(self, folder: Path, store: Store) -> None:
        self.folder = folder
        self.store = store
        self.vectors: VectorIndex | None = None
        self.repaired = 0
        info = store.model_info()
        if info is not None:
            self.attach_vectors(int(info["dim"]))

    @classmethod
    def open(cls, folder: Path, create: bool = False) -> Index:
        folder = Path(folder).expanduser()
        if not (folder / DB_NAME).exists():
            if not create:
                raise IndexMissingError(f"no index at {folder}: run `desktop-search index PATH` to build one")
            folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, Store(folder / DB_NAME))

    @property
    def model_info(self) -> dict[str, object] | None:
        return self.store.model_info()

    def bind_model(self, spec: ModelSpec, rebuild: bool = False) -> None:
        """Record the model of a new index, or check that an existing index was built with it."""
        wanted = {"name": spec.name, "dim": spec.hidden_size, "fingerprint": spec.fingerprint(), "label": spec.label,
                  "trusted_channels": list(spec.trusted)}
        existing = self.model_info
        if existing is not None and not rebuild:
            if existing["fingerprint"] != wanted["fingerprint"] or existing["dim"] != wanted["dim"]:
                raise IndexMismatchError(
                    f"the index at {self.folder} was built with model {existing['name']} (dim {existing['dim']}), "
                    f"not {spec.name} (dim {spec.hidden_size}); re-index with "
                    f"`desktop-search index --rebuild --model {spec.name} PATH...` or pick another --index folder"
                )
            return
        if existing is not None:
            self.clear()
        self.store.set_meta("model", json.dumps(wanted))
        self.attach_vectors(spec.hidden_size)

    def clear(self) -> None:
        """Forget every file and vector (a rebuild with another model); roots are kept."""
        self.store.clear()
        (self.folder / VECTORS_NAME).unlink(missing_ok=True)
        self.vectors = None

    def attach_vectors(self, dim: int) -> None:
        self.vectors = VectorIndex(self.folder / VECTORS_NAME, dim)
        self.repaired = self.sync_vectors()

    def state(self) -> dict[str, int]:
        return {"chunks": self.store.chunk_count(), "max_id": self.store.max_chunk_id()}

    def sync_vectors(self) -> int:
        """Make the hnswlib cache hold exactly the store's chunks; return how many were fixed."""
        loaded = self.vectors.load_or_create()
        recorded = self.store.get_meta("vectors_state")
        state = self.state()
        if loaded and recorded:
            saved = json.loads(recorded)
            if saved.get("chunks") == state["chunks"] and saved.get("max_id") == state["max_id"]:
                self.vectors.deleted_count = int(saved.get("labels", state["chunks"])) - state["chunks"]
                return 0
        expected = set(self.store.all_chunk_ids().tolist())
        present = set(self.vectors.labels().tolist())
        extra = present - expected
        missing = sorted(expected - present)
        self.vectors.delete(list(extra))
        self.vectors.deleted_count = len(present) - len(present & expected)
        for ids, vectors in self.store.iter_dense(missing):
            self.vectors.add(ids, vectors)
        self.save_vectors()
        return len(missing) + len(extra)

    def refill_vectors(self) -> None:
        """Rebuild the hnswlib cache from the dense blobs (drops deleted labels for good)."""
        self.vectors.reset()
        for ids, vectors in self.store.iter_dense():
            self.vectors.add(ids, vectors)

    def save_vectors(self) -> None:
        """Save the cache atomically, compacting it first when many labels are deleted."""
        if self.vectors is None:
            return
        total = self.vectors.total_labels
        if total and self.vectors.deleted_count / total > COMPACT_DELETED_FRACTION:
            self.refill_vectors()
        self.vectors.save()
        state = self.state()
        state["labels"] = self.vectors.total_labels
        self.store.set_meta("vectors_state", json.dumps(state))

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        if self.vectors is not None and self.vectors.dirty:
            self.save_vectors()
        self.store.close()
