"""A full, read-only or vanished index disk loses nothing: the run stops with one line naming the disk
and the room it needs, what was committed stays searchable, no cache is left half written, and the
next run (once there is room) finishes where it stopped and equals a clean build.

The real-disk tests put the index folder on a small tmpfs (documents stay on the normal disk); they
need ``mount`` (root), and skip saying so where it is refused. The fault-injection tests beside
them make the same writes fail by patching, and run everywhere.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from desktop_app.cli import main
from desktop_app.core.storage import folder as folder_module

QUERIES = ("nozzle erosion", "boundary layer", "turbine blade cooling")
TOPICS = ("nozzle erosion in solid rocket motors", "boundary layer transition on swept wings",
          "turbine blade cooling with film holes", "fatigue cracks in riveted fuselage joints",
          "combustion instability in liquid engines", "icing on the leading edge of rotor blades")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twenty small text files on the normal disk, a couple of chunks each (read, never changed, by every test)."""
    folder = tmp_path_factory.mktemp("full-disk") / "docs"
    folder.mkdir()
    for i in range(20):
        topic = TOPICS[i % len(TOPICS)]
        lines = [f"Report {i} on {topic}: measurement {j} of sample {i}-{j} gave value {i * 37 + j}."
                 for j in range(16)]
        (folder / f"report{i:02d}.txt").write_text("\n".join(lines), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def clean(corpus: Path, lite_model_dir: Path) -> Path:
    """The corpus indexed in one go on the normal disk: what every interrupted index must end up equal to."""
    index = corpus.parent / "clean-index"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DESKTOP_SEARCH_MODEL", str(lite_model_dir))
        patch.setenv("DESKTOP_SEARCH_DEVICE", "cpu")
        code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    return index


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=30)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount(point, *options)`` mounts (tmpfs unless ``--bind``) and unmounts at the end; skips, saying
    why, where mounting is not permitted."""
    mounted: list[Path] = []

    def mount(point: Path, *options: str) -> Path:
        point.mkdir(parents=True, exist_ok=True)
        try:
            done = _run("mount", *(options or ("-t", "tmpfs", "tmpfs")), str(point))
            refused = done.stderr.strip() or f"exit code {done.returncode}" if done.returncode != 0 else ""
        except OSError as error:  # no mount command at all (Windows, a slim container)
            refused = str(error)
        if refused:
            pytest.skip(f"cannot mount a test filesystem here ({refused}); the fault-injection tests cover the "
                        "same paths")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        _run("umount", "-l", str(point))


def one_line(err: str) -> str:
    """The single line a failed command wrote on stderr (no traceback, no progress)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def contents(index: Path) -> tuple[dict[tuple, np.ndarray], int]:
    """Every chunk of an index as (path, page, start, end, text) -> its dense vector (empty while pending),
    and how many chunks are pending."""
    with closing(sqlite3.connect(f"file:{index / 'index.sqlite3'}?mode=ro", uri=True)) as conn:
        chunks = {row[:5]: np.frombuffer(row[5], dtype=np.float16) for row in conn.execute(
            "SELECT f.path, c.page, c.char_start, c.char_end, c.text, c.dense FROM chunks c "
            "JOIN files f ON f.id = c.file_id")}
        pending = conn.execute("SELECT count(*) FROM pending").fetchone()[0]
    return chunks, pending


def keyword_hits(index: Path, query: str) -> list[tuple[str, int]]:
    code, out, err = cli("search", query, "--index", str(index), "--mode", "keyword", "--json", "-k", "8")
    assert code == 0, err
    return [(hit["path"], hit["page"]) for hit in json.loads(out)["hits"]]


def assert_equals_a_clean_build(index: Path, clean: Path) -> None:
    """The same chunks with the same vectors as the clean build, nothing pending, the same keyword hits, and no
    temporary file left beside the caches."""
    (resumed, pending), (wanted, _) = contents(index), contents(clean)
    assert resumed.keys() == wanted.keys() and pending == 0
    for key, vector in wanted.items():
        assert len(vector) and np.allclose(resumed[key], vector, atol=2e-3), key
    for query in QUERIES:
        assert keyword_hits(index, query) == keyword_hits(clean, query), query
    assert not list(index.glob("*.tmp")), "a failed save left a temporary file behind"


