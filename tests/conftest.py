"""Shared fixtures: the lite model, one loaded encoder per session, and corpus builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The CLI and the window log to the platform's log folder; tests keep theirs out of the user's.
os.environ.setdefault("DESKTOP_SEARCH_LOG_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                             f"desktop-search-test-logs-{os.getpid()}"))
# Hypothesis caches what it learns of the code under .hypothesis/ in the working directory otherwise.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                                   f"desktop-search-test-hypothesis-{os.getpid()}"))

REPO = Path(__file__).resolve().parents[1]

AERO_DOCS = {
    "stall.txt": "Wing stall happens when the angle of attack grows too large: the boundary layer separates "
                 "from the upper surface of the wing and lift drops suddenly.",
    "heat.txt": "Heat transfer in hypersonic flow: the stagnation point of a blunt body receives the "
                "highest heating rate, and ablation shields protect re-entry vehicles.",
    "buckling.txt": "Thin cylindrical shells under axial compression buckle at loads far below the classical "
                    "prediction because of small initial imperfections in their shape.",
    "noise.txt": "Jet noise is produced by turbulent mixing of the exhaust with the surrounding air; "
                 "chevrons on the nozzle reduce the noise at take-off.",
}


@pytest.fixture(scope="session")
def lite_model_dir() -> Path:
    """The lite model that `make test` builds; a missing model is an error, never a skip."""
    folder = Path(os.environ.get("DESKTOP_SEARCH_LITE_MODEL", REPO / "models" / "bge-m3-lite"))
    if not (folder / "sparse_linear.pt").is_file():
        pytest.fail(f"lite model missing at {folder}: run `make test` (it builds it)")
    os.environ["DESKTOP_SEARCH_LITE_MODEL"] = str(folder.resolve())
    return folder.resolve()


@pytest.fixture(scope="session")
def spec(lite_model_dir: Path):
    from desktop_app.core.model.resolve import load_spec

    return load_spec(lite_model_dir)


@pytest.fixture
def unconverted_spec(spec, tmp_path):
    """The lite model copied without its CPU conversions, kept heads or verdicts: a first start."""
    import shutil

    from desktop_app.core.model import cpu_runtime
    from desktop_app.core.model.resolve import load_spec

    shutil.copytree(spec.path, tmp_path / "model", ignore=shutil.ignore_patterns(cpu_runtime.FOLDER_NAME))
    return load_spec(tmp_path / "model")


@pytest.fixture(scope="session")
def encoder(spec):
    from desktop_app.core.model.encoder import Encoder

    return Encoder(spec, device="cpu", dtype="fp32").load()


@pytest.fixture
def settings(tmp_path: Path, lite_model_dir: Path):
    from desktop_app.core.config import Settings

    return Settings(index_dir=tmp_path / "index", model=str(lite_model_dir), lite_model_dir=lite_model_dir,
                    device="cpu", dtype="fp32")


def ascii_locale(env: dict[str, str]) -> dict[str, str]:
    """``env`` with a locale that claims ASCII and Python's UTF-8 mode off, as on the CI machine."""
    changed = {**env, "LC_ALL": "C", "PYTHONUTF8": "0"}
    changed.pop("PYTHONIOENCODING", None)
    return changed


def make_folder(parent: Path, name: str, texts: dict[str, str]) -> Path:
    """``parent/name`` holding one UTF-8 text file per (file name, text)."""
    folder = parent / name
    folder.mkdir()
    for file, text in texts.items():
        (folder / file).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def aero_corpus(tmp_path: Path) -> Path:
    return make_folder(tmp_path, "docs", AERO_DOCS)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lite_model_dir: Path) -> Path:
    """Environment for in-process CLI calls: a fresh index folder and the lite model."""
    index_dir = tmp_path / "cli-index"
    monkeypatch.setenv("DESKTOP_SEARCH_HOME", str(index_dir))
    monkeypatch.setenv("DESKTOP_SEARCH_MODEL", str(lite_model_dir))
    monkeypatch.setenv("DESKTOP_SEARCH_DEVICE", "cpu")
    return index_dir


@pytest.fixture(scope="module")
def aero_engine(tmp_path_factory, lite_model_dir: Path):
    """One engine per module over the aero corpus, indexed with the lite model on the CPU: for tests that
    throw many requests at one index and need neither a fresh index nor a server process."""
    from desktop_app.core.config import Settings
    from desktop_app.core.engine import Engine

    root = tmp_path_factory.mktemp("aero")
    settings = Settings(index_dir=root / "index", model=str(lite_model_dir), lite_model_dir=lite_model_dir,
                        device="cpu", dtype="fp32")
    engine = Engine.open(settings, create=True)
    engine.indexer().run([make_folder(root, "docs", AERO_DOCS)])
    yield engine
    engine.close()
