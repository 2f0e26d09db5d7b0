"""Every file type on the settings list, broken in the ways real disks break it: empty, truncated,
another format under its name, locked with a password. Each gives a readable reason, never a
traceback; and every supported suffix belongs to a family tested here."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import (
    encrypt_pdf,
    make_docx,
    make_email,
    make_epub,
    make_mbox,
    make_notebook,
    make_odf,
    make_pdf,
    make_pptx,
    make_xlsx,
    text_image,
)

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract import EXTRACTORS, PLAIN_SUFFIXES, extract

TEXT = "Hello world about ships."
GOOD: dict[str, Callable[[Path], object]] = {
    ".pdf": lambda p: make_pdf(p, [TEXT]),
    ".docx": lambda p: make_docx(p, [TEXT]),
    ".pptx": lambda p: make_pptx(p, [("Title", TEXT, "")]),
    ".xlsx": lambda p: make_xlsx(p, {"Sheet": [[TEXT]]}),
    ".odt": lambda p: make_odf(p, "text", [TEXT]),
    ".ods": lambda p: make_odf(p, "spreadsheet", [TEXT]),
    ".odp": lambda p: make_odf(p, "presentation", [TEXT]),
    ".epub": lambda p: make_epub(p, [TEXT]),
    ".rtf": lambda p: p.write_bytes(rb"{\rtf1\ansi " + TEXT.encode() + rb"\par}"),
    ".eml": lambda p: p.write_bytes(make_email("Ships", TEXT)),
    ".mbox": lambda p: make_mbox(p, [make_email("Ships", TEXT)]),
    ".ipynb": lambda p: make_notebook(p, [("markdown", TEXT)]),
    ".png": lambda p: text_image([TEXT]).save(p),
    ".jpg": lambda p: text_image([TEXT]).save(p),
    ".tiff": lambda p: text_image([TEXT]).save(p),
    ".webp": lambda p: text_image([TEXT]).save(p),
    ".bmp": lambda p: text_image([TEXT]).save(p),
    ".html": lambda p: p.write_text(f"<html><body><p>{TEXT}</p></body></html>"),
    ".txt": lambda p: p.write_text(TEXT),
}
# suffix -> the family member tested above
FAMILY = {".jpeg": ".jpg", ".tif": ".tiff", ".htm": ".html", ".xhtml": ".html", ".msg": ".msg",
          **{s: ".txt" for s in PLAIN_SUFFIXES}}
ZIP_FORMATS = (".docx", ".pptx", ".xlsx", ".odt", ".ods", ".odp", ".epub")
IMAGES = (".png", ".jpg", ".tiff", ".webp", ".bmp")


def readable(reason: str) -> None:
    assert reason and "Traceback" not in reason and len(reason) < 300 and "\n" not in reason, reason


def test_every_supported_suffix_is_covered_by_a_family_here() -> None:
    assert set(EXTRACTORS) <= set(GOOD) | set(FAMILY)


@pytest.mark.parametrize("suffix", sorted(GOOD))
def test_a_good_file_gives_its_text(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"good{suffix}"
    GOOD[suffix](path)
    text = " ".join(p.text for p in extract(path).pages).lower()
    assert "ships" in text


@pytest.mark.parametrize("suffix", sorted(GOOD))
def test_an_empty_file_is_empty_or_says_so(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    try:
        assert extract(path).pages == []
    except ExtractionError as error:
        readable(str(error))
        assert "empty" in str(error) or "not a readable" in str(error)


@pytest.mark.parametrize("suffix", sorted(GOOD))
def test_a_truncated_file_is_read_in_part_or_named_damaged(tmp_path: Path, suffix: str) -> None:
    good = tmp_path / f"good{suffix}"
    GOOD[suffix](good)
    data = good.read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 3])
    try:
        extract(path)  # text formats keep what is there
        assert suffix in (".rtf", ".eml", ".mbox", ".html", ".txt")
    except ExtractionError as error:
        readable(str(error))
        assert any(word in str(error) for word in ("damaged", "truncated", "not valid")), str(error)


@pytest.mark.parametrize("suffix", sorted(GOOD))
def test_another_format_under_this_name_says_what_is_wrong(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"wrong{suffix}"
    if suffix in IMAGES:
        path.write_bytes(b"%PDF-1.4 a PDF under an image name")
    else:
        text_image(["a photo"]).save(path, format="PNG")
    with pytest.raises(ExtractionError) as raised:
        extract(path)
    readable(str(raised.value))
    assert any(word in str(raised.value) for word in ("not a", "damaged", "not an")), str(raised.value)


def test_a_text_file_under_a_pdf_name_is_not_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("just words")
    with pytest.raises(ExtractionError, match=r"not a PDF \(no %PDF header"):
        extract(path)


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx"])
def test_a_password_protected_office_file_says_so(tmp_path: Path, suffix: str) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = tmp_path / f"plain{suffix}"
    GOOD[suffix](plain)
    locked = tmp_path / f"locked{suffix}"
    with plain.open("rb") as source, locked.open("wb") as target:
        OOXMLFile(source).encrypt("secret", target)
    with pytest.raises(ExtractionError, match=f"password-protected {suffix[1:].upper()}"):
        extract(locked)


def test_a_password_protected_pdf_says_so(tmp_path: Path) -> None:
    locked = encrypt_pdf(make_pdf(tmp_path / "plain.pdf", [TEXT]), tmp_path / "locked.pdf", "secret")
    with pytest.raises(ExtractionError, match="encrypted PDF: it needs a password"):
        extract(locked)


@pytest.mark.parametrize("suffix", [".odt", ".ods", ".odp"])
def test_a_password_protected_opendocument_says_so(tmp_path: Path, suffix: str) -> None:
    """LibreOffice keeps the zip readable and lists each encrypted part in the manifest."""
    locked = tmp_path / f"locked{suffix}"
    with zipfile.ZipFile(locked, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("META-INF/manifest.xml", '<manifest:manifest><manifest:file-entry manifest:full-path='
                         '"content.xml"><manifest:encryption-data manifest:checksum-type="SHA1"/>'
                         "</manifest:file-entry></manifest:manifest>")
        archive.writestr("content.xml", bytes(range(256)) * 8)
    with pytest.raises(ExtractionError, match=f"password-protected {suffix[1:].upper()}"):
        extract(locked)


def test_a_drm_protected_epub_says_so(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "book.epub", [TEXT])
    locked = tmp_path / "locked.epub"
    with zipfile.ZipFile(book) as source, zipfile.ZipFile(locked, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("META-INF/encryption.xml", '<encryption><EncryptedData><CipherReference '
                        'URI="EPUB/chap1.xhtml"/></EncryptedData></encryption>')
    with pytest.raises(ExtractionError, match="DRM-protected e-book"):
        extract(locked)


def test_outlook_msg_that_is_empty_cut_or_another_format_has_a_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.msg").write_bytes(b"")
    assert extract(tmp_path / "empty.msg").pages == []
    (tmp_path / "mime.msg").write_bytes(make_email("Ships", TEXT))
    with pytest.raises(ExtractionError, match="not an Outlook .msg message"):
        extract(tmp_path / "mime.msg")
    (tmp_path / "cut.msg").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(700))
    with pytest.raises(ExtractionError, match="damaged Outlook message") as raised:
        extract(tmp_path / "cut.msg")
    readable(str(raised.value))
