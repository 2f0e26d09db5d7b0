"""Runs `desktop-search index` and SIGKILLs itself at the Nth call of a chosen operation.

Usage: python crash_child.py POINT N -- CLI ARGS...   (test helper, never imported by the app)
Points: commit (inside a transaction, before COMMIT), vectors-add (after a commit, before the
vectors are added), save-replace (temporary hnswlib file written, not yet renamed),
save-meta (file renamed, its state not yet recorded in SQLite), postings-add (after a commit,
before the sparse postings are added), postings-replace (temporary postings file written, not
yet renamed), qdrant-upsert (after a commit, before its points reach Qdrant), qdrant-state
(points written, the generation they reflect not yet recorded), words-add (stage 1 committed a
group of files, their words not yet in the keyword cache: between text and vectors), encode
(stage 2 claimed a batch of pending chunks and is encoding it), encodings-add (stage 2 committed
a batch's vectors, not yet in the caches).
"""

from __future__ import annotations

import os
import signal
import sys

from desktop_app.core.backends.local import caches as caches_module
from desktop_app.core.backends.local import dense as dense_module
from desktop_app.core.backends.local import postings as postings_module
from desktop_app.core.backends.qdrant import collection as qdrant_collection
from desktop_app.core.model import encoder as encoder_module
from desktop_app.core.storage import store as store_module

# Points where a method of a cache dies before doing anything, and meta rows whose write dies first.
DIE_BEFORE = {"vectors-add": (dense_module.DenseIndex, "add"),
              "postings-add": (postings_module.PostingsIndex, "add"),
              "qdrant-upsert": (qdrant_collection.QdrantCollection, "upsert"),
              "words-add": (caches_module.LocalCaches, "add_words"),
              "encode": (encoder_module.Encoder, "encode"),
              "encodings-add": (caches_module.LocalCaches, "add_encodings")}
DIE_BEFORE_META = {"save-meta": "vectors_state", "qdrant-state": "qdrant_state"}


def killer(n: int):
    calls = {"count": 0}

    def maybe_die() -> None:
        calls["count"] += 1
        if calls["count"] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    return maybe_die


def arm(point: str, n: int) -> None:
    die = killer(n)
    if point == "commit":
        class KillBeforeCommit:
            """The store's connection, except that COMMIT may kill the process first."""

            def __init__(self, conn) -> None:
                self.conn = conn

            def execute(self, sql, *args):
                if sql == "COMMIT":
                    die()
                return self.conn.execute(sql, *args)

            def __getattr__(self, name):
                return getattr(self.conn, name)

        store_module.Store.conn = property(lambda self: KillBeforeCommit(self.db.conn))
    elif point in DIE_BEFORE:
        owner, name = DIE_BEFORE[point]
        original = getattr(owner, name)

        def die_first(self, *args, **kwargs):
            die()
            return original(self, *args, **kwargs)

        setattr(owner, name, die_first)
    elif point in ("save-replace", "postings-replace"):
        temporary = ".hnsw.tmp" if point == "save-replace" else ".npz.tmp"
        original_replace = os.replace

        def replace(source, target):
            if str(source).endswith(temporary):
                die()
            original_replace(source, target)

        os.replace = replace
    elif point in DIE_BEFORE_META:
        original_set_meta = store_module.Store.set_meta

        def set_meta(self, key, value):
            if key == DIE_BEFORE_META[point]:
                die()
            original_set_meta(self, key, value)

        store_module.Store.set_meta = set_meta
    elif point != "none":
        raise SystemExit(f"unknown point {point}")


if __name__ == "__main__":
    point, n, separator, *cli_args = sys.argv[1:]
    arm(point, int(n))
    from desktop_app.cli import main

    sys.exit(main(cli_args))
