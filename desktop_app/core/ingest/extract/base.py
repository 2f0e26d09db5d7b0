"""What every extractor shares: pages, limits, whitespace clean-up and the container checks.

Every failure is an :class:`ExtractionError` whose message names the reason in plain words
(encrypted, damaged, not this format, ...): the indexer records it and moves on to the next file.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from desktop_app.core.errors import ExtractionError

if TYPE_CHECKING:
    from PIL.Image import Image

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Told what an extractor is doing ("OCR page 3 of 12"); it may raise Cancelled to stop the file.
Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    """The default progress sink: extraction outside a run reports to no one."""


@dataclass(frozen=True)
class Page:
    """Text of one unit of a document: a PDF page, a slide, a sheet, a chapter, a message.

    ``ocr`` says the text was read from an image, so the result card can say so.
    """

    number: int
    text: str
    ocr: bool = False


@dataclass(frozen=True)
class Extracted:
    pages: list[Page]
    note: str | None = None
    unit: str = "page"  # what a page is in this format: page, slide, sheet, chapter, message
    ocr_matters: bool = False  # the text depends on the OCR setting (images, scanned pages)

    @property
    def ocr_pages(self) -> list[int]:
        return [p.number for p in self.pages if p.ocr]


def place_of(unit: str, page: int) -> str:
    """Where in a file, in its own terms: "page 3", "slide 3", "sheet 2", "message 14", "image"."""
    return unit if unit == "image" else f"{unit} {page}"


@dataclass(frozen=True)
class OcrLimits:
    """OCR on or off, and the caps that keep one huge scan from stalling a run."""

    enabled: bool = True
    max_pages: int = 200
    max_seconds: float = 300.0
    max_pixels: int = 40_000_000  # larger images are scaled down to this many pixels first


@dataclass(frozen=True)
class Options:
    """How much to read of one file; picklable, so a worker process gets the same rules."""

    max_chars: int = 5_000_000
    ocr: OcrLimits = field(default_factory=OcrLimits)


class ImageReader(Protocol):
    """Reads the text in a picture (``ocr.OcrReader``)."""

    def read(self, image: Image) -> str: ...


@dataclass
class Context:
    """What an extractor gets besides the path: the limits, where to report, the OCR reader of this
    process, and the way back to the format dispatcher (for e-mail attachments)."""

    options: Options
    reader: ImageReader
    progress: Progress = no_progress
    extract_file: Callable[[Path, Context], Extracted] | None = None


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks; drop NULs and other control noise."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[^\S\n]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def capped(pages: list[Page], max_chars: int, cut: bool = False, unit: str = "page",
           notes: list[str] | None = None) -> Extracted:
    """Keep at most ``max_chars`` characters in total and say so when text was dropped."""
    kept, used = [], 0
    for page in pages:
        if used + len(page.text) > max_chars:
            kept.append(Page(page.number, page.text[: max_chars - used], page.ocr))
            cut = True
            break
        kept.append(page)
        used += len(page.text)
    kept = [p for p in kept if p.text]
    all_notes = list(notes or [])
    if cut:
        all_notes.append(f"text capped at {max_chars:,} characters")
    return Extracted(kept, "; ".join(all_notes) or None, unit)


def first_line(error: BaseException) -> str:
    """An exception as one readable line: its message, else its class name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__


def check_zip_container(path: Path, kind: str) -> None:
    """Office Open XML, OpenDocument and EPUB are zip archives; say plainly when a file is not one.

    A password-protected Office file is an OLE container holding an ``EncryptionInfo`` stream;
    other OLE files are the legacy binary formats (.doc, .xls, .ppt) under a new name.
    """
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head:
        raise ExtractionError("empty file (0 bytes)")
    if head == OLE_MAGIC:
        if _ole_encrypted(path):
            raise ExtractionError(f"password-protected {kind}: open it with its password and save it without one")
        legacy = {"DOCX": "Word .doc", "XLSX": "Excel .xls", "PPTX": "PowerPoint .ppt"}.get(kind, "binary")
        raise ExtractionError(f"legacy {legacy} format (not {kind}): open it and save it as {kind}")
    if not zipfile.is_zipfile(path):
        raise ExtractionError(f"damaged {kind}: not a zip archive (truncated, or another format under this name)")


def _ole_encrypted(path: Path) -> bool:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return ole.exists("EncryptionInfo") or ole.exists("encryptioninfo")
    except Exception:  # noqa: BLE001 - olefile raises ValueError, OSError... on a damaged container
        return False
