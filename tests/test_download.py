"""First-run model download: byte progress, cancel, offline, HF_HOME (a fake hub, no network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop_app.core.errors import Cancelled, ModelError
from desktop_app.core.model.download import ModelDownload
from desktop_app.core.model.resolve import hub_offline

REPO_ID = "BAAI/bge-m3"


def fake_hub_fetch(repo_id: str) -> None:
    """Stands in for the hub in the child process: lays the lite model out as the hub's cache does
    (blobs, a snapshot of links, refs/main), a megabyte at a time."""
    cache = Path(os.environ["HF_HUB_CACHE"]) / ("models--" + repo_id.replace("/", "--"))
    source = Path(os.environ["DESKTOP_SEARCH_LITE_MODEL"])
    delay = float(os.environ.get("FAKE_HUB_DELAY", "0"))
    snapshot = cache / "snapshots" / ("c" * 40)
    (cache / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in source.iterdir() if p.is_file()):
        data = file.read_bytes()
        blob = cache / "blobs" / hashlib.sha256(data).hexdigest()
        with open(blob, "wb") as handle:
            for start in range(0, len(data), 1 << 20):
                handle.write(data[start:start + (1 << 20)])
                handle.flush()
                time.sleep(delay)
        (snapshot / file.name).symlink_to(blob)
    (cache / "refs").mkdir(exist_ok=True)
    (cache / "refs" / "main").write_text("c" * 40)


def failing_fetch(repo_id: str) -> None:
    raise ConnectionError("Name or service not known (huggingface.co)")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, lite_model_dir) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def lite_bytes(lite_model_dir: Path) -> int:
    return sum(p.stat().st_size for p in lite_model_dir.iterdir() if p.is_file())


def test_download_reports_byte_progress_and_yields_a_loadable_model(hub_cache, lite_model_dir, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_HUB_DELAY", "0.01")
    total = lite_bytes(lite_model_dir)
    seen: list[tuple[int, int]] = []
    snapshot = ModelDownload(REPO_ID, fake_hub_fetch, total).run(lambda done, of: seen.append((done, of)),
                                                                 lambda: False)
    assert snapshot.parent.parent == hub_cache / "models--BAAI--bge-m3"
    assert (snapshot / "sparse_linear.pt").is_file()
    fractions = [done / of for done, of in seen]
    assert len({round(f, 2) for f in fractions if 0 < f < 1}) >= 3, "progress moves in steps"
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    from desktop_app.core.config import Settings
    from desktop_app.core.model.resolve import resolve_default

    spec = resolve_default(Settings(lite_model_dir=lite_model_dir))
    assert (spec.name, spec.path) == (REPO_ID, snapshot.resolve()), "the next start finds the model in the cache"


def test_cancel_stops_the_download_at_once(hub_cache, lite_model_dir, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_HUB_DELAY", "0.2")
    progress: list[int] = []
    started = time.monotonic()
    with pytest.raises(Cancelled, match="resumes next time"):
        ModelDownload(REPO_ID, fake_hub_fetch, lite_bytes(lite_model_dir)).run(
            lambda done, of: progress.append(done), lambda: any(progress))
    assert time.monotonic() - started < 15
    from desktop_app.core.model.resolve import cached_snapshot

    assert cached_snapshot(REPO_ID) is None


def test_a_failed_download_is_one_readable_sentence(hub_cache) -> None:
    with pytest.raises(ModelError, match="could not download BAAI/bge-m3: ConnectionError: Name or service"):
        ModelDownload(REPO_ID, failing_fetch, 100).run(lambda done, of: None, lambda: False)


def test_offline_means_no_download(hub_cache, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline() and not hub_offline({"HF_HUB_OFFLINE": "0"})
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        ModelDownload(REPO_ID, fake_hub_fetch, 100).run(lambda done, of: None, lambda: False)


def test_the_cache_follows_hf_home(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_HUB_CACHE")}
    env["HF_HOME"] = str(tmp_path / "hf-home")
    code = "from desktop_app.core.model.download import repo_cache_folder; print(repo_cache_folder('BAAI/bge-m3'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert Path(out.strip()) == tmp_path / "hf-home" / "hub" / "models--BAAI--bge-m3"


def half_finished_download(hub_cache: Path, lite_model_dir: Path) -> Path:
    """What a cancelled hub download leaves: refs/main and the small files, the weights still a partial blob."""
    cache = hub_cache / "models--BAAI--bge-m3"
    snapshot = cache / "snapshots" / ("d" * 40)
    snapshot.mkdir(parents=True)
    (cache / "blobs").mkdir()
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text("d" * 40)
    for file in lite_model_dir.iterdir():
        if file.is_file() and file.name != "model.safetensors":  # not the CPU runtimes converted beside it
            (snapshot / file.name).write_bytes(file.read_bytes())
    (cache / "blobs" / ("e" * 64 + ".incomplete")).write_bytes(b"\0" * 1000)
    (snapshot / "model.safetensors").symlink_to(cache / "blobs" / ("e" * 64))  # not there yet
    return snapshot


def test_a_half_finished_download_is_not_picked_at_the_next_start(hub_cache, lite_model_dir) -> None:
    from desktop_app.core.config import Settings
    from desktop_app.core.model.resolve import resolve, resolve_default

    half_finished_download(hub_cache, lite_model_dir)
    spec = resolve_default(Settings(lite_model_dir=lite_model_dir))
    assert spec.is_lite and spec.path == lite_model_dir, "the lite model serves until the download is whole"
    with pytest.raises(ModelError, match="unfinished download"):
        resolve(REPO_ID)


def test_the_window_offers_the_download_again_after_a_half_finished_one(hub_cache, lite_model_dir) -> None:
    from desktop_app.core.config import Settings
    from desktop_app.core.model.resolve import resolve_default
    from desktop_app.gui.worker import model_offer

    half_finished_download(hub_cache, lite_model_dir)
    settings = Settings(lite_model_dir=lite_model_dir)
    assert model_offer(resolve_default(settings), settings) == "download"
