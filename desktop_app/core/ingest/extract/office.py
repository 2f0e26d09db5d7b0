"""Office Open XML: Word (.docx), PowerPoint (.pptx, a slide a page) and Excel (.xlsx, a sheet a page)."""

from __future__ import annotations

from pathlib import Path

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract.base import (
    Context,
    Extracted,
    Page,
    capped,
    check_zip_container,
    normalise_whitespace,
)


def extract_docx(path: Path, context: Context) -> Extracted:
    check_zip_container(path, "DOCX")
    from docx import Document

    try:
        document = Document(str(path))
    except Exception as error:  # noqa: BLE001 - python-docx raises KeyError, ValueError, BadZipFile...
        raise ExtractionError(f"damaged DOCX ({error.__class__.__name__}: {error})") from None
    parts: list[str] = []
    for section in document.sections:
        parts.extend(p.text for p in section.header.paragraphs)
    parts.extend(_docx_blocks(document))
    for section in document.sections:
        parts.extend(p.text for p in section.footer.paragraphs)
    text = normalise_whitespace("\n".join(p for p in parts if p.strip()))
    return capped([Page(1, text)], context.options.max_chars)


def _docx_blocks(document) -> list[str]:  # noqa: ANN001 - docx.document.Document
    """Paragraphs and tables in document order; a table row becomes ``cell | cell | cell``."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    texts = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            texts.append(block.text)
        elif isinstance(block, Table):
            texts.extend(table_row([cell.text for cell in row.cells]) for row in block.rows)
    return texts


def table_row(cells: list[object]) -> str:
    """``a | b | c`` without empty cells or the repeats that merged cells produce."""
    kept: list[str] = []
    for cell in cells:
        text = "" if cell is None else str(cell).strip()
        if text and (not kept or kept[-1] != text):
            kept.append(text)
    return " | ".join(kept)


def extract_pptx(path: Path, context: Context) -> Extracted:
    """A slide a page: its title and text boxes, tables, grouped shapes, then the speaker notes."""
    check_zip_container(path, "PPTX")
    from pptx import Presentation

    try:
        slides = list(Presentation(str(path)).slides)
    except Exception as error:  # noqa: BLE001 - python-pptx raises KeyError, ValueError, BadZipFile...
        raise ExtractionError(f"damaged PPTX ({error.__class__.__name__}: {error})") from None
    pages = []
    for number, slide in enumerate(slides, start=1):
        parts = [text for shape in slide.shapes for text in _shape_texts(shape)]
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append(f"Notes: {notes.text}")
        pages.append(Page(number, normalise_whitespace("\n".join(parts))))
    return capped(pages, context.options.max_chars, unit="slide")


def _shape_texts(shape) -> list[str]:  # noqa: ANN001 - pptx.shapes.base.BaseShape
    if shape.shape_type is not None and hasattr(shape, "shapes"):  # a group
        return [text for inner in shape.shapes for text in _shape_texts(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return [table_row([cell.text for cell in row.cells]) for row in shape.table.rows]
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return [shape.text_frame.text]
    return []


def extract_xlsx(path: Path, context: Context) -> Extracted:
    """A sheet a page, named in its first line; a row a line; formulas give their last computed values."""
    check_zip_container(path, "XLSX")
    from openpyxl import load_workbook

    limit = context.options.max_chars
    try:
        workbook = load_workbook(str(path), read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - openpyxl raises KeyError, ValueError, BadZipFile...
        raise ExtractionError(f"damaged XLSX ({error.__class__.__name__}: {error})") from None
    pages, used, cut = [], 0, False
    try:
        for number, sheet in enumerate(workbook.worksheets, start=1):
            lines = [f"Sheet: {sheet.title}"]
            for row in sheet.iter_rows(values_only=True):
                line = table_row(list(row))
                if line:
                    lines.append(line)
                    used += len(line) + 1
                if used > limit:
                    cut = True
                    break
            pages.append(Page(number, "\n".join(lines) if len(lines) > 1 else ""))
            if cut:
                break
    except Exception as error:  # noqa: BLE001 - a broken sheet part surfaces while reading rows
        raise ExtractionError(f"damaged XLSX ({error.__class__.__name__}: {error})") from None
    finally:
        workbook.close()
    return capped(pages, limit, cut, unit="sheet")
