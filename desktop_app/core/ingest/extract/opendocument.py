"""OpenDocument (LibreOffice): text .odt (one page), spreadsheets .ods (a sheet a page) and
presentations .odp (a slide a page, notes included), read with odfdo."""

from __future__ import annotations

import zipfile
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
from desktop_app.core.ingest.extract.office import table_row

KINDS = {".odt": "ODT", ".ods": "ODS", ".odp": "ODP"}


def extract_opendocument(path: Path, context: Context) -> Extracted:
    kind = KINDS[path.suffix.lower()]
    check_zip_container(path, kind)
    with zipfile.ZipFile(path) as archive:
        try:
            manifest = archive.read("META-INF/manifest.xml")
        except KeyError:
            manifest = b""
    if b"encryption-data" in manifest:
        raise ExtractionError(f"password-protected {kind}: open it with its password and save it without one")
    from odfdo import Document

    try:
        document = Document(str(path))
        body = document.body
        if kind == "ODS":
            pages = [Page(n, _sheet_text(table)) for n, table in enumerate(body.get_tables(), start=1)]
            unit = "sheet"
        elif kind == "ODP":
            pages = [Page(n, normalise_whitespace(slide.get_formatted_text({})))
                     for n, slide in enumerate(body.get_draw_pages(), start=1)]
            unit = "slide"
        else:
            pages, unit = [Page(1, normalise_whitespace(document.get_formatted_text()))], "page"
    except ExtractionError:
        raise
    except Exception as error:  # noqa: BLE001 - odfdo raises KeyError, ValueError, lxml errors...
        raise ExtractionError(f"damaged {kind} ({error.__class__.__name__}: {error})") from None
    return capped(pages, context.options.max_chars, unit=unit)


def _sheet_text(table) -> str:  # noqa: ANN001 - odfdo.Table
    rows = [table_row(values) for values in table.get_values()]
    rows = [r for r in rows if r]
    return "\n".join([f"Sheet: {table.name}", *rows]) if rows else ""
