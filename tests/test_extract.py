"""Each format's extraction, from fixtures generated here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from builders import encrypt_pdf, make_docx, make_pdf

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract import Options, decode_text, extract


def test_pdf_text_comes_per_page_with_page_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "three.pdf", ["Alpha page about wings.", "Beta page about rockets.",
                                            "Gamma page about shells."])
    pages = extract(pdf).pages
    assert [p.number for p in pages] == [1, 2, 3]
    assert "Alpha page about wings." in pages[0].text
    assert "rockets" in pages[1].text and "rockets" not in pages[0].text
    assert "Gamma page about shells." in pages[2].text


def test_pdf_pages_without_text_are_left_out_but_keep_numbering(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "gap.pdf", ["first words", "", "third words"])
    assert [p.number for p in extract(pdf).pages] == [1, 3]


def test_encrypted_pdf_is_reported_as_needing_a_password(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["secret text"])
    locked = encrypt_pdf(plain, tmp_path / "locked.pdf", "hunter2")
    with pytest.raises(ExtractionError, match="encrypted PDF"):
        extract(locked)


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["readable although encrypted"])
    opened = encrypt_pdf(plain, tmp_path / "open.pdf", "")
    assert "readable although encrypted" in extract(opened).pages[0].text


def test_truncated_pdf_is_reported_as_damaged(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", ["some text"])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ExtractionError, match="PDF"):
        extract(broken)


def test_docx_gives_paragraphs_tables_and_headers(tmp_path: Path) -> None:
    docx = make_docx(tmp_path / "report.docx", ["Introduction to lift.", "Second paragraph."],
                     table=[["Wing", "Span"], ["Delta", "12 m"]], header="Quarterly report")
    text = extract(docx).pages[0].text
    assert "Introduction to lift." in text and "Second paragraph." in text
    assert "Wing | Span" in text and "Delta | 12 m" in text
    assert text.startswith("Quarterly report")


def test_docx_that_is_a_legacy_doc_says_so(tmp_path: Path) -> None:
    fake = tmp_path / "old.docx"
    fake.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    with pytest.raises(ExtractionError, match="legacy Word .doc"):
        extract(fake)


def test_docx_with_garbage_inside_the_zip_is_damaged(tmp_path: Path) -> None:
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("word/document.xml", "not xml at all <<<")
    with pytest.raises(ExtractionError, match="damaged DOCX"):
        extract(broken)


def test_utf16_text_with_bom_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes("Überschallströmung über Flügel".encode("utf-16"))
    assert extract(path).pages[0].text == "Überschallströmung über Flügel"


def test_latin1_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Le café près de l'aéroport était fermé, déjà à midi.".encode("latin-1"))
    assert extract(path).pages[0].text == "Le café près de l'aéroport était fermé, déjà à midi."


def test_binary_data_named_txt_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ExtractionError, match="not a text file"):
        extract(path)


def test_empty_file_gives_no_pages(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(b"")
    assert extract(path).pages == []


def test_html_keeps_text_and_drops_scripts(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<html><head><title>Flutter</title><script>var x = 'hidden';</script></head>"
                    "<body><h1>Flutter</h1><p>Aeroelastic flutter of panels.</p></body></html>")
    text = extract(path).pages[0].text
    assert "Aeroelastic flutter of panels." in text
    assert "hidden" not in text


def test_source_code_is_indexed_as_text(tmp_path: Path) -> None:
    path = tmp_path / "lift.py"
    path.write_text('def lift(rho, v, s, cl):\n    """Lift force."""\n    return 0.5 * rho * v * v * s * cl\n')
    assert "def lift(rho, v, s, cl):" in extract(path).pages[0].text


def test_long_text_is_capped_and_the_cap_reported(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 10_000)
    extracted = extract(path, Options(max_chars=1000))
    assert sum(len(p.text) for p in extracted.pages) <= 1000
    assert extracted.note == "text capped at 1,000 characters"


def test_unreadable_file_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="vanished"):
        extract(tmp_path / "gone.txt")


def test_unknown_suffix_is_rejected() -> None:
    with pytest.raises(ExtractionError, match="unsupported file type .xyz"):
        extract(Path("thing.xyz"))


def test_decode_prefers_utf8_over_legacy_guesses() -> None:
    assert decode_text("naïve façade".encode()) == "naïve façade"


def test_legacy_cyrillic_and_central_european_text_is_detected() -> None:
    russian = "Привет, как дела? Это тест кодировки."
    assert decode_text(russian.encode("cp1251")) == russian
    assert decode_text("Zażółć gęślą jaźń, to jest test.".encode("cp1250")) == "Zażółć gęślą jaźń, to jest test."
