"""The Qdrant backend (embedded here): recorded per index folder, ranks like the local backend, and
stays equal to a clean build through incremental runs, removals and crashes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.cli import main
from desktop_app.core.backends.choice import Backend, record
from desktop_app.core.backends.qdrant.index import QdrantIndex
from desktop_app.core.config import MODES, Settings
from desktop_app.core.engine import Engine
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.ingest.progress import RunControl
from desktop_app.core.model.cpu_runtime import OPENVINO_FP32
from desktop_app.core.search.searcher import Searcher

CHILD = Path(__file__).with_name("crash_child.py")
TOPICS = ["compressor stall", "boundary layer transition", "panel flutter", "heat shield ablation",
          "shell buckling", "jet noise", "wing icing", "rotor vortex"]
QUERIES = ("compressor stall margin", "boundary layer transition", '"panel flutter" -run', "ext:md icing",
           "noise of the jet")
# One runtime in this process and in the crash children, so builds compare to the last digit; a converted
# graph starts a child without torch (1 s instead of 10).
RUNTIME = OPENVINO_FP32


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write_corpus(folder: Path, numbers: range, edited: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in numbers:
        topic = TOPICS[i % len(TOPICS)]
        suffix = ".md" if i % 5 == 0 else ".txt"
        text = f"Report {i} on {topic}. " + " ".join(f"Measurement {j} of {topic} in run {i}." for j in range(3))
        if i == edited:
            text = f"Report {i}, revised: the jet noise of {topic} fell by half."
        (folder / f"report{i:03d}{suffix}").write_text(text, encoding="utf-8")
    return folder


def qdrant_args(root: Path) -> list[str]:
    return ["--backend", "qdrant", "--qdrant-location", str(root / "qdrant")]


def observe(index_dir: Path, lite_model_dir: Path) -> dict:
    """What a user sees: every mode's ranking (path, score) for each query, and the counts. Hits with
    equal scores are put in name order: their order depends on chunk ids, which differ between builds."""
    settings = Settings.from_env(index_dir=index_dir, model=str(lite_model_dir), device="cpu", dtype=RUNTIME)
    engine = Engine.open(settings)
    try:
        status = engine.status()
        results = {(mode, q): sorted(((h.path.rsplit("/", 1)[-1], round(h.score, 4)) for h in
                                      engine.search(q, k=20, mode=mode, colbert=False).hits),
                                     key=lambda hit: (-hit[1], hit[0]))
                   for mode in MODES if mode != "colbert" for q in QUERIES}
    finally:
        engine.close()
    return {"chunks": status["chunks"], "vectors": status["vectors"], "files": status["files"], "results": results}


def assert_same(observed: dict, expected: dict) -> None:
    assert {k: observed[k] for k in ("chunks", "vectors", "files")} == \
        {k: expected[k] for k in ("chunks", "vectors", "files")}
    differing = {key: (observed["results"][key], hits) for key, hits in expected["results"].items()
                 if observed["results"][key] != hits}
    assert not differing, "\n".join(f"{key}:\n  {got[:8]}\n  {want[:8]}" for key, (got, want) in differing.items())


@pytest.fixture(scope="module")
def clean(tmp_path_factory, lite_model_dir):
    """A clean Qdrant build of reports 0-39 with report 7 revised, and a local build of the same."""
    root = tmp_path_factory.mktemp("clean")
    docs = write_corpus(root / "docs", range(40), edited=7)
    with pytest.MonkeyPatch.context() as patch:  # the module's CLI calls read these; later modules do not
        for name, value in {"DESKTOP_SEARCH_MODEL": str(lite_model_dir), "DESKTOP_SEARCH_DEVICE": "cpu",
                            "DESKTOP_SEARCH_DTYPE": RUNTIME}.items():
            patch.setenv(name, value)
        assert cli("index", str(docs), "--index", str(root / "index"), *qdrant_args(root))[0] == 0
        assert cli("index", str(docs), "--index", str(root / "local"))[0] == 0
        yield docs, observe(root / "index", lite_model_dir), observe(root / "local", lite_model_dir)


def test_the_index_folder_records_the_backend(clean, tmp_path, lite_model_dir) -> None:
    docs, expected, _ = clean
    index_dir = tmp_path / "index"
    code, _, err = cli("index", str(docs), "--index", str(index_dir), *qdrant_args(tmp_path))
    assert code == 0, err
    record = json.loads((index_dir / "backend.json").read_text())
    assert record["kind"] == "qdrant" and record["location"] == str(tmp_path / "qdrant")
    assert oct((index_dir / "backend.json").stat().st_mode & 0o777) == "0o600"
    assert not (index_dir / "dense.hnsw").exists(), "the qdrant backend keeps no local vector cache"
    # later commands find the backend without the flags
    code, out, _ = cli("status", "--index", str(index_dir), "--json")
    status = json.loads(out)
    assert status["backend"].startswith("qdrant at ") and status["vectors"] == status["chunks"] == expected["chunks"]
    code, out, _ = cli("search", "boundary layer transition", "--index", str(index_dir), "--json")
    assert json.loads(out)["hits"][0]["path"].endswith(tuple(f"report{i:03d}.txt" for i in range(1, 40, 8)))
    assert cli("remove", str(docs / "report001.txt"), "--index", str(index_dir))[0] == 0
    code, out, _ = cli("status", "--index", str(index_dir), "--json")
    assert json.loads(out)["vectors"] == expected["chunks"] - 1


def test_naming_another_backend_for_a_full_index_is_refused(clean, tmp_path) -> None:
    docs, _, _ = clean
    index_dir = tmp_path / "index"
    assert cli("index", str(docs / "report002.txt"), "--index", str(index_dir))[0] == 0
    code, _, err = cli("index", str(docs), "--index", str(index_dir), *qdrant_args(tmp_path))
    assert code == 2 and "uses the local backend; use another --index folder" in err
    code, _, err = cli("index", str(docs), "--index", str(tmp_path / "x"), "--backend", "qdrant")
    assert code == 2 and "--backend qdrant needs --qdrant-location" in err


def test_both_backends_rank_alike(clean) -> None:
    _, qdrant, local = clean
    assert qdrant["chunks"] == local["chunks"] == qdrant["vectors"]
    for (mode, query), hits in local["results"].items():
        if mode in ("dense", "sparse"):  # the same vectors and weights: the same scores
            assert qdrant["results"][mode, query] == hits, (mode, query)
        else:  # the writing folder weighs Qdrant's keyword vectors by FTS5's IDF: the same order, and scores
            # as near as the mean chunk length Qdrant's vectors were made with (rounded, 5 % at most)
            got = qdrant["results"][mode, query]
            assert [path for path, _ in got] == [path for path, _ in hits], (mode, query, got, hits)
            assert all(abs(a - b) <= 0.05 * abs(b) + 1e-3 for (_, a), (_, b) in zip(got, hits)), (mode, query)


def test_keyword_ranking_weighs_a_common_word_as_fts5_does(tmp_path, monkeypatch, lite_model_dir) -> None:
    """A word in most files weighs next to nothing in FTS5's BM25 (and the local backend's); Qdrant's own
    IDF gives it weight enough to put a short file full of it above a long one holding the rare word."""
    for name, value in {"DESKTOP_SEARCH_MODEL": str(lite_model_dir), "DESKTOP_SEARCH_DEVICE": "cpu"}.items():
        monkeypatch.setenv(name, value)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"common{i}.txt").write_text("alpha " * (10 if i == 0 else 1) + f"entry {i}")
    for i in range(3):
        (docs / f"plain{i}.txt").write_text(f"an unrelated entry number {i}")
    (docs / "long.txt").write_text("omega " + " ".join(f"filler{j}" for j in range(40)))
    orders = {}
    for name, options in {"local": [], "qdrant": qdrant_args(tmp_path)}.items():
        assert cli("index", str(docs), "--index", str(tmp_path / name), *options)[0] == 0
        code, out, err = cli("search", "alpha omega", "--mode", "keyword", "--json", "--index", str(tmp_path / name))
        assert code == 0, err
        hits = json.loads(out)["hits"]  # equal scores in name order (chunk ids differ between builds)
        orders[name] = [path for _, path in sorted((-hit["score"], hit["path"].rsplit("/", 1)[-1]) for hit in hits)]
    assert orders["local"][:2] == ["long.txt", "common0.txt"], orders
    assert orders["qdrant"] == orders["local"]


def test_incremental_runs_and_removals_equal_a_clean_build(clean, tmp_path, lite_model_dir) -> None:
    _, expected, _ = clean
    docs = write_corpus(tmp_path / "docs", range(30))
    old = write_corpus(tmp_path / "old", range(90, 95))
    index = ["--index", str(tmp_path / "index")]
    assert cli("index", str(docs), str(old), *index, *qdrant_args(tmp_path))[0] == 0
    write_corpus(docs, range(30, 40))  # ten new files
    write_corpus(docs, range(7, 8), edited=7)  # and one edited
    (docs / "report008.txt").unlink()
    assert cli("index", str(docs), *index)[0] == 0
    assert cli("remove", str(old), *index)[0] == 0
    write_corpus(docs, range(8, 9))  # the deleted file comes back
    assert cli("index", str(docs), *index)[0] == 0
    assert_same(observe(tmp_path / "index", lite_model_dir), expected)


def test_words_are_searchable_before_their_vectors_and_the_next_run_completes_them(clean, tmp_path, encoder,
                                                                                   lite_model_dir) -> None:
    docs, expected, _ = clean
    settings = Settings.from_env(index_dir=tmp_path / "index", model=str(lite_model_dir), device="cpu", dtype=RUNTIME)
    backend = Backend("qdrant", str(tmp_path / "qdrant"))
    index = QdrantIndex.open(settings.index_dir, backend, create=True)
    record(settings.index_dir, backend)
    control = RunControl()
    control.make_way()  # stage 1 alone: stage 2 steps aside at once
    try:
        report = Indexer(index, encoder, settings).run([docs], control=control)
        assert report.pending_chunks == expected["chunks"] and report.chunks_encoded == 0
        assert index.vector_count == 0 and index.collection.words_only_count() == expected["chunks"]
        searcher = Searcher(index, encoder)
        query = "boundary layer transition"
        hybrid, keyword = searcher.search(query, k=20), searcher.search(query, k=20, mode="keyword")
        assert hybrid.hits and [h.path for h in hybrid.hits] == [h.path for h in keyword.hits]
        assert all(hit.pending and hit.meaning == "meaning pending" for hit in hybrid.hits)
        assert all(hit.path.endswith("md") for hit in searcher.search("ext:md icing", k=20).hits)
        assert searcher.search('"panel flutter"', k=20).hits[0].scores["dense"] is None
    finally:
        index.close()
    code, out, err = cli("index", str(docs), "--index", str(settings.index_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["chunks_encoded"] == expected["chunks"]
    assert_same(observe(settings.index_dir, lite_model_dir), expected)


@pytest.mark.parametrize("point, n", [("qdrant-upsert", 1), ("qdrant-upsert", 2), ("qdrant-state", 1)])
def test_a_crash_between_sqlite_and_qdrant_is_repaired(point, n, clean, tmp_path, lite_model_dir) -> None:
    _, expected, _ = clean
    docs = write_corpus(tmp_path / "docs", range(40), edited=7)
    env = dict(os.environ, DESKTOP_SEARCH_MODEL=str(lite_model_dir), DESKTOP_SEARCH_DEVICE="cpu",
               DESKTOP_SEARCH_DTYPE=RUNTIME)
    command = [sys.executable, str(CHILD), point, str(n), "--", "index", str(docs), "--index", str(tmp_path / "index"),
               *qdrant_args(tmp_path)]
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    code, out, err = cli("index", str(docs), "--index", str(tmp_path / "index"), "--json")
    assert code == 0, err
    assert_same(observe(tmp_path / "index", lite_model_dir), expected)


def test_a_desktop_searches_the_collection_another_folder_indexes(clean, tmp_path, lite_model_dir) -> None:
    docs, expected, _ = clean
    assert cli("index", str(docs), "--index", str(tmp_path / "indexer"), *qdrant_args(tmp_path))[0] == 0
    desk = ["--index", str(tmp_path / "desk")]
    code, out, err = cli("search", "boundary layer transition", *desk, *qdrant_args(tmp_path), "--json", "-k", "20")
    assert code == 0, err
    paths = [hit["path"].rsplit("/", 1)[-1] for hit in json.loads(out)["hits"]]
    assert paths == [path for path, _ in expected["results"]["hybrid", "boundary layer transition"]]
    status = json.loads(cli("status", *desk, "--json")[1])  # the folder remembers the collection
    assert status["searches_only"] and status["vectors"] == expected["chunks"] and status["files"] == 0
    code, _, err = cli("index", str(docs), *desk)
    assert code == 2 and "this folder can search it, not index into it" in err
    code, _, err = cli("remove", str(docs / "report001.txt"), *desk)
    assert code == 2 and "not index into it" in err
    assert json.loads(cli("status", *desk, "--json")[1])["vectors"] == expected["chunks"]


def test_a_searching_desktop_shows_a_hits_text_from_the_collection(clean, tmp_path, lite_model_dir) -> None:
    docs, _, _ = clean
    assert cli("index", str(docs), "--index", str(tmp_path / "indexer"), *qdrant_args(tmp_path))[0] == 0
    assert cli("status", "--index", str(tmp_path / "desk"), *qdrant_args(tmp_path))[0] == 0
    settings = Settings.from_env(index_dir=tmp_path / "desk", model=str(lite_model_dir), device="cpu", dtype=RUNTIME)
    engine = Engine.open(settings)
    try:
        hit = engine.search("heat shield ablation", k=1).hits[0]
        assert engine.context(hit.chunk_id) == ("", (docs / hit.path.rsplit("/", 1)[-1]).read_text(), "")
    finally:
        engine.close()
