"""Two stages: every file findable by its words first, meaning behind it; pending work lives in SQLite."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_app.core.backends.local.dense import DenseIndex
from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.backends.local.keywords import KeywordIndex
from desktop_app.core.engine import Engine
from desktop_app.core.ingest import indexer as indexer_module
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.ingest.progress import RunControl, format_eta
from desktop_app.core.model.encoder import CPU_TOKENS_PER_BATCH, cpu_batch_tokens
from desktop_app.core.search.searcher import CACHES_LOADING_NOTE, Searcher
from desktop_app.core.storage.store import Store


@pytest.fixture
def index(settings):
    opened = LocalIndex.open(settings.index_dir, create=True)
    yield opened
    opened.close()


def words_only(index: LocalIndex, encoder, settings, *folders: Path):
    """Stage 1 alone: the run is told at once that newer work waits, so stage 2 steps aside."""
    control = RunControl()
    control.make_way()
    return Indexer(index, encoder, settings).run(list(folders), control=control)


def ranking(result) -> list[tuple[str, float]]:
    return [(hit.path, round(hit.score, 5)) for hit in result.hits]


def test_words_come_first_and_hybrid_ranks_them_as_keyword_search_does(index, encoder, settings,
                                                                       aero_corpus) -> None:
    report = words_only(index, encoder, settings, aero_corpus)
    assert (report.added, report.chunks_added, report.chunks_encoded, report.pending_chunks) == (4, 4, 0, 4)
    assert not report.cancelled and index.vector_count == 0 and index.caches.keyword_count == 4
    searcher = Searcher(index, encoder)
    query = "boundary layer separates from the wing"
    hybrid = searcher.search(query)
    keyword = searcher.search(query, mode="keyword")
    assert hybrid.hits[0].path.endswith("stall.txt")
    assert [h.path for h in hybrid.hits] == [h.path for h in keyword.hits]
    assert all(h.pending and h.meaning == "meaning pending" for h in hybrid.hits)
    assert hybrid.hits[0].to_dict()["pending"] is True


def test_a_second_run_encodes_what_is_pending_without_reading_and_ranks_as_a_one_go_build(
        index, encoder, settings, aero_corpus, tmp_path) -> None:
    words_only(index, encoder, settings, aero_corpus)
    resumed = Indexer(index, encoder, settings).run([aero_corpus])
    assert (resumed.added, resumed.updated, resumed.unchanged) == (0, 0, 4)
    assert resumed.chunks_encoded == 4 and resumed.pending_chunks == 0 and index.vector_count == 4
    one_go = LocalIndex.open(tmp_path / "one-go", create=True)
    Indexer(one_go, encoder, settings.with_(index_dir=tmp_path / "one-go")).run([aero_corpus])
    for query in ("boundary layer separates from the wing", "nozzle noise at take-off", "shell buckling"):
        resumed_hits = Searcher(index, encoder).search(query)
        assert ranking(resumed_hits) == ranking(Searcher(one_go, encoder).search(query))
        assert not any(hit.pending or hit.meaning for hit in resumed_hits.hits)
    one_go.close()


def test_a_mixed_index_ranks_encoded_and_pending_chunks_together(index, encoder, settings, aero_corpus,
                                                                  tmp_path) -> None:
    Indexer(index, encoder, settings).run([aero_corpus])
    later = tmp_path / "later"
    later.mkdir()
    (later / "separation.txt").write_text("Flow separation on the upper surface of a stalled wing: the boundary "
                                          "layer separates and lift is lost.")
    words_only(index, encoder, settings, later)
    hits = Searcher(index, encoder).search("boundary layer separates from the wing").hits
    by_name = {Path(hit.path).name: hit for hit in hits}
    assert {"stall.txt", "separation.txt"} <= set(by_name)
    assert by_name["separation.txt"].pending and not by_name["stall.txt"].pending
    assert by_name["stall.txt"].scores["dense"] is not None and by_name["separation.txt"].scores["dense"] is None


def test_status_reports_pending_chunks_and_files(index, encoder, settings, aero_corpus) -> None:
    words_only(index, encoder, settings, aero_corpus)
    engine = Engine.open(settings, with_model=False)
    try:
        status = engine.status()
        assert (status["pending_chunks"], status["pending_files"]) == (4, 4)
        assert {row["reason"] for row in engine.files()} == {"meaning pending"}
    finally:
        engine.close()
    Indexer(index, encoder, settings).run([aero_corpus])
    engine = Engine.open(settings, with_model=False)
    try:
        assert (engine.status()["pending_chunks"], engine.status()["pending_files"]) == (0, 0)
        assert {row["reason"] for row in engine.files()} == {None}
    finally:
        engine.close()


def test_a_huge_file_is_findable_by_every_word_and_encoded_only_up_to_its_cap(index, encoder, settings,
                                                                             aero_corpus) -> None:
    lines = [f"{i:06d} routine heartbeat from the telemetry unit, all values nominal" for i in range(6000)]
    (aero_corpus / "telemetry.log").write_text("\n".join(lines + ["zeppelin anomaly recorded at the very end"]))
    capped = settings.with_(meaning_max_chunks=3)
    report = words_only(index, encoder, capped, aero_corpus)
    assert report.pending_chunks == 4 + 3 and report.chunks_added > 4 + 20
    ids = dict(index.store.conn.execute("SELECT f.path, min(c.id) FROM files f JOIN chunks c ON c.file_id = f.id "
                                        "GROUP BY f.path"))
    log_path = next(path for path in ids if path.endswith("telemetry.log"))
    assert all(first < ids[log_path] for path, first in ids.items() if path != log_path), "small files first"
    Indexer(index, encoder, capped).run([aero_corpus])
    assert index.vector_count == 4 + 3 and index.store.pending_counts()["pending_chunks"] == 0
    searcher = Searcher(index, encoder)
    for mode in ("keyword", "hybrid"):
        hit = searcher.search("zeppelin anomaly", mode=mode).hits[0]
        assert hit.path == log_path and "zeppelin" in hit.snippet
        assert hit.meaning == "meaning: first 3 chunks of this file; this part by its words" and not hit.pending
    engine = Engine.open(capped, with_model=False)
    try:
        [row] = engine.files("telemetry")
        assert row["reason"].startswith("meaning: first 3 chunks of ")
    finally:
        engine.close()


def test_stage_two_encodes_small_and_recent_files_first(index, encoder, settings, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(indexer_module, "BIG_FILE_CHUNKS", 2)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "old.txt").write_text("An old note on compressor stall.")
    (folder / "new.txt").write_text("A new note on compressor stall.")
    (folder / "big.txt").write_text("\n".join(f"Line {i} of a long report on compressor stall margins and surge."
                                              for i in range(400)))
    now = time.time()
    os.utime(folder / "old.txt", (now - 86400 * 30, now - 86400 * 30))
    os.utime(folder / "big.txt", (now + 60, now + 60))  # the newest, but big: after the small files
    words_only(index, encoder, settings, folder)
    claimed = index.store.claim_pending(100, lease_s=60)
    files = dict(index.store.conn.execute("SELECT id, path FROM files"))
    order = list(dict.fromkeys(Path(files[chunk.file_id]).name for chunk in claimed))
    assert order == ["new.txt", "old.txt", "big.txt"]


def test_claims_keep_two_processes_apart_and_die_with_their_process(index, encoder, settings, aero_corpus) -> None:
    words_only(index, encoder, settings, aero_corpus)
    first = index.store.claim_pending(2, lease_s=600)
    second = index.store.claim_pending(10, lease_s=600)
    assert len(first) == 2 and len(second) == 2
    assert not {c.chunk_id for c in first} & {c.chunk_id for c in second}
    assert index.store.claim_pending(10, lease_s=600) == []
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with index.store.transaction():
        index.store.conn.execute("UPDATE pending SET claimed_by = ?", (int(dead.stdout),))
    assert len(index.store.claim_pending(10, lease_s=600)) == 4, "a killed process's claims are void"


def test_newer_work_waits_for_a_cpu_batch_of_a_few_seconds_not_of_64_long_chunks(index, encoder, settings,
                                                                                tmp_path) -> None:
    """A watcher's new file waited for a whole 64-chunk batch of another folder's long chunks (12 s with the
    lite model, about two minutes with BGE-M3 on a CPU); on the CPU a batch now claims about a second of the
    model's work on two cores (one pass of BGE-M3), so making way comes after that."""
    folder = tmp_path / "long"
    folder.mkdir()
    for i in range(12):
        (folder / f"report{i:02d}.txt").write_text(" ".join(f"Section {j} of report {i} measures the compressor "
                                                            f"stall margin at speed {j * i}." for j in range(60)))
    control = RunControl()

    def newer_work_after_first_batch(progress) -> None:
        if progress.phase == "encoding" and progress.chunks_done:
            control.make_way()

    report = Indexer(index, encoder, settings).run([folder], progress=newer_work_after_first_batch, control=control)
    assert 0 < report.tokens <= cpu_batch_tokens(encoder.spec) and report.pending_chunks > 0


