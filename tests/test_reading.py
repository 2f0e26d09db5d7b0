"""The reading stage of a run: worker processes, OCR progress, cancel, crashes and the OCR setting."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

from builders import make_pdf, make_pptx, make_scanned_pdf, text_image

from desktop_app.core.backends.local.index import LocalIndex
from desktop_app.core.engine import Engine
from desktop_app.core.ingest.chunk import Chunker
from desktop_app.core.ingest.extract import Options
from desktop_app.core.ingest.extract.pool import CRASH_REASON, ExtractionPool
from desktop_app.core.ingest.indexer import Indexer
from desktop_app.core.ingest.progress import Progress, RunControl
from desktop_app.core.ingest.reading import Candidate, FileReader, FileTask

RECEIPT = ["Invoice 4471 from Harbor Plumbing", "Replaced the kitchen water heater"]
LETTER = ["Dear tenant, the boiler inspection", "is moved to Thursday morning"]


def scanned_folder(folder: Path) -> Path:
    folder.mkdir()
    make_scanned_pdf(folder / "letter.pdf", [LETTER])
    text_image(RECEIPT).save(folder / "receipt.png")
    make_pptx(folder / "deck.pptx", [("Ferries", "Timetable for winter", ""), ("Harbour", "Dredging the silt", "")])
    (folder / "notes.txt").write_text("Plain notes about the allotment garden.")
    return folder


def test_scans_images_and_slides_are_found_with_their_place_and_the_ocr_mark(tmp_path, settings) -> None:
    folder = scanned_folder(tmp_path / "docs")
    engine = Engine.open(settings, create=True)
    report = engine.indexer().run([folder])
    assert report.added == 4 and report.failed == 0, report.failures
    hits = {Path(h.path).name: h for h in engine.search("kitchen water heater", k=5, mode="keyword").hits}
    assert hits["receipt.png"].ocr and hits["receipt.png"].place == "image"
    letter = engine.search("boiler inspection Thursday", k=5, mode="keyword").hits[0]
    assert Path(letter.path).name == "letter.pdf" and letter.ocr and letter.place == "page 1"
    slide = engine.search("dredging silt", k=5, mode="keyword").hits[0]
    assert Path(slide.path).name == "deck.pptx" and slide.place == "slide 2" and not slide.ocr
    engine.close()


def test_progress_says_which_page_ocr_is_reading(tmp_path, settings, encoder) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    make_scanned_pdf(folder / "long.pdf", [RECEIPT, LETTER, RECEIPT])
    seen: list[str] = []
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([folder], progress=lambda p: seen.append(p.current))
    index.close()
    assert any(text.startswith("long.pdf: OCR page ") and text.endswith(" of 3") for text in seen), seen


def test_cancel_stops_ocr_between_pages(tmp_path, settings) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    make_scanned_pdf(folder / "big.pdf", [RECEIPT, LETTER] * 15)
    control = RunControl()

    def on_progress(progress: Progress) -> None:
        if "OCR page 2 " in progress.current:
            control.cancel()

    engine = Engine.open(settings, create=True)
    started = time.monotonic()
    report = engine.indexer().run([folder], progress=on_progress, control=control)
    elapsed = time.monotonic() - started
    assert report.cancelled and report.added == 0
    assert elapsed < 25, f"cancel took {elapsed:.1f} s for a 30-page scan"
    assert all(row["state"] != "indexed" for row in engine.files())
    engine.close()


class CrashingPool(ExtractionPool):
    """A pool whose worker dies on files named crash*.pdf, as PDFium can on a hostile PDF."""

    def submit(self, path: str):  # noqa: ANN201 - Future[Extracted]
        if Path(path).name.startswith("crash"):
            return self.executor.submit(os._exit, 3)
        return super().submit(path)


def test_a_file_that_kills_its_reader_fails_alone_and_the_others_are_read(tmp_path, lite_model_dir) -> None:
    names = ["a.pdf", "crash.pdf", "b.pdf", "c.pdf"]
    jobs = []
    for name in names:
        make_pdf(tmp_path / name, [f"Report {name} about tidal power."])
        stat = (tmp_path / name).stat()
        jobs.append(FileTask(Candidate(str(tmp_path / name), stat.st_size, stat.st_mtime_ns, str(tmp_path / name))))
    chunker = Chunker(lite_model_dir / "tokenizer.json", 128, 16)
    ready: queue.Queue = queue.Queue()
    FileReader(chunker, Options(), 2, pool=CrashingPool).run(jobs, ready, threading.Event())
    done = {}
    while (job := ready.get()) is not None:
        done[Path(job.file.path).name] = job
    assert sorted(done) == sorted(names)
    assert done["crash.pdf"].error == CRASH_REASON
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        assert done[name].error is None and "tidal power" in done[name].chunks[0].text


def test_turning_ocr_on_reads_only_the_files_that_need_it_again(tmp_path, settings) -> None:
    folder = scanned_folder(tmp_path / "docs")
    engine = Engine.open(settings.with_(ocr=False), create=True)
    first = engine.indexer().run([folder])
    assert first.added == 2 and first.failed == 1  # receipt.png is no candidate with OCR off
    assert "OCR is turned off" in first.failures[0].reason
    engine.close()
    engine = Engine.open(settings, create=False)
    second = engine.indexer().run([folder])
    assert (second.added, second.updated, second.unchanged) == (1, 1, 2)  # receipt.png new, letter.pdf again
    assert Path(engine.search("boiler inspection", k=3, mode="keyword").hits[0].path).name == "letter.pdf"
    engine.close()


def test_pause_holds_ocr_between_pages_and_resume_finishes(tmp_path, settings, monkeypatch) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    make_scanned_pdf(folder / "long.pdf", [RECEIPT, LETTER] * 3)
    control = RunControl()
    worker_said: list[tuple[float, str]] = []  # what the worker processes report, paused or not
    original_drain = ExtractionPool.drain

    def recording_drain(pool: ExtractionPool) -> None:
        original_drain(pool)
        worker_said.append((time.monotonic(), pool.activity))

    monkeypatch.setattr(ExtractionPool, "drain", recording_drain)
    window: dict[str, float] = {}

    def resume_later() -> None:
        window["from"] = time.monotonic() + 1.5  # a page being read when pausing may still finish
        time.sleep(4.5)
        window["to"] = time.monotonic()
        control.resume()

    def on_progress(progress: Progress) -> None:
        if "OCR page 2 " in progress.current and not window and not control.paused:
            control.pause()
            threading.Thread(target=resume_later, daemon=True).start()

    engine = Engine.open(settings, create=True)
    report = engine.indexer().run([folder], progress=on_progress, control=control)
    engine.close()
    during = {text for at, text in worker_said if window["from"] <= at <= window["to"]}
    assert len(during) == 1, f"OCR went on while the run was paused: {sorted(during)}"
    assert report.added == 1 and not report.cancelled
