"""Model resolution: folders, heads, the lite fallback and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from desktop_app.core.config import Settings
from desktop_app.core.errors import ModelError
from desktop_app.core.model.resolve import load_spec, looks_like_path, resolve, resolve_default


def test_lite_model_is_described_as_lite(spec) -> None:
    assert spec.is_lite and spec.pooling == "mean"
    assert spec.hidden_size == 384 and spec.max_positions == 512
    assert "lite" in spec.display_name


def test_the_lite_model_is_built_with_the_sparse_head_kept_beside_its_script(lite_model_dir: Path) -> None:
    """Set-up reads the fitted head instead of fitting it (40 s, and a head that hung on the running Python's
    docstrings): the model the tests use holds exactly the kept figures."""
    import json

    import torch

    kept = json.loads((Path(__file__).resolve().parents[1] / "scripts" / "lite_sparse_head.json").read_text())
    head = torch.load(lite_model_dir / "sparse_linear.pt")
    assert head["weight"].flatten().tolist() == torch.tensor(kept["weight"], dtype=torch.float32).tolist()
    assert head["bias"].item() == torch.tensor(kept["bias"], dtype=torch.float32).item()


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve(str(tmp_path / "nowhere"))


def test_model_folder_without_heads_is_refused(tmp_path: Path, lite_model_dir: Path) -> None:
    copy = tmp_path / "headless"
    shutil.copytree(lite_model_dir, copy)
    (copy / "sparse_linear.pt").unlink()
    with pytest.raises(ModelError, match="lacks sparse_linear.pt"):
        load_spec(copy)


def test_uncached_hub_model_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        resolve("BAAI/bge-m3")


def test_default_falls_back_to_the_lite_model_when_bge_m3_is_not_cached(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lite_model_dir: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    chosen = resolve_default(Settings(index_dir=tmp_path, lite_model_dir=lite_model_dir))
    assert chosen.path == lite_model_dir and chosen.is_lite


def test_no_model_at_all_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="lite model is missing"):
        resolve_default(Settings(index_dir=tmp_path, lite_model_dir=tmp_path / "none"))


def test_hub_ids_and_paths_are_told_apart() -> None:
    assert not looks_like_path("BAAI/bge-m3")
    assert looks_like_path("./models/bge-m3") and looks_like_path("/opt/models/m3") and looks_like_path("a/b/c")


def test_fingerprint_changes_when_the_heads_change(tmp_path: Path, lite_model_dir: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(lite_model_dir, copy)
    before = load_spec(copy).fingerprint()
    (copy / "sparse_linear.pt").write_bytes((copy / "sparse_linear.pt").read_bytes() + b"\0")
    assert load_spec(copy).fingerprint() != before


def test_an_index_finds_its_lite_model_after_the_app_folder_moved(tmp_path: Path, lite_model_dir: Path) -> None:
    from desktop_app.core.model.resolve import resolve_recorded

    old_home = tmp_path / "old-bundle" / "bge-m3-lite"
    shutil.copytree(lite_model_dir, old_home)
    spec = load_spec(old_home)
    info = {"name": spec.name, "dim": spec.hidden_size, "fingerprint": spec.fingerprint(), "label": spec.label}
    new_home = tmp_path / "new-bundle" / "bge-m3-lite"
    new_home.parent.mkdir()
    old_home.rename(new_home)
    found = resolve_recorded(info, Settings(lite_model_dir=new_home))
    assert found.path == new_home.resolve() and found.fingerprint() == info["fingerprint"]
    (new_home / "sparse_linear.pt").write_bytes(b"other weights")
    with pytest.raises(ModelError, match="does not exist"):
        resolve_recorded(info, Settings(lite_model_dir=new_home))
