"""EPUB e-books: a chapter (a document of the reading order) a page, read with EbookLib."""

from __future__ import annotations

import zipfile
from pathlib import Path

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract.base import Context, Extracted, Page, capped, check_zip_container
from desktop_app.core.ingest.extract.text import html_to_text


def extract_epub(path: Path, context: Context) -> Extracted:
    check_zip_container(path, "EPUB")
    with zipfile.ZipFile(path) as archive:
        if "META-INF/encryption.xml" in archive.namelist() and _encrypts_content(archive):
            raise ExtractionError("DRM-protected e-book: its chapters are encrypted")
    from ebooklib import ITEM_DOCUMENT, epub

    try:
        book = epub.read_epub(str(path), {"ignore_ncx": True})
        items = [book.get_item_with_id(idref) for idref, _ in book.spine]
        chapters = [item for item in items if item is not None and item.get_type() == ITEM_DOCUMENT]
        pages, used = [], 0
        for number, chapter in enumerate(chapters, start=1):
            if used > context.options.max_chars:
                break
            text = html_to_text(chapter.get_content())
            pages.append(Page(number, text))
            used += len(text)
    except Exception as error:  # noqa: BLE001 - EbookLib raises KeyError, EpubException, lxml errors...
        raise ExtractionError(f"damaged EPUB ({error.__class__.__name__}: {error})") from None
    return capped(pages, context.options.max_chars, unit="chapter")


def _encrypts_content(archive: zipfile.ZipFile) -> bool:
    """Fonts are often obfuscated (also listed in encryption.xml); only encrypted chapters are DRM."""
    listing = archive.read("META-INF/encryption.xml").decode("utf-8", "replace")
    return any(ext in listing for ext in (".xhtml", ".html", ".htm"))