def assert_still_searchable(index: Path) -> int:
    """The index opens after the failure: status works and a keyword search finds the committed files."""
    code, out, err = cli("status", "--json", "--index", str(index))
    assert code == 0, err
    files = json.loads(out)["files"]
    if files:
        assert any(keyword_hits(index, query) for query in QUERIES), "committed files are not found by their words"
    return files


# --- a real small disk -------------------------------------------------------------------------------------


def test_a_full_disk_stops_in_one_line_and_the_next_run_finishes_it(cli_env, corpus, clean, tmp_path, mounts) -> None:
    disk = mounts(tmp_path / "small-disk", "-t", "tmpfs", "-o", "size=512k", "tmpfs")
    index = disk / "index"
    code, _, err = cli("index", str(corpus), "--index", str(index))
    line = one_line(err)
    assert code == 1 and f"the disk holding {index} is full" in line and f"mounted at {disk}" in line, line
    assert "needs about" in line and "MB more" in line and "stays searchable" in line, line
    assert not list(index.glob("*.tmp")), "a failed save left a temporary file behind"
    assert assert_still_searchable(index) > 0, "the disk filled before the first commit: make it larger"
    needed_kb = float(re.search(r"needs about ([0-9.]+) MB more", line).group(1)) * 1000
    # Freeing what the line says (and a page or sixteen for SQLite's rounding) is enough to finish.
    assert _run("mount", "-o", f"remount,size={512 + int(needed_kb) + 64}k", str(disk)).returncode == 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


def test_the_room_a_full_disk_asks_for_is_enough_to_finish(cli_env, corpus, clean, tmp_path, mounts,
                                                         monkeypatch) -> None:
    """The disk fills as the meaning stage begins (every chunk pending, no cache written yet): freeing what
    the line asks for, and not a byte more, lets the next run finish. The estimate once left out the caches
    of the chunks still to encode and the sparse cache's vocabulary table, and the next run failed again."""
    from desktop_app.core.ingest import indexer

    disk = mounts(tmp_path / "small-disk", "-t", "tmpfs", "-o", "size=16m", "tmpfs")
    index = disk / "index"

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(indexer, "encode_once", disk_full)
        code, _, err = cli("index", str(corpus), "--index", str(index))
    line = one_line(err)
    assert code == 1 and "needs about" in line, line
    needed_kb = float(re.search(r"needs about ([0-9.]+) MB more", line).group(1)) * 1e6 / 1024
    used_kb = (os.statvfs(disk).f_blocks - os.statvfs(disk).f_bfree) * os.statvfs(disk).f_frsize / 1024
    assert _run("mount", "-o", f"remount,size={int(used_kb + needed_kb)}k", str(disk)).returncode == 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


def test_a_read_only_index_disk_says_so_in_one_line(cli_env, corpus, clean, tmp_path, mounts) -> None:
    disk = mounts(tmp_path / "ro-disk", "-t", "tmpfs", "-o", "size=16m", "tmpfs")
    index = disk / "index"
    first = tmp_path / "first"
    first.mkdir()
    for path in sorted(corpus.iterdir())[:10]:
        (first / path.name).write_text(path.read_text())
    assert cli("index", str(first), "--index", str(index))[0] == 0
    assert _run("mount", "-o", "remount,ro", str(disk)).returncode == 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    line = one_line(err)
    assert code == 1 and f"the index folder {index} is read-only" in line and str(disk) in line, line
    assert assert_still_searchable(index) == 10, "an index on a disk turned read-only is searchable"
    assert _run("mount", "-o", "remount,rw", str(disk)).returncode == 0
    assert cli("remove", str(first), "--index", str(index))[0] == 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


