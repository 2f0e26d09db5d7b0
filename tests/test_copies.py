"""Copies grouped: an exact copy in another folder, a renamed copy and a one-sentence edit of a report are one
hit that names the others; exact copies are encoded once; ``dup:show`` shows every copy."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import regex
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from desktop_app.cli import main
from desktop_app.core import UsageError, likeness, search_request
from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.config import Settings
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.search.query import parse
from desktop_app.core.search.searcher import Searcher
from desktop_app.core.storage.store import Store

REPO = Path(__file__).resolve().parents[1]
CRANFIELD = REPO / "tests" / "data" / "cranfield" / "cran.all.1400.gz"
REPORTS = 12
ABSTRACTS_PER_REPORT = 8  # a report-length text, as people's copies are (bench/copies.py)
EDIT = "This sentence was rewritten in the second draft and says something else entirely about the budget."


def abstracts() -> list[str]:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from testsets import one_line, parse_smart
    finally:
        sys.path.remove(str(REPO / "bench"))
    records = parse_smart(gzip.decompress(CRANFIELD.read_bytes()).decode("utf-8", errors="replace"))
    return [one_line(fields.get("W", "")) for _, fields in records if len(fields.get("W", "").split()) > 60]


def one_sentence_changed(text: str) -> str:
    sentences = text.split(". ")
    sentences[len(sentences) // 2] = EDIT
    return ". ".join(sentences)


class Corpus:
    """Twelve reports and three groups of copies, indexed once with the lite model."""

    def __init__(self, root: Path, texts: list[str]) -> None:
        self.root = root
        self.reports = [" ".join(texts[i * ABSTRACTS_PER_REPORT:(i + 1) * ABSTRACTS_PER_REPORT])
                        for i in range(REPORTS)]
        self.spare = texts[REPORTS * ABSTRACTS_PER_REPORT:]
        self.abstract = {i: texts[i * ABSTRACTS_PER_REPORT + 4] for i in range(REPORTS)}
        reports = root / "reports"
        reports.mkdir(parents=True)
        for number, text in enumerate(self.reports):
            (reports / f"report {number:02d}.txt").write_text(text, encoding="utf-8")
        (root / "elsewhere").mkdir()
        (root / "drafts").mkdir()
        exact = root / "elsewhere" / "report 00.txt"
        renamed = reports / "copy of report 01.txt"
        edited = root / "drafts" / "report 02 draft.txt"
        shutil.copyfile(reports / "report 00.txt", exact)
        shutil.copyfile(reports / "report 01.txt", renamed)
        edited.write_text(one_sentence_changed(self.reports[2]), encoding="utf-8")
        self.groups = {0: {str(reports / "report 00.txt"), str(exact)},
                       1: {str(reports / "report 01.txt"), str(renamed)},
                       2: {str(reports / "report 02.txt"), str(edited)}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("copies") / "docs", abstracts())


def count_encoded(encoder, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """From now on, every text the encoder is asked to encode, counted."""
    texts: Counter = Counter()
    encode = type(encoder).encode

    def counting(self, batch, *args, **kwargs):
        texts.update(batch)
        return encode(self, batch, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "encode", counting)
    return texts


@pytest.fixture(scope="module")
def built(corpus, encoder, lite_model_dir, tmp_path_factory):
    """The corpus indexed once (tests that change it put it back), and the texts its run encoded."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("copies-index"), model=str(lite_model_dir),
                        lite_model_dir=lite_model_dir, device="cpu", dtype="fp32")
    index = LocalIndex.open(settings.index_dir, create=True)
    with pytest.MonkeyPatch.context() as patch:
        counted = count_encoded(encoder, patch)
        report = Indexer(index, encoder, settings).run([corpus.root])
    yield index, report, counted, settings
    index.close()


