"""The keyword cache ranks exactly as FTS5's bm25() does, through additions, deletions, saves and reloads."""

from __future__ import annotations

import numpy as np
import pytest
from stored import Encoded, index_encoded

from desktop_app.core import analyze
from desktop_app.core.backends.local.caches import KEYWORDS_NAME
from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.backends.local.keywords import KeywordIndex
from desktop_app.core.backends.local.source import fts_query

WORDS = ["wing", "stall", "boundary", "layer", "heat", "transfer", "shell", "buckling", "flutter", "panel",
         "nozzle", "shock", "wave", "drag", "lift", "vortex", "rotor", "noise", "jet", "ablation"]
QUERIES = ["wing stall", "boundary layer heat", "shock wave drag drag", "flutter", "rotor noise jet ablation lift",
           "unheard words"]


def random_text(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, int(rng.integers(3, 40)), p=np.linspace(2, 0.2, len(WORDS)) / 22.0))


def fill(index: LocalIndex, rng: np.random.Generator, files: int, first: int = 0) -> None:
    dim = index.caches.dense.dim
    with index.writer("test"):
        for number in range(first, first + files):
            chunks = [Encoded(random_text(rng), np.ones(dim, dtype=np.float32) / dim ** 0.5, {1: 0.1})
                      for _ in range(int(rng.integers(1, 4)))]
            index_encoded(index, f"/docs/{random_text(rng)[:12]}-{number}.txt", chunks)


def assert_like_fts5(index: LocalIndex) -> None:
    for query in QUERIES:
        expected = index.store.keyword_top(fts_query(query), 1000)
        found = index.caches.keywords.bm25_top(analyze.terms(query), 1000)
        assert dict(found) == pytest.approx(dict(expected), rel=1e-5), query
        assert [score for _, score in found] == pytest.approx([score for _, score in expected], rel=1e-5), query


def test_the_keyword_cache_ranks_as_fts5_through_changes(tmp_path, spec) -> None:
    rng = np.random.default_rng(7)
    index = LocalIndex.open(tmp_path / "index", create=True)
    index.bind_model(spec)
    fill(index, rng, 60)
    assert_like_fts5(index)
    with index.writer("test"):  # remove a third of the files: N, n and the mean length change
        removed = []
        with index.store.transaction():
            for file_id in range(1, 61, 3):
                removed += index.store.remove_file(file_id)
        index.delete_chunks(removed)
    assert_like_fts5(index)
    assert (tmp_path / "index" / KEYWORDS_NAME).exists()
    index.close()
    reopened = LocalIndex.open(tmp_path / "index")  # loaded from keyword.npz, not rebuilt
    assert reopened.caches.keywords.posting_count > 0 and reopened.repaired == 0
    assert_like_fts5(reopened)
    fill(reopened, rng, 10, first=100)
    assert_like_fts5(reopened)
    reopened.close()


def test_a_lost_keyword_cache_is_rebuilt_from_the_chunks(tmp_path, spec) -> None:
    rng = np.random.default_rng(8)
    index = LocalIndex.open(tmp_path / "index", create=True)
    index.bind_model(spec)
    fill(index, rng, 30)
    index.close()
    (tmp_path / "index" / KEYWORDS_NAME).unlink()
    reopened = LocalIndex.open(tmp_path / "index")
    assert_like_fts5(reopened)
    reopened.close()


def test_saved_vocabulary_and_lengths_survive_a_reload(tmp_path) -> None:
    cache = KeywordIndex(tmp_path / "k.npz")
    cache.add([(1, ["wing", "stall", "wing"]), (2, ["heat"]), (3, [])])
    cache.delete([2])
    cache.save()
    loaded = KeywordIndex(tmp_path / "k.npz")
    assert loaded.load()
    assert loaded.vocabulary == {"wing": 0, "stall": 1, "heat": 2}
    assert loaded.lengths[1] == 3 and loaded.lengths[2] < 0 and loaded.lengths[3] == 0
    assert [cid for cid, _ in loaded.bm25_top(["wing"], 10)] == [1]