def test_an_unplugged_index_drive_stops_the_run_in_one_line(cli_env, corpus, clean, tmp_path, mounts,
                                                           monkeypatch) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    plugged = mounts(tmp_path / "plugged", "--bind", str(drive))
    index = plugged / "index"
    with monkeypatch.context() as patch:
        unplug_at_second_commit(patch, lambda: _run("umount", "-l", str(plugged)))
        code, _, err = cli("index", str(corpus), "--index", str(index))
    line = one_line(err)
    assert code == 1 and f"the index folder {index} is gone (drive unplugged?)" in line, line
    monkeypatch.setattr(folder_module, "REMOVABLE_MEDIA", (str(tmp_path),))  # where this test mounts its drive
    code, _, err = cli("index", str(corpus), "--index", str(index))  # started again while it is unplugged
    assert code == 1 and "is on a drive that is not connected" in one_line(err), err
    assert not index.exists(), "an index was made on the system disk under the empty mount point"
    mounts(plugged, "--bind", str(drive))  # plugged back in
    assert assert_still_searchable(index) > 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


# --- the same failures, injected -------------------------------------------------------------------------------


def test_no_index_is_made_under_an_empty_mount_point_and_no_lock_remakes_a_vanished_folder(tmp_path,
                                                                                           monkeypatch) -> None:
    """An unplugged drive leaves its mount point empty: an index made there would be on the system disk, and
    would hide under the drive once it is back."""
    from desktop_app.core.errors import IndexMissingError
    from desktop_app.core.storage.folder import IndexFolder
    from desktop_app.core.storage.lock import WriterLock

    media = tmp_path / "media"
    (media / "usb").mkdir(parents=True)
    monkeypatch.setattr(folder_module, "REMOVABLE_MEDIA", (str(media),))
    with pytest.raises(IndexMissingError, match=r"is on a drive that is not connected \(nothing is mounted at "):
        IndexFolder.open(media / "usb" / "index", create=True)
    code, _, err = cli("serve", "--index", str(media / "usb" / "index"), "--port", "0")  # keeps its token there
    assert code == 1 and "is on a drive that is not connected" in one_line(err), err
    assert list((media / "usb").iterdir()) == []
    elsewhere = IndexFolder.open(tmp_path / "home" / "index", create=True)  # not under removable media: made
    elsewhere.close()
    gone = tmp_path / "home" / "index"
    for name in os.listdir(gone):
        os.remove(gone / name)
    gone.rmdir()
    with pytest.raises(FileNotFoundError, match="the index folder is gone"):
        WriterLock(gone, wait=False).acquire()
    assert not gone.exists()



