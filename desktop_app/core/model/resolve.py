"""Find the model to use: an explicit id or folder, BGE-M3 from the local cache, or the lite model.

Resolution never imports torch: it only looks at files, so the window and ``status`` stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.config import DEFAULT_MODEL, Settings
from desktop_app.core.errors import ModelError

HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")
# The model channels a ranking may lean on by default. BGE-M3 trained all three together; the
# lite model's sparse head is an IDF regression and its ColBERT head an identity, so only its
# dense vectors are trusted (``desktop_search.json`` says so; older lite builds are told by label).
TRAINED_CHANNELS = ("dense", "sparse", "colbert")
LITE_CHANNELS = ("dense",)
FINGERPRINT_FILES = ("config.json", "tokenizer.json", "sparse_linear.pt", "colbert_linear.pt")


@dataclass(frozen=True)
class ModelSpec:
    """A model folder on disk that is known to hold BGE-M3-format weights and heads."""

    name: str
    path: Path
    label: str
    pooling: str
    max_positions: int
    hidden_size: int
    trusted: tuple[str, ...] = TRAINED_CHANNELS
    layers: int = 24  # BGE-M3's

    @property
    def is_lite(self) -> bool:
        return self.label == "lite"

    @property
    def display_name(self) -> str:
        """Short name for titles: a hub id as is, a folder by its last part; the lite model says so."""
        short = self.name if not Path(self.name).is_absolute() else Path(self.name).name
        return f"{short} (lite model)" if self.is_lite else short

    def fingerprint(self) -> str:
        """Hash of the files that decide what vectors the model produces."""
        digest = hashlib.sha256()
        for name in FINGERPRINT_FILES:
            file = self.path / name
            if file.exists():
                stat = file.stat()
                digest.update(f"{name}:{stat.st_size}".encode())
                with file.open("rb") as handle:
                    digest.update(handle.read(1 << 20))
        return digest.hexdigest()[:16]


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def built_with(spec: ModelSpec, info: Mapping[str, object]) -> bool:
    """The compatibility rule: an index's vectors are ``spec``'s when its recorded model has the same
    weights (fingerprint) and dimension. Everything that mixes or refuses models asks this."""
    return info.get("fingerprint") == spec.fingerprint() and info.get("dim") == spec.hidden_size


def mixing_refused(folder: Path, built: str, wanted: str) -> str:
    """Why a writer may not add ``wanted``'s vectors to an index of ``built``'s, and what to do instead."""
    return (f"the index at {folder} was built with model {built}, not {wanted}: re-index with "
            f"`desktop-search index --rebuild --model {wanted} PATH...` (or the window's \"Rebuild with this "
            "model\") or pick another index folder")


def has_weights(folder: Path) -> bool:
    """True when the model's weights are all there. The hub writes a snapshot's links (and
    ``refs/main``) as files arrive, so a cancelled download can look like a model without them;
    a link to a blob still being written (``.incomplete``) does not resolve to a file."""
    for name in WEIGHT_FILES:
        file = folder / name
        if file.is_file() and file.stat().st_size > 0:
            return True
        shards = folder / f"{name}.index.json"
        if shards.is_file():
            try:
                names = set(json.loads(shards.read_text())["weight_map"].values())
            except (ValueError, KeyError, OSError):
                return False
            return all((folder / shard).is_file() and (folder / shard).stat().st_size > 0 for shard in names)
    return False


def hub_offline(env: dict[str, str] | None = None) -> bool:
    """True when the user told Hugging Face libraries to stay offline (``HF_HUB_OFFLINE``)."""
    value = (os.environ if env is None else env).get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def looks_like_path(ref: str) -> bool:
    """A Hugging Face id is ``owner/name``; anything else with a separator is a folder."""
    return ref.startswith((".", "/", "~")) or "\\" in ref or ref.count("/") > 1


def load_spec(folder: Path, name: str | None = None) -> ModelSpec:
    """Check that ``folder`` is a complete BGE-M3-format model and describe it."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    if not (folder / "config.json").is_file():
        raise ModelError(f"model folder {folder} has no config.json: it is not a Hugging Face model")
    missing = [f for f in HEAD_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelError(
            f"model folder {folder} lacks {' and '.join(missing)}: it is not a BGE-M3 model "
            "(its sparse and ColBERT heads would be random)"
        )
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"model folder {folder} has no tokenizer.json (a fast tokenizer is required)")
    if not has_weights(folder):
        raise ModelError(f"model folder {folder} has no complete weights file (model.safetensors or "
                         "pytorch_model.bin): an unfinished download? Download it again")
    config = json.loads((folder / "config.json").read_text())
    extra_file = folder / "desktop_search.json"
    extra = json.loads(extra_file.read_text()) if extra_file.is_file() else {}
    positions = int(config.get("max_position_embeddings", 514))
    if config.get("model_type") in ("xlm-roberta", "roberta"):
        positions -= 2
    return ModelSpec(
        name=name or str(folder.resolve()),
        path=folder.resolve(),
        label=extra.get("label", "full"),
        pooling=extra.get("pooling", "cls"),
        max_positions=positions,
        hidden_size=int(config["hidden_size"]),
        trusted=trusted_channels(extra),
        layers=int(config.get("num_hidden_layers", 24)),
    )


