"""File -> pages of text. One extractor per format, chosen by suffix (the modules of this package).

Every failure is an :class:`ExtractionError` whose message names the reason in plain words;
the indexer records it and moves on to the next file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract.base import Context, Extracted, OcrLimits, Options, Page, Progress, no_progress
from desktop_app.core.ingest.extract.ebook import extract_epub
from desktop_app.core.ingest.extract.mail import extract_eml, extract_mbox, extract_msg
from desktop_app.core.ingest.extract.ocr import IMAGE_SUFFIXES, OcrReader, extract_image
from desktop_app.core.ingest.extract.office import extract_docx, extract_pptx, extract_xlsx
from desktop_app.core.ingest.extract.opendocument import KINDS as OPENDOCUMENT_SUFFIXES
from desktop_app.core.ingest.extract.opendocument import extract_opendocument
from desktop_app.core.ingest.extract.pdf import extract_pdf
from desktop_app.core.ingest.extract.text import (
    decode_text,
    extract_html,
    extract_notebook,
    extract_plain,
    extract_rtf,
)

__all__ = ["EXTRACTORS", "HEAVY_SUFFIXES", "PLAIN_SUFFIXES", "Context", "Extracted", "OcrLimits", "OcrReader",
           "Options", "Page", "decode_text", "extract", "is_supported"]

PLAIN_SUFFIXES = (  # noqa: SIM905 - one word per suffix reads better than a 60-item list
    ".txt .text .md .markdown .rst .csv .tsv .log .json .jsonl .yaml .yml .toml .ini .cfg .conf .tex .bib "
    ".py .pyi .js .mjs .ts .tsx .jsx .java .kt .scala .c .h .cc .cpp .hpp .cxx .cs .go .rs .rb .php .pl .lua "
    ".sh .bash .zsh .ps1 .bat .sql .r .swift .m .css .scss .xml .svg .org .adoc"
).split()

EXTRACTORS: dict[str, Callable[[Path, Context], Extracted]] = {
    **{suffix: extract_plain for suffix in PLAIN_SUFFIXES},
    ".html": extract_html,
    ".htm": extract_html,
    ".xhtml": extract_html,
    ".rtf": extract_rtf,
    ".ipynb": extract_notebook,
    ".pdf": extract_pdf,
    ".docx": extract_docx,
    ".pptx": extract_pptx,
    ".xlsx": extract_xlsx,
    **{suffix: extract_opendocument for suffix in OPENDOCUMENT_SUFFIXES},
    ".epub": extract_epub,
    ".eml": extract_eml,
    ".mbox": extract_mbox,
    ".msg": extract_msg,
    **{suffix: extract_image for suffix in IMAGE_SUFFIXES},
}
# Formats slow enough to read (rendering, OCR, big archives) that a run hands them to worker processes.
HEAVY_SUFFIXES = frozenset((".pdf", ".pptx", ".xlsx", ".epub", ".eml", ".mbox", ".msg",
                            *OPENDOCUMENT_SUFFIXES, *IMAGE_SUFFIXES))


def is_supported(path: Path, ocr: bool = True) -> bool:
    """Whether ``path``'s format can be read; images only when OCR is on (it is their only text)."""
    suffix = path.suffix.lower()
    return suffix in EXTRACTORS and (ocr or suffix not in IMAGE_SUFFIXES)


def extract(path: Path, options: Options | None = None, progress: Progress = no_progress,
            reader: OcrReader | None = None) -> Extracted:
    """Pages of ``path``; raises :class:`ExtractionError` with a readable reason.

    ``reader`` is this process's OCR engine (loaded on first use); pass one to reuse it across files.
    """
    context = Context(options or Options(), reader or OcrReader(), progress, _extract_file)
    return _extract_file(path, context)


def _extract_file(path: Path, context: Context) -> Extracted:
    extractor = EXTRACTORS.get(path.suffix.lower())
    if extractor is None:
        raise ExtractionError(f"unsupported file type {path.suffix or '(no suffix)'}")
    try:
        return extractor(path, context)
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