def test_each_group_of_copies_is_one_hit_naming_the_others_and_top_ten_holds_ten_documents(
        corpus, built, encoder) -> None:
    index, report, _, _ = built
    assert report.failed == 0 and report.pending_chunks == 0
    searcher = Searcher(index, encoder)
    for number, members in corpus.groups.items():
        for mode in ("hybrid", "keyword"):
            hits = searcher.search(corpus.abstract[number], k=10, mode=mode).hits
            assert len(hits) == 10
            assert hits[0].path in members, (mode, [h.path for h in hits])
            assert {hits[0].path, *hits[0].duplicates} == members and hits[0].duplicates_total == len(members) - 1
            for group in corpus.groups.values():
                shown = [hit.path for hit in hits if hit.path in group]
                assert len(shown) <= 1, (mode, shown)
            loners = [hit for hit in hits if not any(hit.path in g for g in corpus.groups.values())]
            assert all(hit.duplicates == [] for hit in loners)


def test_more_like_a_report_leaves_out_the_report_and_its_copies(corpus, built, encoder) -> None:
    index = built[0]
    original = str(corpus.root / "reports" / "report 00.txt")
    hits = Searcher(index, encoder).more_like(index.store.chunk_at(original), k=10).hits
    assert hits and not corpus.groups[0] & {path for hit in hits for path in (hit.path, *hit.duplicates)}


def test_dup_show_lists_every_copy_as_a_hit_of_its_own(corpus, built, encoder) -> None:
    index = built[0]
    searcher = Searcher(index, encoder)
    for number, members in corpus.groups.items():
        hits = searcher.search(corpus.abstract[number] + " dup:show", k=10).hits
        assert members <= {hit.path for hit in hits}
        first = next(hit for hit in hits if hit.path in members)
        assert set(first.duplicates) == members - {first.path}  # still named, for the card's "also in"


def test_exact_copies_are_encoded_once_and_share_their_vectors(corpus, built) -> None:
    index, report, counted, _ = built
    store = index.store
    for number in (0, 1):
        copy, original = sorted(corpus.groups[number])
        copy_ids = sorted(store.chunks_of_files([store.files_under(copy)[copy].id]))
        original_ids = sorted(store.chunks_of_files([store.files_under(original)[original].id]))
        assert len(copy_ids) == len(original_ids) > 1
        texts = [store.chunk_rows([cid])[cid].text for cid in original_ids]
        assert all(counted[text] == 1 for text in texts), "an exact copy's chunk was encoded twice"
        assert np.array_equal(np.stack(list(store.dense_for(copy_ids).values())),
                              np.stack(list(store.dense_for(original_ids).values())))
        assert [store.sparse_of(c) for c in copy_ids] == [store.sparse_of(c) for c in original_ids]
    assert report.chunks_shared >= 2 * 2


def test_a_copy_added_later_takes_its_twins_vectors_without_encoding(corpus, built, encoder, tmp_path,
                                                                     monkeypatch) -> None:
    index, _, _, settings = built
    counted = count_encoded(encoder, monkeypatch)
    later = tmp_path / "later"
    later.mkdir()
    copy = later / "report 03 (1).txt"
    shutil.copyfile(corpus.root / "reports" / "report 03.txt", copy)
    report = Indexer(index, encoder, settings).run([later])
    try:
        assert report.added == 1 and report.chunks_encoded == report.chunks_shared == report.chunks_added > 1
        assert sum(counted.values()) == 0
        hits = Searcher(index, encoder).search(corpus.abstract[3]).hits
        assert {hits[0].path, *hits[0].duplicates} == {str(corpus.root / "reports" / "report 03.txt"), str(copy)}
    finally:
        copy.unlink()
        assert Indexer(index, encoder, settings).run([later]).removed == 1


def test_a_file_edited_beyond_a_copy_leaves_its_group_and_the_others_stay_together(corpus, built, encoder) -> None:
    index, _, _, settings = built
    store = index.store
    draft = corpus.root / "drafts" / "report 02 draft.txt"
    assert store.copies_of([str(draft)])[str(draft)].members == sorted(corpus.groups[2])
    original = draft.read_bytes()
    try:
        draft.write_text(" ".join(corpus.spare[:8]), encoding="utf-8")
        Indexer(index, encoder, settings).run([corpus.root])
        assert store.copies_of([str(draft), str(corpus.root / "reports" / "report 02.txt")]) == {}
        assert store.copies_of([str(corpus.root / "reports" / "report 00.txt")])  # the others are untouched
    finally:
        draft.write_bytes(original)
        Indexer(index, encoder, settings).run([corpus.root])
    assert store.copies_of([str(draft)])[str(draft)].members == sorted(corpus.groups[2])  # an edit back joins again


