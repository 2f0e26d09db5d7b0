"""PDF -> text per page: PDFium first (10-25x faster than pypdf), pypdf for files PDFium refuses,
and OCR for pages that are pictures of text (whole scans, or scanned pages in a digital PDF)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from desktop_app.core.errors import Cancelled, ExtractionError, OcrNeeded
from desktop_app.core.ingest.extract.base import Context, Extracted, Page, capped, first_line, normalise_whitespace
from desktop_app.core.ingest.extract.ocr import OCR_LONG_SIDE_PX, OcrBudget

SCAN_TEXT_CHARS = 32  # a page with less text than this and an image on it is read by OCR
RENDER_MAX_DPI = 300


def extract_pdf(path: Path, context: Context) -> Extracted:
    import pypdfium2 as pdfium

    with path.open("rb") as handle:
        head = handle.read(1024)
    if not head:
        raise ExtractionError("empty file (0 bytes)")
    if b"%PDF-" not in head:
        raise ExtractionError("not a PDF (no %PDF header: another format under a .pdf name?)")
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise ExtractionError("encrypted PDF: it needs a password") from None
        return extract_with_pypdf(path, context)
    try:
        return _read_pages(document, context)
    finally:
        document.close()


def _read_pages(document, context: Context) -> Extracted:  # noqa: ANN001 - pypdfium2.PdfDocument
    options = context.options
    budget = OcrBudget(options.ocr)
    pages, used, unread_scans, scans = [], 0, 0, 0
    total = len(document)
    for index in range(total):
        if used > options.max_chars:
            break
        page = document[index]
        try:
            text = _page_text(page)
            if len(text) < SCAN_TEXT_CHARS and _has_image(page):
                scans += 1
                if not options.ocr.enabled:
                    unread_scans += 1
                elif budget.allows(index + 1):
                    context.progress(f"OCR page {index + 1} of {total}")
                    read = normalise_whitespace(context.reader.read(_render(page, options.ocr.max_pixels)))
                    if read:
                        pages.append(Page(index + 1, f"{text}\n{read}".strip(), ocr=True))
                        used += len(read)
                    continue
        except Cancelled:
            raise
        except Exception as error:  # noqa: BLE001 - one unreadable page must not lose the rest
            raise ExtractionError(f"damaged PDF: page {index + 1} cannot be read ({first_line(error)})") from None
        finally:
            page.close()
        if text:
            pages.append(Page(index + 1, text))
            used += len(text)
    notes = [n for n in (budget.note(),) if n]
    if unread_scans:
        if not pages:
            raise OcrNeeded("PDF has no text layer (scanned images?) and OCR is turned off in Settings")
        notes.append(f"{unread_scans} scanned page(s) not read: OCR is turned off")
    if not pages and scans:
        notes.append(f"no text found: OCR read {budget.pages} page(s) of images")
    elif not pages and total:
        raise ExtractionError("PDF has no text: its pages hold neither text nor images")
    return replace(capped(pages, options.max_chars, notes=notes), ocr_matters=scans > 0)


def _page_text(page) -> str:  # noqa: ANN001 - pypdfium2.PdfPage
    textpage = page.get_textpage()
    try:
        return normalise_whitespace(textpage.get_text_range())
    finally:
        textpage.close()


def _has_image(page) -> bool:  # noqa: ANN001 - pypdfium2.PdfPage
    import pypdfium2.raw as pdfium_c

    return any(obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE for obj in page.get_objects())


def _render(page, max_pixels: int):  # noqa: ANN001, ANN202 - pypdfium2.PdfPage -> PIL.Image
    """The page as an image at a resolution OCR reads well, within the pixel cap."""
    width, height = page.get_size()  # points, 1/72 inch
    scale = min(RENDER_MAX_DPI / 72, OCR_LONG_SIDE_PX / max(width, height, 1),
                (max_pixels / max(width * height, 1)) ** 0.5)
    return page.render(scale=scale, grayscale=True).to_pil()


def extract_with_pypdf(path: Path, context: Context) -> Extracted:
    """The fallback for files PDFium refuses: pypdf repairs some damage PDFium does not."""
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
        message = first_line(error)
        if "decrypt" in message.lower() or "encrypt" in message.lower():
            raise ExtractionError(f"encrypted PDF: {message}") from None
        raise ExtractionError(f"damaged PDF: {message}") from None
    except Exception as error:  # noqa: BLE001 - pypdf raises arbitrary errors on broken files
        raise ExtractionError(f"damaged PDF ({error.__class__.__name__}: {error})") from None
    if not pages:
        raise ExtractionError("damaged PDF: no readable page")
    return capped(pages, context.options.max_chars)
