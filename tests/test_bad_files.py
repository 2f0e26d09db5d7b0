"""A folder of everything that goes wrong on real disks: each file is indexed or has a reason."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from builders import encrypt_pdf, make_docx, make_pdf

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.paths import to_os, to_text


def bad_corpus(folder: Path) -> dict[str, str]:
    """Create the files; returns name -> what must happen ("indexed" or a reason fragment)."""
    folder.mkdir()
    expect = {}
    make_pdf(folder / "good.pdf", ["Good PDF about supersonic inlets."])
    make_docx(folder / "good.docx", ["Good DOCX about fatigue cracks."])
    (folder / "good.txt").write_text("Good text about ground effect.")
    expect.update({"good.pdf": "indexed", "good.docx": "indexed", "good.txt": "indexed"})
    encrypt_pdf(folder / "good.pdf", folder / "locked.pdf", "secret")
    expect["locked.pdf"] = "encrypted PDF"
    (folder / "truncated.pdf").write_bytes((folder / "good.pdf").read_bytes()[:300])
    expect["truncated.pdf"] = "PDF"
    from fpdf import FPDF

    scanned = FPDF()
    scanned.add_page()
    scanned.rect(20, 20, 100, 100, style="F")
    scanned.output(str(folder / "scanned.pdf"))
    expect["scanned.pdf"] = "PDF has no text: its pages hold neither text nor images"
    with zipfile.ZipFile(folder / "broken.docx", "w") as archive:
        archive.writestr("word/document.xml", "garbage")
    expect["broken.docx"] = "damaged DOCX"
    (folder / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    expect["old.docx"] = "legacy Word .doc"
    (folder / "binary.txt").write_bytes(os.urandom(4096) + b"\x00")
    expect["binary.txt"] = "not a text file"
    (folder / "empty.txt").write_bytes(b"")
    expect["empty.txt"] = "indexed"
    (folder / "huge.txt").write_text("lift and drag " * 400_000)
    expect["huge.txt"] = "indexed"
    (folder / "unreadable.txt").write_text("Permission test about winglets.")
    os.chmod(folder / "unreadable.txt", 0)
    expect["unreadable.txt"] = "indexed" if os.geteuid() == 0 else "permission denied"
    odd = os.fsencode(folder) + b"/caf\xe9-latin1-name.txt"
    with open(odd, "wb") as handle:
        handle.write(b"A file whose name is not UTF-8, about canards.")
    expect[os.fsdecode(b"caf\xe9-latin1-name.txt")] = "indexed"
    (folder / "loop").mkdir()
    (folder / "loop" / "again").symlink_to(folder / "loop")
    (folder / "dangling.txt").symlink_to(folder / "missing-target.txt")
    expect["dangling.txt"] = "broken link"
    (folder / "vanishing.txt").write_text("This file disappears before it is read.")
    expect["vanishing.txt"] = "vanished"
    return expect


def test_every_bad_file_is_indexed_or_reported_and_good_files_survive(tmp_path, encoder, settings,
                                                                       monkeypatch) -> None:
    from desktop_app.core.ingest import reading as indexer_module
    folder = tmp_path / "mess"
    expect = bad_corpus(folder)
    original = indexer_module.sha256_of

    def vanish_first(path: str) -> str:
        if path.endswith("vanishing.txt"):
            os.unlink(path)
        return original(path)

    monkeypatch.setattr(indexer_module, "sha256_of", vanish_first)
    index = LocalIndex.open(settings.index_dir, create=True)
    report = Indexer(index, encoder, settings.with_(max_chars_per_file=200_000)).run([folder])
    failures = {Path(f.path).name: f.reason for f in report.failures}
    statuses = dict(index.store.conn.execute("SELECT path, status FROM files"))
    notes = dict(index.store.conn.execute("SELECT path, note FROM files WHERE note IS NOT NULL"))
    index.close()
    for name, outcome in expect.items():
        if outcome == "indexed":
            assert statuses.get(to_text(str(folder / name))) == "indexed", (name, failures.get(to_text(name)))
        else:
            assert outcome in failures.get(name, ""), (name, failures.get(name))
    assert report.added + report.failed == len(expect)
    assert notes == {str(folder / "huge.txt"): "text capped at 200,000 characters"}


def test_undecodable_file_names_round_trip_through_the_index() -> None:
    real = os.fsdecode(b"/data/caf\xe9 menu.txt")
    stored = to_text(real)
    assert stored == "/data/caf\\xe9 menu.txt" and stored.encode("utf-8")
    assert to_os(stored) == real
    assert to_text("/data/café.txt") == "/data/café.txt" == to_os("/data/café.txt")


def test_a_200_mb_text_file_is_streamed_and_capped_in_bounded_memory(tmp_path, encoder, settings) -> None:
    import tracemalloc

    folder = tmp_path / "big"
    folder.mkdir()
    line = b"Telemetry frame: pitch, roll, yaw and airspeed logged by the flight recorder.\n"
    with open(folder / "flight.log", "wb") as handle:
        for _ in range(200 * 2**20 // (len(line) * 4096) + 1):
            handle.write(line * 4096)
    assert (folder / "flight.log").stat().st_size >= 200 * 2**20
    (folder / "note.txt").write_text("A small note about the flight recorder.")
    index = LocalIndex.open(settings.index_dir, create=True)
    tracemalloc.start()
    report = Indexer(index, encoder, settings.with_(max_chars_per_file=20_000)).run([folder])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    note = index.store.conn.execute("SELECT note FROM files WHERE path LIKE '%flight.log'").fetchone()[0]
    index.close()
    assert report.added == 2 and report.failed == 0
    assert note == "text capped at 20,000 characters"
    assert peak < 16 * 2**20, f"peak Python memory {peak / 2**20:.1f} MB for a 200 MB file"