def test_a_cpu_batch_is_a_few_seconds_of_the_models_work_and_the_same_in_every_run(spec) -> None:
    """With BGE-M3 on two cores (100-260 tokens/s) a 2,048-token batch kept a new file waiting 8-14 s: its batch
    is one pass. The bound follows the model, never a pace measured while running, so a run resumed after a
    crash cuts the batches a clean run cuts."""
    lite = cpu_batch_tokens(spec)
    assert 4 * CPU_TOKENS_PER_BATCH <= lite <= 16 * CPU_TOKENS_PER_BATCH
    bge_m3 = dataclasses.replace(spec, hidden_size=1024, layers=24)
    assert cpu_batch_tokens(bge_m3) == CPU_TOKENS_PER_BATCH


def test_making_way_stops_stage_two_after_its_batch_and_the_next_run_resumes(index, encoder, settings,
                                                                            tmp_path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        (folder / f"doc{i:03d}.txt").write_text(f"Document {i} about compressor stall number {i}.")
    control = RunControl()

    def newer_work_after_first_batch(progress) -> None:
        if progress.phase == "encoding" and progress.chunks_done:
            control.make_way()

    report = Indexer(index, encoder, settings).run([folder], progress=newer_work_after_first_batch, control=control)
    assert not report.cancelled and report.chunks_encoded == indexer_module.ENCODE_BATCH_CHUNKS
    assert report.pending_chunks == 150 - report.chunks_encoded
    assert Indexer(index, encoder, settings).update([]).chunks_encoded == report.pending_chunks


def test_progress_says_both_stages(index, encoder, settings, aero_corpus) -> None:
    seen = []
    Indexer(index, encoder, settings).run([aero_corpus], progress=seen.append)
    lines = [p.line() for p in seen if p.phase in ("indexing", "encoding")]
    assert "keyword: 4 of 4 files, ETA 0 s" in lines
    assert any(line.startswith("keyword: 4 of 4 files · meaning: 4 of 4 files, ETA") for line in lines)
    assert format_eta(7800) == "ETA 2 h 10 min"


def test_searches_that_need_the_model_are_answered_by_words_while_it_loads(index, encoder, settings,
                                                                           aero_corpus) -> None:
    Indexer(index, encoder, settings).run([aero_corpus])
    engine = Engine.open(settings, load=False)
    try:
        engine.answer_by_words_until_loaded()
        early = engine.search("boundary layer of a wing")
        assert early.mode == "keyword" and early.channels == ["keyword"] and early.hits
        assert early.to_dict()["note"].startswith("ranked by words; meaning-based ranking in a moment")
        assert not engine.model_loaded
        engine.load_model()
        later = engine.search("boundary layer of a wing")
        assert later.mode == "hybrid" and later.note == "" and "dense" in later.channels
    finally:
        engine.close()


def test_a_phrase_nobody_wrote_does_not_empty_the_results(index, encoder, settings, aero_corpus) -> None:
    Indexer(index, encoder, settings).run([aero_corpus])
    searcher = Searcher(index, encoder)
    for mode in ("keyword", "hybrid"):
        result = searcher.search('papers on "jet engines that whisper" and nozzle noise', mode=mode)
        assert result.hits and result.hits[0].path.endswith("noise.txt")
        assert all(hit.without_phrase for hit in result.hits)
        assert result.note == 'no indexed text holds the phrase "jet engines that whisper": these hits do not hold it'
        held = searcher.search('"boundary layer separates" and heating of blunt bodies', mode=mode, k=3)
        assert held.hits[0].path.endswith("stall.txt") and not held.hits[0].without_phrase
        assert held.hits[1].path.endswith("heat.txt"), "the rest of the top k come from the ranking without it"
        assert all(hit.without_phrase for hit in held.hits[1:])
        assert len({hit.path for hit in held.hits}) == len(held.hits)
    assert searcher.search('"jet engines that whisper"', mode="keyword").to_dict()["hits"][0]["without_phrase"]


def test_a_chunk_without_vectors_stands_in_with_what_encoded_chunks_score_at_its_keyword_score() -> None:
    from desktop_app.core.search.fusion import stand_in_scores

    keyword = {1: 10.0, 2: 8.0, 3: 6.0, 4: 4.0, 5: 2.0, 6: 9.0, 7: 3.0}
    # encoded chunks 1-5: fused = 0.2 + 0.5 x (keyword / best); 6 and 7 have no vectors yet
    ranked = [(cid, 0.2 + 0.5 * keyword[cid] / 10.0) for cid in (1, 2, 3, 4, 5)] + [(6, 0.0), (7, 0.0)]
    dense = {cid: 0.5 for cid in (1, 2, 3, 4, 5)}
    scores = dict(stand_in_scores(ranked, dense, keyword))
    assert scores[6] == pytest.approx(0.65) and scores[7] == pytest.approx(0.35)
    assert [cid for cid, _ in stand_in_scores(ranked, dense, keyword)] == [1, 6, 2, 3, 4, 7, 5]
    nothing_encoded = stand_in_scores([(cid, 0.0) for cid in keyword], {}, keyword)
    assert [cid for cid, _ in nothing_encoded] == sorted(keyword, key=lambda cid: -keyword[cid]), "keyword order"
    assert stand_in_scores(ranked[:5], dense, keyword) == ranked[:5], "everything encoded: unchanged"
    barely = [cid for cid, _ in stand_in_scores(ranked, dense, keyword, encoded_share=0.0)]
    assert barely == sorted(keyword, key=lambda cid: -keyword[cid]), "while few are encoded, words lead"


def test_an_index_answers_by_words_while_its_caches_load(index, encoder, settings, aero_corpus, monkeypatch) -> None:
    """A big index reads its caches for seconds: keyword searches read FTS5 meanwhile, with the same
    ranking; hybrid ones answer by words with a note; whatever needs the caches waits for them."""
    Indexer(index, encoder, settings).run([aero_corpus])
    index.close()
    loaded = Searcher(LocalIndex.open(settings.index_dir), encoder)
    expected = loaded.search("boundary layer of a wing", mode="keyword")
    # A phrase among other words: the chunk holding the phrase ranks first whether or not it holds the rest.
    phrased = loaded.search('nozzle "boundary layer"', mode="keyword")
    release = threading.Event()
    load = DenseIndex.load_or_create

    def slow_load(self: DenseIndex) -> bool:
        assert release.wait(30)
        return load(self)

    monkeypatch.setattr(DenseIndex, "load_or_create", slow_load)
    engine = Engine.open(settings, load=False)
    try:
        engine.answer_by_words_until_loaded()
        encoder_loaded = engine._encoder.load()  # the model is in; the caches are not
        assert encoder_loaded.loaded and not engine._index.caches.loaded
        early = engine.search("boundary layer of a wing", mode="keyword")
        assert [(h.path, h.chunk_id) for h in early.hits] == [(h.path, h.chunk_id) for h in expected.hits]
        assert [h.score for h in early.hits] == pytest.approx([h.score for h in expected.hits], rel=1e-5)
        early_phrased = engine.search('nozzle "boundary layer"', mode="keyword")
        assert [(h.path, h.without_phrase) for h in early_phrased.hits] == \
            [(h.path, h.without_phrase) for h in phrased.hits]
        assert phrased.hits[0].path.endswith("stall.txt") and not phrased.hits[0].without_phrase
        hybrid = engine.search("boundary layer of a wing")
        assert hybrid.mode == "keyword" and hybrid.note == CACHES_LOADING_NOTE and hybrid.hits
        assert not engine._index.caches.loaded
        release.set()
        engine.load_model()  # waits for the caches too
        assert engine._index.caches.loaded and engine._index.vector_count == engine._index.store.encoded_count() > 0
        later = engine.search("boundary layer of a wing")
        assert later.mode == "hybrid" and later.note == "" and "dense" in later.channels
    finally:
        release.set()
        engine.close()


def test_a_cache_that_cannot_load_says_why_to_whoever_waits(tmp_path, spec, monkeypatch) -> None:
    index = LocalIndex.open(tmp_path / "index", create=True)
    index.bind_model(spec)
    index.close()

    def broken(self: DenseIndex) -> bool:
        raise MemoryError("no room for the vector cache")

    monkeypatch.setattr(DenseIndex, "load_or_create", broken)
    reopened = LocalIndex.open(tmp_path / "index", load_in_background=True)
    with pytest.raises(MemoryError, match="no room for the vector cache"):
        reopened.wait_until_loaded()
    with pytest.raises(MemoryError):
        assert reopened.vector_count
    reopened.close()


def test_the_dense_cache_loads_last_once_a_keyword_search_reading_fts5_is_done(index, encoder, settings,
                                                                              aero_corpus, monkeypatch) -> None:
    """hnswlib's load holds the GIL for seconds at a million chunks: it must not freeze the first answers."""
    Indexer(index, encoder, settings).run([aero_corpus])
    index.close()
    events: list[str] = []
    searching = threading.Event()
    fts5, keywords_load, dense_load = Store.keyword_top, KeywordIndex.load, DenseIndex.load_or_create

    def slow_fts5(self: Store, *args, **kwargs):
        searching.set()
        time.sleep(0.3)
        events.append("search done")
        return fts5(self, *args, **kwargs)

    def keywords_after_the_search_began(self: KeywordIndex) -> bool:
        assert searching.wait(30)
        events.append("keywords")
        return keywords_load(self)

    def dense(self: DenseIndex) -> bool:
        events.append("dense")
        return dense_load(self)

    monkeypatch.setattr(Store, "keyword_top", slow_fts5)
    monkeypatch.setattr(KeywordIndex, "load", keywords_after_the_search_began)
    monkeypatch.setattr(DenseIndex, "load_or_create", dense)
    opened = LocalIndex.open(settings.index_dir, load_in_background=True)
    try:
        assert Searcher(opened, encoder).search("boundary layer of a wing", mode="keyword").hits
        opened.wait_until_loaded()
        assert events == ["keywords", "search done", "dense"]
    finally:
        opened.close()


def test_the_model_loads_while_stage_one_reads(index, spec, settings, aero_corpus, monkeypatch) -> None:
    """Loading the model takes seconds on a CPU: stage 2 needs it, so it loads behind stage 1's reading."""
    from desktop_app.core.model.encoder import Encoder

    loading = threading.Event()
    real_load, real_commit = Encoder._load, Indexer.commit_words
    loading_by_commit: list[bool] = []

    def load(self: Encoder) -> None:
        loading.set()
        real_load(self)

    def commit(self: Indexer, *args, **kwargs) -> None:
        loading_by_commit.append(loading.wait(10))
        real_commit(self, *args, **kwargs)

    monkeypatch.setattr(Encoder, "_load", load)
    monkeypatch.setattr(Indexer, "commit_words", commit)
    report = Indexer(index, Encoder(spec, device="cpu", dtype="fp32"), settings).run([aero_corpus])
    assert loading_by_commit and all(loading_by_commit)
    assert report.chunks_encoded == 4 and report.pending_chunks == 0
