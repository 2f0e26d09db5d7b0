"""Fetch BAAI/bge-m3 into the Hugging Face cache, with byte progress and a cancel that works.

huggingface_hub offers no byte callback and no way to abort a transfer, so the download runs
in a child process (terminated on cancel; the hub resumes its ``.incomplete`` files next
time) and progress is the size of the repository's blob folder in the cache. The cache is
the hub's own (``HF_HOME`` / ``HF_HUB_CACHE`` apply), so the CLI and every later start find
the model there.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
import queue
from collections.abc import Callable
from pathlib import Path

from desktop_app.core.config import DEFAULT_MODEL
from desktop_app.core.errors import Cancelled, ModelError
from desktop_app.core.model.resolve import cached_snapshot, hub_offline, load_spec

ALLOW_PATTERNS = ("*.json", "pytorch_model.bin", "*.pt", "sentencepiece.bpe.model")
APPROX_BYTES = 2_300_000_000
POLL_S = 0.25


def repo_cache_folder(repo_id: str) -> Path:
    """Where the hub keeps ``repo_id``: ``$HF_HUB_CACHE/models--owner--name``."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))


def expected_bytes(repo_id: str) -> int:
    """Total size of the files the app needs, from the hub's metadata (an estimate if unreachable)."""
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, files_metadata=True, timeout=15)
        sizes = [s.size or 0 for s in info.siblings or []
                 if any(fnmatch.fnmatch(s.rfilename, p) for p in ALLOW_PATTERNS) and "/" not in s.rfilename]
        return sum(sizes) or APPROX_BYTES
    except Exception:  # noqa: BLE001 - only an estimate for the progress bar
        return APPROX_BYTES


def fetch_snapshot(repo_id: str) -> None:
    """The child's work: the weights, heads, config and tokenizer (not the ONNX export)."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id, allow_patterns=list(ALLOW_PATTERNS))


def run_child(fetch: Callable[[str], None], repo_id: str, errors: multiprocessing.Queue) -> None:
    try:
        fetch(repo_id)
    except BaseException as error:  # noqa: BLE001 - reported to the parent as one sentence
        errors.put(f"{error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        raise SystemExit(1) from None


def folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


class ModelDownload:
    """One download of ``repo_id``; ``fetch`` is replaceable (tests use a fake hub)."""

    def __init__(self, repo_id: str = DEFAULT_MODEL, fetch: Callable[[str], None] | None = None,
                 total_bytes: int | None = None) -> None:
        self.repo_id = repo_id
        self.fetch = fetch or fetch_snapshot
        self.total_bytes = total_bytes

    def run(self, on_progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> Path:
        """Download, reporting (bytes so far, total); return the snapshot folder.

        Raises :class:`Cancelled` when ``cancelled()`` turns true, :class:`ModelError` on failure.
        """
        if hub_offline():
            raise ModelError(f"HF_HUB_OFFLINE is set, so {self.repo_id} cannot be downloaded; "
                             "unset it, or pick a local model folder in Settings")
        total = self.total_bytes or expected_bytes(self.repo_id)
        blobs = repo_cache_folder(self.repo_id) / "blobs"
        context = multiprocessing.get_context("spawn")
        errors = context.Queue()
        child = context.Process(target=run_child, args=(self.fetch, self.repo_id, errors), daemon=True)
        child.start()
        while child.is_alive():
            if cancelled():
                child.terminate()
                child.join()
                raise Cancelled(f"download of {self.repo_id} cancelled; what arrived is kept and resumes next time")
            on_progress(folder_bytes(blobs) if blobs.is_dir() else 0, total)
            child.join(POLL_S)
        if child.exitcode != 0:
            try:
                reason = errors.get(timeout=1)
            except queue.Empty:
                reason = f"the download process stopped (exit code {child.exitcode})"
            raise ModelError(f"could not download {self.repo_id}: {reason}; check the network connection "
                             "and free disk space, then try again")
        snapshot = cached_snapshot(self.repo_id)
        if snapshot is None:
            raise ModelError(f"{self.repo_id} was downloaded but is not complete in the cache at {blobs.parent}")
        on_progress(total, total)
        load_spec(snapshot, name=self.repo_id)
        return snapshot
