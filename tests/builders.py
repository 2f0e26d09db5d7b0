"""Builders of test documents in every supported format, made on the fly."""

from __future__ import annotations

from pathlib import Path


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF with one text page per entry (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None,
              header: str | None = None) -> Path:
    from docx import Document

    document = Document()
    if header:
        document.sections[0].header.paragraphs[0].text = header
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


def encrypt_pdf(source: Path, target: Path, password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(source)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    with target.open("wb") as handle:
        writer.write(handle)
    return target


def make_pptx(path: Path, slides: list[tuple[str, str, str]]) -> Path:
    """One slide per (title, body, speaker notes)."""
    from pptx import Presentation

    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]],
              formula: tuple[str, str, object] | None = None) -> Path:
    """Sheets of rows (XlsxWriter, which also stores a formula's cached value as Excel does)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
        if formula and name == next(iter(sheets)):
            cell, text, cached = formula
            sheet.write_formula(cell, text, None, cached)
    book.close()
    return path


def make_odf(path: Path, kind: str, parts: list[str]) -> Path:
    """``kind`` text (paragraphs), spreadsheet (a sheet per part, one cell) or presentation (a slide per part)."""
    from odfdo import Document, DrawPage, Frame, Paragraph, Table

    document = Document(kind)
    document.body.clear()
    for number, text in enumerate(parts, start=1):
        if kind == "text":
            document.body.append(Paragraph(text))
        elif kind == "spreadsheet":
            table = Table(f"Sheet{number}")
            table.set_value("A1", text)
            document.body.append(table)
        else:
            page = DrawPage(f"page{number}", name=f"Slide {number}")
            page.append(Frame.text_frame(text, size=("20cm", "5cm"), position=("1cm", "1cm")))
            document.body.append(page)
    document.save(str(path))
    return path


def make_epub(path: Path, chapters: list[str]) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("Test book")
    book.set_language("en")
    items = []
    for number, text in enumerate(chapters, start=1):
        chapter = epub.EpubHtml(title=f"Chapter {number}", file_name=f"chap{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>Chapter {number}</h1><p>{text}</p></body></html>"
        book.add_item(chapter)
        items.append(chapter)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def make_email(subject: str, body: str, attachments: dict[str, bytes] | None = None) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["To"] = "charles@example.org"
    message["Date"] = "Tue, 03 Mar 2026 10:00:00 +0000"
    message.set_content(body)
    for name, data in (attachments or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(message)


def make_mbox(path: Path, messages: list[bytes]) -> Path:
    import mailbox

    box = mailbox.mbox(str(path))
    for data in messages:
        box.add(data)
    box.flush()
    box.close()
    return path


def make_notebook(path: Path, cells: list[tuple[str, str]], output: str = "") -> Path:
    import json

    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
         **({"outputs": [{"output_type": "stream", "name": "stdout", "text": [output]}], "execution_count": 1}
            if kind == "code" else {})}
        for kind, source in cells]}
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def text_image(lines: list[str], size: tuple[int, int] = (1400, 900)):  # noqa: ANN201 - PIL.Image.Image
    """A white page with black lines of text, as a scanner or a phone camera would give it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    for number, line in enumerate(lines):
        draw.text((70, 70 + number * 80), line, fill="black", font=font)
    return image


def make_scanned_pdf(path: Path, pages: list[list[str]], text_pages: dict[int, str] | None = None) -> Path:
    """A PDF whose pages are pictures of text (no text layer), except ``text_pages`` (number -> text)."""
    import tempfile

    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    with tempfile.TemporaryDirectory() as folder:
        for number, lines in enumerate(pages, start=1):
            pdf.add_page()
            if text_pages and number in text_pages:
                pdf.multi_cell(0, 8, text_pages[number])
                continue
            picture = Path(folder) / f"page{number}.png"
            text_image(lines).save(picture)
            pdf.image(str(picture), x=10, y=10, w=190)
        pdf.output(str(path))
    return path