def unplug_at_second_commit(monkeypatch: pytest.MonkeyPatch, unplug: Callable[[], object]) -> None:
    """Commit stage 1 a few files at a time and run ``unplug`` just before the second commit."""
    from desktop_app.core.ingest import indexer

    monkeypatch.setattr(indexer, "WORDS_COMMIT_CHUNKS", 8)
    original = indexer.Indexer.commit_words
    calls = []

    def commit_words(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            unplug()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(indexer.Indexer, "commit_words", commit_words)


def test_an_index_folder_moved_away_mid_run_stops_it_in_one_line(cli_env, corpus, clean, tmp_path,
                                                                   monkeypatch) -> None:
    index = tmp_path / "index"
    with monkeypatch.context() as patch:
        unplug_at_second_commit(patch, lambda: index.rename(tmp_path / "away"))
        code, _, err = cli("index", str(corpus), "--index", str(index))
    line = one_line(err)
    assert code == 1 and f"the index folder {index} is gone (drive unplugged?)" in line, line
    (tmp_path / "away").rename(index)
    assert assert_still_searchable(index) > 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


@pytest.mark.parametrize(("code", "says"), [(errno.ENOSPC, "is full"), (errno.EROFS, "is read-only"),
                                            (errno.ENOENT, "is gone (drive unplugged?)")])
def test_a_cache_save_that_fails_stops_in_one_line_and_keeps_the_old_file(cli_env, corpus, clean, tmp_path, monkeypatch,
                                                                          code, says) -> None:
    index = tmp_path / "index"
    first = tmp_path / "first"
    first.mkdir()
    (first / "one.txt").write_text((corpus / "report00.txt").read_text())
    assert cli("index", str(first), "--index", str(index))[0] == 0
    saved = {name: (index / name).read_bytes() for name in ("dense.hnsw", "sparse.npz", "keyword.npz")}
    replace = os.replace

    def failing(source, target, *args, **kwargs):
        if Path(target).parent == index:
            raise OSError(code, os.strerror(code), str(source))
        return replace(source, target, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failing)
        exit_code, _, err = cli("index", str(corpus), "--index", str(index))
    line = one_line(err)
    assert exit_code == 1 and says in line and str(index) in line, line
    assert {name: (index / name).read_bytes() for name in saved} == saved, "a cache file was changed in place"
    assert not list(index.glob("*.tmp"))
    assert assert_still_searchable(index) == 21
    assert cli("remove", str(first), "--index", str(index))[0] == 0
    assert cli("index", str(corpus), "--index", str(index))[0] == 0
    assert_equals_a_clean_build(index, clean)


def test_a_truncated_hnswlib_file_is_caught_before_it_replaces_the_old_one(tmp_path) -> None:
    """hnswlib's save ignores write errors (a full disk leaves a short file): the length check sees it."""
    import numpy as np

    from desktop_app.core.backends.local.dense import DenseIndex, _written_whole

    dense = DenseIndex(tmp_path / "dense.hnsw", 16)
    dense.load_or_create()
    vectors = np.random.default_rng(7).normal(size=(300, 16)).astype(np.float32)
    dense.add(list(range(300)), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    dense.save()
    whole = (tmp_path / "dense.hnsw").read_bytes()
    with open(tmp_path / "dense.hnsw", "rb") as handle:
        assert _written_whole(handle)
    for cut in (1, 200, len(whole) // 2, len(whole) - 90):
        (tmp_path / "short").write_bytes(whole[:cut] if cut < 100 else whole[:-cut])
        with open(tmp_path / "short", "rb") as handle:
            assert not _written_whole(handle), cut


def test_the_lock_is_released_when_the_disk_cannot_take_who_holds_it(tmp_path, monkeypatch) -> None:
    """Writing the holder's name into the lock file fails on a full disk: the lock is still held and let go
    (it was left taken before, and the next writer in the process waited for it forever)."""
    from desktop_app.core.storage import lock

    real_open = open

    class FullFile(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock, "open", lambda path, mode, buffering=-1: FullFile(path, mode.replace("b", "")),
                        raising=False)
    with lock.WriterLock(tmp_path, wait=False):
        pass
    monkeypatch.setattr(lock, "open", real_open, raising=False)
    with lock.WriterLock(tmp_path, wait=False):
        pass


def test_a_batch_the_disk_refused_is_encoded_by_the_next_run_in_the_same_process(cli_env, corpus, clean, tmp_path,
                                                                                  monkeypatch) -> None:
    """Stage 2's claim on a batch it could not store is given back: the window or a watcher, running again in
    the same process once there is room, encodes it at once (it was skipped for the claim's 15-minute lease)."""
    from desktop_app.core.storage.store import Store

    index = tmp_path / "index"
    with monkeypatch.context() as patch:
        patch.setattr(Store, "store_encodings", lambda *args: (_ for _ in ()).throw(
            sqlite3.OperationalError("database or disk is full")))
        code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 1 and f"the disk holding {index} is full" in one_line(err)
    assert contents(index)[1] > 0
    code, out, err = cli("index", str(corpus), "--index", str(index), "--json")
    assert code == 0 and json.loads(out)["pending_chunks"] == 0, err
    assert_equals_a_clean_build(index, clean)


def test_a_full_disk_during_watch_stops_it_in_one_line_and_the_next_run_finishes(cli_env, corpus, clean, tmp_path,
                                                                                 mounts) -> None:
    disk = mounts(tmp_path / "small-disk", "-t", "tmpfs", "-o", "size=512k", "tmpfs")
    index = disk / "index"
    code, _, err = cli("watch", str(corpus), "--index", str(index), "--stop-after", "30")
    line = one_line(err)
    assert code == 1 and f"the disk holding {index} is full" in line and "stays searchable" in line, line
    assert not list(index.glob("*.tmp")), "a failed save left a temporary file behind"
    assert assert_still_searchable(index) > 0
    assert _run("mount", "-o", "remount,size=16m", str(disk)).returncode == 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


def test_a_full_disk_fails_a_queued_job_with_one_line_as_the_window_and_the_api_show_it(cli_env, corpus, clean,
                                                                                        tmp_path, mounts) -> None:
    from desktop_app.core import Engine, JobQueue, Settings

    disk = mounts(tmp_path / "small-disk", "-t", "tmpfs", "-o", "size=512k", "tmpfs")
    index = disk / "index"
    engine = Engine.open(Settings.from_env(os.environ, index_dir=index), create=True)
    jobs = JobQueue(lambda: engine, "a test's job queue")
    try:
        job = jobs.submit([str(corpus)])
        deadline = time.monotonic() + 120
        while job.state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job.state == "failed" and f"the disk holding {index} is full" in job.error, job.to_dict()
        assert "\n" not in job.error and "Traceback" not in job.error
        assert engine.search("nozzle erosion", mode="keyword").hits  # what was committed stays searchable
        assert json.loads(json.dumps(job.to_dict()))["error"] == job.error  # what GET /v1/jobs/{id} answers
    finally:
        jobs.close()
        engine.close()
    assert not list(index.glob("*.tmp"))
    assert _run("mount", "-o", "remount,size=16m", str(disk)).returncode == 0
    code, _, err = cli("index", str(corpus), "--index", str(index))
    assert code == 0, err
    assert_equals_a_clean_build(index, clean)


@pytest.mark.parametrize("shared_memory_file", ["kept", "gone"])
def test_an_index_left_with_a_full_write_ahead_log_opens_read_only(cli_env, corpus, clean, tmp_path, mounts,
                                                                   shared_memory_file: str) -> None:
    """A crash leaves committed pages in the WAL; the disk then turns read-only (with or without SQLite's
    -shm file, e.g. copied to a read-only medium): what the WAL holds is searchable."""
    disk = mounts(tmp_path / "ro-disk", "-t", "tmpfs", "-o", "size=16m", "tmpfs")
    index = disk / "index"
    assert cli("index", str(corpus), "--index", str(index))[0] == 0
    crashed = subprocess.run([sys.executable, "-c", (
        "import os, sqlite3, sys; conn = sqlite3.connect(sys.argv[1]); conn.execute('PRAGMA wal_autocheckpoint=0'); "
        "conn.execute(\"UPDATE files SET size = size + 1 WHERE path LIKE '%report00.txt'\"); conn.commit(); "
        "os._exit(0)"), str(index / "index.sqlite3")], capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 0, crashed.stderr
    assert (index / "index.sqlite3-wal").stat().st_size > 0
    if shared_memory_file == "gone":
        (index / "index.sqlite3-shm").unlink()
    assert _run("mount", "-o", "remount,ro", str(disk)).returncode == 0
    code, out, err = cli("status", "--json", "--index", str(index))
    assert code == 0, err
    sizes = {Path(row["path"]).name: row["size"] for row in json.loads(cli("files", "--json", "--index",
                                                                         str(index))[1])["files"]}
    assert json.loads(out)["files"] == 20
    # With the -shm file the WAL's commit is read; without it SQLite cannot read the WAL at all, and
    # the index opens as of its last checkpoint (the log says so) instead of not at all.
    assert sizes["report00.txt"] == (corpus / "report00.txt").stat().st_size + (shared_memory_file == "kept")
    assert any(keyword_hits(index, query) for query in QUERIES)
