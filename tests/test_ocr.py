"""OCR: scanned PDFs, scanned pages inside digital PDFs and image files become searchable text."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from builders import make_scanned_pdf, text_image

from desktop_app.core.errors import ExtractionError, OcrNeeded
from desktop_app.core.ingest.extract import OcrLimits, Options, extract

RECEIPT = ["Invoice 4471 from Harbor Plumbing", "Replaced the kitchen water heater"]
LETTER = ["Dear tenant, the boiler inspection", "is moved to Thursday morning"]


def words(text: str) -> set[str]:
    return set(text.lower().replace(",", " ").split())


def test_an_image_file_is_read_by_ocr(tmp_path: Path) -> None:
    text_image(RECEIPT).save(tmp_path / "receipt.png")
    extracted = extract(tmp_path / "receipt.png")
    assert extracted.unit == "image" and extracted.ocr_pages == [1]
    assert {"invoice", "4471", "plumbing", "kitchen", "heater"} <= words(extracted.pages[0].text)


def test_a_scanned_pdf_is_read_page_by_page_and_reports_progress(tmp_path: Path) -> None:
    pdf = make_scanned_pdf(tmp_path / "scan.pdf", [RECEIPT, LETTER])
    said: list[str] = []
    extracted = extract(pdf, progress=said.append)
    assert said == ["OCR page 1 of 2", "OCR page 2 of 2"]
    assert extracted.ocr_pages == [1, 2]
    assert "heater" in words(extracted.pages[0].text) and "boiler" in words(extracted.pages[1].text)


def test_a_scanned_page_inside_a_digital_pdf_is_no_longer_dropped(tmp_path: Path) -> None:
    pdf = make_scanned_pdf(tmp_path / "mixed.pdf", [[], LETTER], text_pages={1: "Typed cover page about rent."})
    extracted = extract(pdf)
    assert [(p.number, p.ocr) for p in extracted.pages] == [(1, False), (2, True)]
    assert "inspection" in words(extracted.pages[1].text)


def test_with_ocr_off_a_scan_says_so_and_a_mixed_pdf_keeps_its_text_pages(tmp_path: Path) -> None:
    off = Options(ocr=OcrLimits(enabled=False))
    with pytest.raises(OcrNeeded, match="OCR is turned off"):
        extract(make_scanned_pdf(tmp_path / "scan.pdf", [RECEIPT]), off)
    mixed = extract(make_scanned_pdf(tmp_path / "mixed.pdf", [[], LETTER], text_pages={1: "Typed cover page."}), off)
    assert [p.number for p in mixed.pages] == [1]
    assert mixed.note == "1 scanned page(s) not read: OCR is turned off"
    text_image(RECEIPT).save(tmp_path / "receipt.png")
    with pytest.raises(OcrNeeded):
        extract(tmp_path / "receipt.png", off)


def test_ocr_stops_at_the_page_cap_and_says_where(tmp_path: Path) -> None:
    pdf = make_scanned_pdf(tmp_path / "long.pdf", [RECEIPT, LETTER, RECEIPT])
    extracted = extract(pdf, Options(ocr=OcrLimits(max_pages=1)))
    assert [p.number for p in extracted.pages] == [1]
    assert extracted.note == "OCR stopped at page 2 (limit of 1 pages or 300 s per file)"


def test_a_huge_image_is_scaled_down_before_ocr_and_still_read(tmp_path: Path) -> None:
    text_image(RECEIPT, size=(1400, 900)).resize((5600, 3600)).save(tmp_path / "poster.png")
    extracted = extract(tmp_path / "poster.png", Options(ocr=OcrLimits(max_pixels=6_000_000)))
    assert "plumbing" in words(extracted.pages[0].text)
    with pytest.raises(ExtractionError, match=r"image too large to read \(5600 x 3600 pixels\)"):
        extract(tmp_path / "poster.png", Options(ocr=OcrLimits(max_pixels=4_000_000)))


def test_an_image_without_text_is_indexed_empty_with_a_note(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (400, 300), (40, 120, 200)).save(tmp_path / "sky.jpg")
    extracted = extract(tmp_path / "sky.jpg")
    assert extracted.pages == [] and extracted.note == "no text found in the image (OCR)"


def test_ocr_needs_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RapidOCR's models ship inside its wheel: reading works with every connection refused."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text_image(LETTER).save(tmp_path / "letter.png")
    assert "boiler" in words(extract(tmp_path / "letter.png").pages[0].text)


def test_a_damaged_image_has_a_reason(tmp_path: Path) -> None:
    text_image(RECEIPT).save(tmp_path / "receipt.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "receipt.png").read_bytes()[:200])
    with pytest.raises(ExtractionError, match="damaged image|not a readable PNG"):
        extract(tmp_path / "cut.png")


def test_a_pdf_of_pictures_without_words_is_indexed_empty_with_a_note(tmp_path: Path) -> None:
    from fpdf import FPDF
    from PIL import Image

    Image.new("RGB", (600, 400), (200, 80, 40)).save(tmp_path / "photo.png")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(tmp_path / "photo.png"), x=10, y=10, w=150)
    pdf.output(str(tmp_path / "album.pdf"))
    extracted = extract(tmp_path / "album.pdf")
    assert extracted.pages == [] and extracted.note == "no text found: OCR read 1 page(s) of images"
