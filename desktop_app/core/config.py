"""Settings: where the index lives, which model and device, chunking and fusion weights.

Defaults come first, then environment variables (``DESKTOP_SEARCH_*``), then explicit
overrides from the CLI or the settings dialog. This object is the only global-ish state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop_app.core.errors import UsageError, shown

APP_NAME = "desktop-search"
DEFAULT_MODEL = "BAAI/bge-m3"
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "fp32", "bf16", "fp16", "openvino-fp32", "openvino-bf16", "onnx-int8",  # the last four: CPU
          "openvino-int8")
MODES = ("hybrid", "dense", "sparse", "colbert", "keyword")
CHANNELS = ("dense", "sparse", "colbert", "keyword")
# The HTTP API's address (`desktop-search serve`, the window's "Allow other apps to search"): this computer only.
API_HOST = "127.0.0.1"
API_PORT = 7860
DEFAULT_EXCLUDES = (".*", "node_modules/", "__pycache__/", "venv/", "env/", "site-packages/", "*~", "~$*",
                    "*.pyc", "*.swp")


@dataclass(frozen=True)
class Weights:
    """Fusion weights per channel; channels that are off are renormalised away."""

    dense: float = 0.4
    sparse: float = 0.3
    colbert: float = 0.3
    keyword: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Weights:
        """Parse ``D,S,C[,K]`` as the CLI and settings accept it."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (3, 4):
            raise UsageError(f"weights must be D,S,C or D,S,C,K (got {shown(text)})")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UsageError(f"weights must be numbers (got {shown(text)})") from None
        return cls.of(values, text)

    @classmethod
    def of(cls, values: Sequence[float], written: str | None = None) -> Weights:
        """``D, S, C[, K]`` as numbers (the HTTP API takes them as a JSON list); ``written`` is how the user
        wrote them, for messages."""
        written = ",".join(map(str, values)) if written is None else written
        if len(values) not in (3, 4):
            raise UsageError(f"weights must be D,S,C or D,S,C,K (got {shown(written)})")
        if any(v < 0 or v != v or v == float("inf") for v in values):
            raise UsageError(f"weights must be finite and >= 0 (got {shown(written)})")
        if sum(values) <= 0:
            raise UsageError("weights must not all be 0")
        return cls(*values)

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in CHANNELS}

    def as_text(self) -> str:
        """``D,S,C,K`` as :meth:`parse` reads it."""
        return ",".join(f"{getattr(self, name):g}" for name in CHANNELS)


# BGE-M3's reference weighting (its paper and ``compute_score``); the keyword share on top of
# it cannot be measured without the real weights, so it stays 0 (see README, "Ranking").
BGE_M3_WEIGHTS = Weights(dense=0.4, sparse=0.3, colbert=0.3, keyword=0.0)
# A model trusted with its dense vectors only (the lite model): dense and BM25 keyword scores,
# each divided by its best for the query, in equal parts. Chosen on Cranfield, reported on CACM
# (bench/README.md, "Choosing the fusion").
DENSE_KEYWORD_WEIGHTS = Weights(dense=0.5, sparse=0.0, colbert=0.0, keyword=0.5)


def default_weights(trusted: tuple[str, ...]) -> Weights:
    """The fusion a model gets unless the user sets weights: what it was trained for, else dense + BM25."""
    if {"sparse", "colbert"} <= set(trusted):
        return BGE_M3_WEIGHTS
    return DENSE_KEYWORD_WEIGHTS


def default_index_dir() -> Path:
    """The platform's per-user data folder, e.g. ~/.local/share/desktop-search/index."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False)) / "index"


def default_lite_model_dir() -> Path:
    """Where the bundled lite model lives: a source checkout's models/, else the data folder."""
    checkout = Path(__file__).resolve().parents[2] / "models" / "bge-m3-lite"
    if checkout.is_dir():
        return checkout
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False)) / "models" / "bge-m3-lite"


