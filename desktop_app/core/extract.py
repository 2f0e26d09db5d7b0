"""File -> pages of text. One function per format, chosen by suffix.

Every failure is an :class:`ExtractionError` whose message names the reason in plain words
(encrypted, corrupt, not text, ...): the indexer records it and moves on to the next file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.errors import ExtractionError

BINARY_PROBE_BYTES = 8192
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class Page:
    """Text of one page (PDF) or of a whole document (every other format, page 1)."""

    number: int
    text: str


@dataclass(frozen=True)
class Extracted:
    pages: list[Page]
    note: str | None = None


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks; drop NULs and other control noise."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[^\S\n]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def decode_text(data: bytes) -> str:
    """Bytes -> str: BOMs first, then UTF-8, then the best legacy 8-bit guess. Rejects binary."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                raise ExtractionError(f"not valid {codec.upper()} text despite its byte-order mark") from None
    probe = data[:BINARY_PROBE_BYTES]
    if b"\x00" in probe:
        raise ExtractionError("not a text file (binary data: contains NUL bytes)")
    controls = sum(1 for b in probe if b < 32 and b not in (9, 10, 12, 13, 27))
    if probe and controls / len(probe) > 0.05:
        raise ExtractionError("not a text file (binary data: too many control characters)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return decode_legacy(data)


def decode_legacy(data: bytes) -> str:
    """8-bit text: Western (cp1252) when it reads as mostly-ASCII Latin prose, else a detected codec.

    Detectors guess badly on short Western text (é read as Baltic or Polish), while text in
    another script decoded as cp1252 is almost all non-ASCII letters or symbols: that tells them apart.
    """
    try:
        western = data.decode("cp1252")
        extra = [c for c in western if ord(c) > 127]
        letters = sum(1 for c in western if c.isalpha())
        if all(c.isalpha() for c in extra) and len(extra) <= 0.3 * max(letters, 1):
            return western
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1 << 20]).best()
    try:
        return data.decode(best.encoding if best is not None else "latin-1")
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


def read_capped(path: Path, max_chars: int) -> tuple[bytes, bool]:
    """Read at most about ``max_chars`` characters' worth of bytes; say whether it was cut."""
    limit = max_chars * 4
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return data[:limit], len(data) > limit


def extract_plain(path: Path, max_chars: int) -> Extracted:
    data, cut = read_capped(path, max_chars)
    text = decode_text(data)
    return capped([Page(1, normalise_whitespace(text))], max_chars, cut)


def extract_html(path: Path, max_chars: int) -> Extracted:
    from bs4 import BeautifulSoup

    data, cut = read_capped(path, max_chars)
    soup = BeautifulSoup(decode_text(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.get_text("\n", strip=True)
    text = body if not title or body.startswith(title) else f"{title}\n\n{body}"
    return capped([Page(1, normalise_whitespace(text))], max_chars, cut)


def extract_pdf(path: Path, max_chars: int) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("encrypted PDF: it needs a password")
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            text = normalise_whitespace(page.extract_text() or "")
            if text:
                pages.append(Page(number, text))
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        if "decrypt" in message.lower() or "encrypt" in message.lower():
            raise ExtractionError(f"encrypted PDF: {message}") from None
        raise ExtractionError(f"damaged PDF: {message}") from None
    except Exception as error:  # noqa: BLE001 - pypdf raises arbitrary errors on broken files
        raise ExtractionError(f"damaged PDF ({error.__class__.__name__}: {error})") from None
    if not pages:
        raise ExtractionError("PDF has no text layer (scanned images?)")
    return capped(pages, max_chars, False)


def extract_docx(path: Path, max_chars: int) -> Extracted:
    import zipfile

    with path.open("rb") as handle:
        head = handle.read(8)
    if head == OLE_MAGIC:
        raise ExtractionError("legacy Word .doc format (not .docx): open it in Word or LibreOffice and save as .docx")
    if not zipfile.is_zipfile(path):
        raise ExtractionError("damaged DOCX: not a zip archive")
    from docx import Document

    try:
        document = Document(str(path))
    except Exception as error:  # noqa: BLE001 - python-docx raises KeyError, ValueError, BadZipFile...
        raise ExtractionError(f"damaged DOCX ({error.__class__.__name__}: {error})") from None
    parts: list[str] = []
    for section in document.sections:
        parts.extend(p.text for p in section.header.paragraphs)
    parts.extend(block_texts(document))
    for section in document.sections:
        parts.extend(p.text for p in section.footer.paragraphs)
    text = normalise_whitespace("\n".join(p for p in parts if p.strip()))
    return capped([Page(1, text)], max_chars, False)


def block_texts(document: object) -> list[str]:
    """Paragraphs and tables in document order; a table row becomes ``cell | cell | cell``."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    texts = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            texts.append(block.text)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = []
                for cell in row.cells:
                    if cell.text.strip() and (not cells or cells[-1] != cell.text.strip()):
                        cells.append(cell.text.strip())
                texts.append(" | ".join(cells))
    return texts


def capped(pages: list[Page], max_chars: int, cut: bool) -> Extracted:
    """Keep at most ``max_chars`` characters in total and say so when text was dropped."""
    kept, used = [], 0
    for page in pages:
        if used + len(page.text) > max_chars:
            kept.append(Page(page.number, page.text[: max_chars - used]))
            cut = True
            break
        kept.append(page)
        used += len(page.text)
    kept = [p for p in kept if p.text]
    note = f"text capped at {max_chars:,} characters" if cut else None
    return Extracted(kept, note)


PLAIN_SUFFIXES = (  # noqa: SIM905 - one word per suffix reads better than a 60-item list
    ".txt .text .md .markdown .rst .csv .tsv .log .json .jsonl .yaml .yml .toml .ini .cfg .conf .tex .bib "
    ".py .pyi .js .mjs .ts .tsx .jsx .java .kt .scala .c .h .cc .cpp .hpp .cxx .cs .go .rs .rb .php .pl .lua "
    ".sh .bash .zsh .ps1 .bat .sql .r .swift .m .css .scss .xml .svg .org .adoc .ipynb"
).split()

EXTRACTORS: dict[str, Callable[[Path, int], Extracted]] = {
    **{suffix: extract_plain for suffix in PLAIN_SUFFIXES},
    ".html": extract_html,
    ".htm": extract_html,
    ".xhtml": extract_html,
    ".pdf": extract_pdf,
    ".docx": extract_docx,
}


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in EXTRACTORS


def extract(path: Path, max_chars: int = 5_000_000) -> Extracted:
    """Pages of ``path``; raises :class:`ExtractionError` with a readable reason."""
    extractor = EXTRACTORS.get(path.suffix.lower())
    if extractor is None:
        raise ExtractionError(f"unsupported file type {path.suffix or '(no suffix)'}")
    try:
        return extractor(path, max_chars)
    except PermissionError:
        raise ExtractionError("cannot read: permission denied") from None
    except FileNotFoundError:
        raise ExtractionError("file vanished before it could be read") from None
    except IsADirectoryError:
        raise ExtractionError("is a folder, not a file") from None
    except OSError as error:
        raise ExtractionError(f"cannot read: {error.strerror or error}") from None
    except MemoryError:
        raise ExtractionError("too large to extract in memory") from None