def test_json_hits_carry_duplicates_and_all_copies_shows_them(corpus, built, monkeypatch) -> None:
    index, _, _, settings = built
    index.save()
    monkeypatch.setenv("DESKTOP_SEARCH_DEVICE", "cpu")
    out, err = io.StringIO(), io.StringIO()
    common = ["search", corpus.abstract[1], "--index", str(settings.index_dir), "--json", "--mode", "keyword"]
    assert main(common, out=out, err=err) == 0, err.getvalue()
    hits = json.loads(out.getvalue())["hits"]
    assert {hits[0]["path"], *hits[0]["duplicates"]} == corpus.groups[1]
    text = io.StringIO()
    assert main([arg for arg in common if arg != "--json"], out=text, err=err) == 0, err.getvalue()
    assert f"    also in {hits[0]['duplicates'][0]}" in text.getvalue().splitlines()
    out = io.StringIO()
    assert main([*common, "--all-copies"], out=out, err=err) == 0, err.getvalue()
    assert corpus.groups[1] <= {hit["path"] for hit in json.loads(out.getvalue())["hits"]}


def test_dup_show_is_query_syntax_and_a_request_filter() -> None:
    assert parse("budget report dup:show").filters.every_copy
    assert parse("budget report").filters.every_copy is False
    assert "dup:show" in parse("x dup:SHOW").filters.describe()
    with pytest.raises(UsageError, match="dup: takes show"):
        parse("budget dup:all")
    assert search_request("budget", filters={"dup": "show"}).filters.every_copy


def test_an_index_from_before_copies_groups_its_identical_files_when_opened(tmp_path) -> None:
    path = tmp_path / "index.db"
    store = Store(path)
    with store.transaction():
        for name, digest in (("a.txt", "same"), ("b.txt", "same"), ("c.txt", "other")):
            store.upsert_file(f"/docs/{name}", 1, 1, digest, "indexed", "{}")
    store.conn.close()
    old = sqlite3.connect(path)  # as an index written before copies were grouped
    old.executescript("DROP INDEX files_copy_group; DROP TABLE likeness; DROP TABLE likeness_bands; "
                      "ALTER TABLE files DROP COLUMN copy_group;")
    old.close()
    reopened = Store(path)
    found = reopened.copies_of(["/docs/a.txt", "/docs/c.txt"])
    assert list(found) == ["/docs/a.txt"] and found["/docs/a.txt"].members == ["/docs/a.txt", "/docs/b.txt"]
    assert reopened.conn.execute("SELECT count(*) FROM files WHERE copy_group IS NULL").fetchone()[0] == 0


def test_copy_groups_of_a_search_list_members_only_of_groups_that_have_copies(tmp_path) -> None:
    """Every search asks for its candidates' copies, and most candidates have none: then nothing is listed
    (that listing was half of the lookup's time, bench/README.md); a group with copies still names them."""
    store = Store(tmp_path / "index.db")
    with store.transaction():
        for name, digest in (("a.txt", "same"), ("b.txt", "same"), ("c.txt", "c"), ("d.txt", "d")):
            file_id = store.upsert_file(f"/docs/{name}", 1, 1, digest, "indexed", "{}")
            store.place_in_copy_group(file_id, digest, None)
    asked: list[str] = []
    store.conn.set_trace_callback(asked.append)
    assert store.copies_of(["/docs/c.txt", "/docs/d.txt"]) == {}
    assert not [sql for sql in asked if "row_number()" in sql]
    found = store.copies_of(["/docs/a.txt", "/docs/c.txt"])
    assert list(found) == ["/docs/a.txt"] and found["/docs/a.txt"].members == ["/docs/a.txt", "/docs/b.txt"]
    assert found["/docs/a.txt"].total == 2