def trusted_channels(record: dict[str, object]) -> tuple[str, ...]:
    """The channels a model record (``desktop_search.json`` or an index's model meta) trusts."""
    named = record.get("trusted_channels")
    if isinstance(named, list) and named:
        return tuple(c for c in TRAINED_CHANNELS if c in named)
    return LITE_CHANNELS if record.get("label") == "lite" else TRAINED_CHANNELS


def cached_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache folder of ``repo_id``, without touching the network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return None


def download_snapshot(repo_id: str) -> Path:
    """Fetch ``repo_id`` from the Hugging Face Hub (progress bars go to stderr)."""
    if hub_offline():
        raise ModelError(f"model {repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, ignore_patterns=["*.onnx*", "onnx/*", "*.msgpack", "*.h5", "*.ot"]))
    except Exception as error:  # noqa: BLE001 - the hub raises many kinds; the user needs one sentence
        raise ModelError(f"could not download model {repo_id}: {error.__class__.__name__}: {error}") from None


def resolve(ref: str, allow_download: bool = True) -> ModelSpec:
    """A model id or folder as the user typed it -> a checked local folder."""
    candidate = Path(ref).expanduser()
    if candidate.is_dir() or looks_like_path(ref):
        return load_spec(candidate)
    snapshot = cached_snapshot(ref)
    if snapshot is None:
        if not allow_download:
            raise ModelError(f"model {ref} is not in the local Hugging Face cache")
        snapshot = download_snapshot(ref)
    return load_spec(snapshot, name=ref)


def resolve_recorded(info: dict[str, object], settings: Settings) -> ModelSpec:
    """The model an index was built with, as its meta record names it.

    The lite model is found by fingerprint wherever the app keeps it now: a moved or updated
    app bundle (or a macOS app run from a random path) changes its folder, not its weights.
    """
    name = str(info["name"])
    lite = settings.lite_model_dir
    if info.get("label") == "lite" and not Path(name).is_dir() and (lite / "sparse_linear.pt").is_file():
        spec = load_spec(lite)
        if spec.fingerprint() == info.get("fingerprint"):
            return spec
    return resolve(name, allow_download=False)


def resolve_default(settings: Settings) -> ModelSpec:
    """The model to use when the user named none: their setting, cached BGE-M3, else lite."""
    if settings.model:
        return resolve(settings.model)
    snapshot = cached_snapshot(DEFAULT_MODEL)
    if snapshot is not None:
        try:
            return load_spec(snapshot, name=DEFAULT_MODEL)
        except ModelError:
            pass  # a cancelled or half-finished download: the lite model serves, and the download is offered again
    if (settings.lite_model_dir / "sparse_linear.pt").is_file():
        return load_spec(settings.lite_model_dir)
    raise ModelError(
        f"no model available: {DEFAULT_MODEL} is not in the Hugging Face cache and the lite model "
        f"is missing at {settings.lite_model_dir}; run `make setup` or pass --model"
    )