@dataclass(frozen=True)
class Settings:
    """Everything a run of the indexer or a search needs to know."""

    index_dir: Path = field(default_factory=default_index_dir)
    model: str | None = None
    lite_model_dir: Path = field(default_factory=default_lite_model_dir)
    device: str = "auto"
    dtype: str = "auto"
    chunk_tokens: int = 512
    chunk_overlap: int = 64
    # Words are kept for far more text than meaning: a 200 MB log is findable by every word, while
    # the model encodes a file's first ``meaning_max_chunks`` chunks (about 1M tokens) only.
    max_chars_per_file: int = 256_000_000
    meaning_max_chunks: int = 2_000
    weights: Weights | None = None  # None: the model's defaults (default_weights)
    # .gitignore syntax (core/ingest/exclude.py): hidden files and folders (VCS folders, .venv, .cache among
    # them), dependency and build caches, editor and Office lock/backup files.
    exclude_patterns: tuple[str, ...] = DEFAULT_EXCLUDES
    honour_gitignore: bool = True
    file_types: tuple[str, ...] = ()
    watch_folders: bool = True
    # OCR of scanned PDF pages and image files, capped per file so one huge scan cannot stall a run
    ocr: bool = True
    ocr_max_pages: int = 200
    ocr_max_seconds: float = 300.0
    extract_workers: int = 0  # processes reading PDFs, OCR and office files; 0: one per spare core, up to 4
    # The window's "Allow other apps to search": the HTTP API on API_HOST (this computer only); port 0: any free one
    api_enabled: bool = False
    api_port: int = API_PORT

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise UsageError(f"device must be one of {', '.join(DEVICES)} (got {shown(self.device)})")
        if self.dtype not in DTYPES:
            raise UsageError(f"dtype must be one of {', '.join(DTYPES)} (got {shown(self.dtype)})")
        if not 16 <= self.chunk_tokens <= 8192:
            raise UsageError(f"chunk size must be between 16 and 8192 tokens (got {self.chunk_tokens})")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise UsageError(f"chunk overlap must be >= 0 and under half the chunk size (got {self.chunk_overlap})")
        if self.ocr_max_pages < 1 or not self.ocr_max_seconds > 0:
            raise UsageError("OCR limits must be at least 1 page and more than 0 seconds")
        if self.meaning_max_chunks < 1:
            raise UsageError(f"the chunks encoded per file must be at least 1 (got {self.meaning_max_chunks})")
        if not 0 <= self.extract_workers <= 64:
            raise UsageError(f"extraction workers must be between 0 (automatic) and 64 (got {self.extract_workers})")
        if not 0 <= self.api_port <= 65535:
            raise UsageError(f"the API port must be between 0 (any free port) and 65535 (got {self.api_port})")

    def wants_suffix(self, suffix: str) -> bool:
        """True when ``suffix`` is among the chosen file types (all supported types when none chosen)."""
        return not self.file_types or suffix.lower() in self.file_types

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ``DESKTOP_SEARCH_*`` variables, then non-None ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("DESKTOP_SEARCH_HOME"):
            values["index_dir"] = Path(env["DESKTOP_SEARCH_HOME"]).expanduser()
        if env.get("DESKTOP_SEARCH_MODEL"):
            values["model"] = env["DESKTOP_SEARCH_MODEL"]
        if env.get("DESKTOP_SEARCH_LITE_MODEL"):
            values["lite_model_dir"] = Path(env["DESKTOP_SEARCH_LITE_MODEL"]).expanduser().resolve()
        if env.get("DESKTOP_SEARCH_DEVICE"):
            values["device"] = env["DESKTOP_SEARCH_DEVICE"]
        if env.get("DESKTOP_SEARCH_DTYPE"):
            values["dtype"] = env["DESKTOP_SEARCH_DTYPE"]
        if env.get("DESKTOP_SEARCH_MEANING_CHUNKS", "").isdigit():
            values["meaning_max_chunks"] = int(env["DESKTOP_SEARCH_MEANING_CHUNKS"])
        if env.get("DESKTOP_SEARCH_OCR") in ("0", "1"):
            values["ocr"] = env["DESKTOP_SEARCH_OCR"] == "1"
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def reopens_engine(self, new: Settings) -> bool:
        """Going from these settings to ``new`` needs the index opened again: another model, device,
        precision or folder, or settings an open engine's indexer was built with."""
        return any(getattr(self, name) != getattr(new, name) for name in _ENGINE_SETTINGS)


# Settings an open engine is built with (see Settings.reopens_engine); the rest apply at once.
_ENGINE_SETTINGS = ("model", "device", "dtype", "index_dir", "chunk_tokens", "chunk_overlap", "file_types",
                    "exclude_patterns", "honour_gitignore", "ocr", "ocr_max_pages", "ocr_max_seconds",
                    "extract_workers")