def test_a_folder_of_one_templates_files_compares_each_new_file_with_a_few_not_all(tmp_path, monkeypatch) -> None:
    """Invoices made from one template share every band: each new one is checked against a bounded few."""
    import random

    from desktop_app.core import likeness
    from desktop_app.core.storage import copies

    words = [f"word{i}" for i in range(2000)]
    pick = random.Random(7)
    template = " ".join(pick.choice(words) for _ in range(300))
    store = Store(tmp_path / "index.db")
    compared = []
    similarity = likeness.similarity
    monkeypatch.setattr(likeness, "similarity", lambda one, other: compared.append(1) or similarity(one, other))
    for number in range(copies.PER_BAND * likeness.BANDS + 60):
        compared.clear()
        text = template + " " + " ".join(pick.choice(words) for _ in range(40))
        with store.transaction():
            file_id = store.upsert_file(f"/invoices/{number}.txt", 1, 1, f"sha{number}", "indexed", "{}")
            store.place_in_copy_group(file_id, f"sha{number}", likeness.signature(text))
    assert 0 < len(compared) <= copies.PER_BAND * likeness.BANDS < number
    assert store.conn.execute("SELECT count(DISTINCT copy_group) FROM files").fetchone()[0] == 1
    group = store.copies_of(["/invoices/7.txt"])["/invoices/7.txt"]
    assert group.total == number + 1 and len(group.members) == copies.LISTED  # one hit names the first 50


def test_many_copies_of_one_report_do_not_crowd_the_other_documents_out_of_the_top_ten(
        corpus, built, encoder, tmp_path) -> None:
    """Forty copies of a report hold the channels' whole candidate pools; the ten hits are still ten documents.
    The copies go beside the module's index (they take their twin's vectors), then leave it again."""
    index, _, _, settings = built
    copies = tmp_path / "copies"
    copies.mkdir()
    for number in range(40):
        shutil.copyfile(corpus.root / "reports" / "report 04.txt", copies / f"report 04 ({number}).txt")
    assert Indexer(index, encoder, settings).run([copies]).added == 40
    try:
        searcher = Searcher(index, encoder)
        for mode in ("hybrid", "dense", "keyword"):
            hits = searcher.search(corpus.abstract[4], k=10, mode=mode).hits
            assert len(hits) == 10, (mode, len(hits))
            assert hits[0].duplicates_total == 40
    finally:
        for copy in copies.iterdir():  # the files, not the folder: a folder gone is an unplugged drive, kept
            copy.unlink()
        assert Indexer(index, encoder, settings).run([copies]).removed == 40


@examples(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["wind", "tunnel", "Mach", "shock", "wing", "flutter", "ßtraße", "émigré", "数据",
                                 "7", "19"]), min_size=0, max_size=3000))
def test_signatures_are_datasketchs_affine32_minhash_so_stored_ones_stay_valid(words: list[str]) -> None:
    """Our MinHash makes datasketch 2's numbers without importing it (and scipy with it) while the writer
    lock is held; a library upgrade cannot change a stored signature."""
    from datasketch import MinHash

    text = " ".join(words)
    ours = likeness.signature(text)
    found = [word.lower() for word in regex.findall(r"\w+", text)]
    if len(found) < likeness.MIN_WORDS:
        assert ours is None
        return
    theirs = MinHash(num_perm=likeness.PERMUTATIONS, seed=likeness.SEED, scheme="affine32")
    theirs.update_batch(list({" ".join(found[i:i + likeness.SHINGLE_WORDS]).encode()
                              for i in range(len(found) - likeness.SHINGLE_WORDS + 1)}))
    assert ours == theirs.hashvalues.astype(np.uint32).tobytes()


def test_indexing_does_not_import_datasketch_or_scipy(tmp_path: Path) -> None:
    """They cost 1.4 s of a terminal's `index`, spent holding the writer lock (bench/soak.py's waits)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for number in range(3):
        (folder / f"r{number}.txt").write_text(" ".join(f"word{i} of report {number}" for i in range(80)))
    code = ("import sys; from desktop_app.core import likeness; from pathlib import Path; "
            "[likeness.signature(p.read_text()) for p in Path(sys.argv[1]).iterdir()]; "
            "sys.exit(sorted({'datasketch', 'scipy'} & set(sys.modules)) != [])")
    assert subprocess.run([sys.executable, "-c", code, str(folder)], timeout=60).returncode == 0
