"""Which backend an index folder uses, recorded in the folder so every later command finds it.

``local``: SQLite + hnswlib + the postings cache, all in the folder. ``qdrant``: SQLite in the
folder stays the indexing machine's record of files and chunks (the truth), and the search side
(vectors, lexical weights, keyword vectors, the payload hits are built from) lives in a Qdrant
collection, on a cluster (``http(s)://host:port``) or embedded in a local folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from desktop_app.core.errors import UsageError
from desktop_app.core.storage.folder import DB_NAME
from desktop_app.core.storage.store import Store

BACKENDS = ("local", "qdrant")
RECORD_NAME = "backend.json"
DEFAULT_COLLECTION = "desktop-search"
API_KEY_VARIABLE = "QDRANT_API_KEY"


@dataclass(frozen=True)
class Backend:
    """``location``: a Qdrant URL or folder; ``api_key`` is kept only when given on the command line
    (``QDRANT_API_KEY`` wins over it and is never written down)."""

    kind: str = "local"
    location: str = ""
    collection: str = DEFAULT_COLLECTION
    api_key: str = ""
    colbert: bool = False  # points carry ColBERT multi-vectors (2 KB per token at 1024-d, fp16)
    shards: int = 0  # a new collection's shard count and copies of each shard (0: the server's default)
    replicas: int = 0

    @property
    def remote(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    def key(self) -> str | None:
        return os.environ.get(API_KEY_VARIABLE) or self.api_key or None

    def describe(self) -> str:
        return "local" if self.kind == "local" else f"qdrant at {self.location} (collection {self.collection})"


def named_backend(kind: str | None, location: str | None, collection: str | None = None, api_key: str | None = None,
          colbert: bool = False, shards: int | None = None, replicas: int | None = None) -> Backend | None:
    """The backend the command line names (None: it names none); a Qdrant folder is made absolute."""
    if kind is None and location is None and collection is None:
        return None
    kind = kind or "qdrant"
    if kind not in BACKENDS:
        raise UsageError(f"unknown backend {kind!r}: use one of {', '.join(BACKENDS)}")
    if kind == "local":
        if location:
            raise UsageError("--qdrant-location goes with --backend qdrant")
        return Backend()
    if not location:
        raise UsageError("--backend qdrant needs --qdrant-location: http(s)://HOST:PORT, or a folder for embedded mode")
    if not location.startswith(("http://", "https://")):
        location = str(Path(location).expanduser().resolve())
    return Backend("qdrant", location, collection or DEFAULT_COLLECTION, api_key or "", colbert, shards or 0,
                   replicas or 0)


def recorded(folder: Path) -> Backend | None:
    """The backend an index folder recorded (None: a folder from before backends, or no index yet)."""
    try:
        data = json.loads((Path(folder) / RECORD_NAME).read_text(encoding="utf-8"))
        return Backend(**{k: v for k, v in data.items() if k in Backend.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        raise UsageError(f"cannot read {Path(folder) / RECORD_NAME}: {error}") from None


def record(folder: Path, backend: Backend) -> None:
    """Write the record atomically, readable by its owner only (it may hold an API key)."""
    path = Path(folder) / RECORD_NAME
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(asdict(backend), out, indent=1)
        os.replace(temporary, path)
    except BaseException:  # a full disk: the old record stays, no half-written one beside it
        temporary.unlink(missing_ok=True)
        raise


def check_switch(folder: Path, wanted: Backend | None) -> Backend:
    """The backend to open ``folder`` with: the recorded one, or ``wanted`` for a new or empty index.

    Naming another backend than the one an index holds data in is an error that says what to
    do, never a silent switch: the other backend would start empty.
    """
    current = recorded(folder) or Backend()
    if wanted is None:
        return current
    if (wanted.kind, wanted.location, wanted.collection) != (current.kind, current.location, current.collection) \
            and _holds_files(folder):
        raise UsageError(f"the index at {folder} uses the {current.describe()} backend; use another --index folder "
                         f"for {wanted.describe()}, or remove this folder's files from the index first")
    return wanted


def _holds_files(folder: Path) -> bool:
    if not (folder / DB_NAME).exists():
        return False
    store = Store(folder / DB_NAME)
    try:
        return store.chunk_count() > 0
    finally:
        store.close()
