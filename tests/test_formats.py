"""Every format beyond text, PDF and DOCX: its text, its units (slides, sheets, chapters, messages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import (
    make_docx,
    make_email,
    make_epub,
    make_mbox,
    make_notebook,
    make_odf,
    make_pdf,
    make_pptx,
    make_xlsx,
)

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract import extract


def test_pptx_gives_a_page_per_slide_with_speaker_notes(tmp_path: Path) -> None:
    deck = make_pptx(tmp_path / "deck.pptx", [
        ("Harbour dredging", "Silt volumes doubled since 2019", "Mention the tide tables"),
        ("Budget", "Two barges leased for the winter", ""),
    ])
    extracted = extract(deck)
    assert extracted.unit == "slide"
    assert [p.number for p in extracted.pages] == [1, 2]
    first = extracted.pages[0].text
    assert "Harbour dredging" in first and "Silt volumes doubled" in first and "Notes: Mention the tide tables" in first
    assert "Two barges leased" in extracted.pages[1].text


def test_xlsx_gives_a_page_per_sheet_with_rows_and_cached_formula_values(tmp_path: Path) -> None:
    book = make_xlsx(tmp_path / "book.xlsx", {
        "Fuel": [["Vessel", "Litres"], ["Kestrel", 1200], ["Osprey", 860]],
        "Crew": [["Name", "Role"], ["Mara Lind", "Pilot"]],
    }, formula=("B4", "=B2+B3", 2060))
    extracted = extract(book)
    assert extracted.unit == "sheet"
    fuel, crew = extracted.pages
    assert fuel.text.splitlines()[:3] == ["Sheet: Fuel", "Vessel | Litres", "Kestrel | 1200"]
    assert "2060" in fuel.text  # the value Excel computed, not the formula text
    assert "=B2+B3" not in fuel.text
    assert crew.number == 2 and "Mara Lind | Pilot" in crew.text


@pytest.mark.parametrize(("kind", "suffix", "unit"), [
    ("text", ".odt", "page"), ("spreadsheet", ".ods", "sheet"), ("presentation", ".odp", "slide")])
def test_opendocument_text_sheets_and_slides(tmp_path: Path, kind: str, suffix: str, unit: str) -> None:
    path = make_odf(tmp_path / f"doc{suffix}", kind, ["Lock gates of the canal", "Towpath repairs in spring"])
    extracted = extract(path)
    assert extracted.unit == unit
    text = "\n".join(p.text for p in extracted.pages)
    assert "Lock gates of the canal" in text and "Towpath repairs in spring" in text
    if unit != "page":
        assert [p.number for p in extracted.pages] == [1, 2]
        assert "Towpath" in extracted.pages[1].text


def test_epub_gives_a_page_per_chapter_in_reading_order(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "book.epub", ["The lighthouse keeper's log.", "A storm off the northern cape."])
    extracted = extract(book)
    assert extracted.unit == "chapter"
    texts = [p.text for p in extracted.pages]
    assert any("lighthouse keeper" in t for t in texts)
    storm = next(p for p in extracted.pages if "storm off the northern cape" in p.text)
    keeper = next(p for p in extracted.pages if "lighthouse keeper" in p.text)
    assert storm.number > keeper.number


def test_rtf_text_without_control_words(tmp_path: Path) -> None:
    path = tmp_path / "memo.rtf"
    path.write_bytes(rb"{\rtf1\ansi\deff0 {\fonttbl {\f0 Times;}}\f0\fs24 "
                     rb"Gr\'fc\'dfe vom {\b Hafenamt}.\par Zweite Zeile.}")
    text = extract(path).pages[0].text
    assert "Grüße vom Hafenamt." in text and "Zweite Zeile." in text and "fonttbl" not in text


def test_eml_gives_headers_body_and_readable_attachments(tmp_path: Path) -> None:
    attached = make_docx(tmp_path / "minutes.docx", ["Minutes: the committee approved the new jetty."])
    path = tmp_path / "mail.eml"
    path.write_bytes(make_email("Jetty vote", "See the minutes attached.",
                                {"minutes.docx": attached.read_bytes(), "photo.heic": b"\x00\x01binary"}))
    extracted = extract(path)
    assert extracted.unit == "message"
    text = extracted.pages[0].text
    assert "Subject: Jetty vote" in text and "From: Ada Lovelace <ada@example.org>" in text
    assert "Date: Tue, 03 Mar 2026" in text and "See the minutes attached." in text
    assert "Attachment: minutes.docx" in text and "committee approved the new jetty" in text
    assert extracted.note is not None and "photo.heic (unsupported file type .heic)" in extracted.note


def test_mbox_gives_a_page_per_message(tmp_path: Path) -> None:
    path = make_mbox(tmp_path / "inbox.mbox", [make_email("Ferry times", "The 7:40 ferry is cancelled."),
                                               make_email("Re: Ferry times", "Take the 8:15 instead.")])
    extracted = extract(path)
    assert extracted.unit == "message"
    assert [p.number for p in extracted.pages] == [1, 2]
    assert "7:40 ferry is cancelled" in extracted.pages[0].text
    assert "Subject: Re: Ferry times" in extracted.pages[1].text


def test_pdf_attachment_of_an_email_is_read(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "invoice.pdf", ["Invoice 4471: replacement of the boiler valve."])
    path = tmp_path / "mail.eml"
    path.write_bytes(make_email("Invoice", "Attached.", {"invoice.pdf": pdf.read_bytes()}))
    assert "replacement of the boiler valve" in extract(path).pages[0].text


def test_notebook_gives_markdown_and_code_but_not_outputs(tmp_path: Path) -> None:
    path = make_notebook(tmp_path / "analysis.ipynb", [
        ("markdown", "# Tide analysis\nHarmonic constituents of the harbour gauge."),
        ("code", "import numpy as np\namplitude = np.max(levels)"),
    ], output="OUTPUT-BLOB-" * 50)
    text = extract(path).pages[0].text
    assert "Harmonic constituents" in text and "amplitude = np.max(levels)" in text
    assert "OUTPUT-BLOB" not in text and '"cell_type"' not in text


def test_msg_that_is_not_an_outlook_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "mail.msg"
    path.write_bytes(make_email("Hello", "Plain MIME saved as .msg"))
    with pytest.raises(ExtractionError, match="not an Outlook .msg message"):
        extract(path)
