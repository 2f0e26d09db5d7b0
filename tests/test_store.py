"""SQLite store: sparse retrieval against brute force, atomic file replacement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stored import Encoded, store_encoded

from desktop_app.core.storage.store import Store


def chunk(sparse: dict[int, float], text: str = "text") -> Encoded:
    return Encoded(text, np.ones(4, dtype=np.float32) / 2, sparse)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "index.sqlite3")
    rng = np.random.default_rng(7)
    with opened.transaction():
        for f in range(40):
            chunks = [chunk({int(t): float(w) for t, w in zip(rng.choice(50, 8, replace=False), rng.random(8))})
                      for _ in range(5)]
            store_encoded(opened, f"/docs/{f}.txt", chunks)
    yield opened
    opened.close()


def test_replacing_a_file_is_all_or_nothing(store: Store) -> None:
    before = store.counts()
    with pytest.raises(RuntimeError), store.transaction():
        store_encoded(store, "/docs/0.txt", [chunk({1: 0.1})], mtime_ns=2)
        raise RuntimeError("crash in the middle")
    assert store.counts() == before
    assert len(store.files_under("/docs")) == 40
