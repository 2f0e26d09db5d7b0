"""Text-like formats: plain text and code, HTML, RTF and Jupyter notebooks."""

from __future__ import annotations

import json
from pathlib import Path

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract.base import Context, Extracted, Page, capped, normalise_whitespace

BINARY_PROBE_BYTES = 8192


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


def html_to_text(markup: str | bytes) -> str:
    """Visible text of an HTML or XHTML document: title first, no scripts or styles."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.get_text("\n", strip=True)
    text = body if not title or body.startswith(title) else f"{title}\n\n{body}"
    return normalise_whitespace(text)


def extract_plain(path: Path, context: Context) -> Extracted:
    data, cut = read_capped(path, context.options.max_chars)
    return capped([Page(1, normalise_whitespace(decode_text(data)))], context.options.max_chars, cut)


def extract_html(path: Path, context: Context) -> Extracted:
    data, cut = read_capped(path, context.options.max_chars)
    return capped([Page(1, html_to_text(decode_text(data)))], context.options.max_chars, cut)


def extract_rtf(path: Path, context: Context) -> Extracted:
    from striprtf.striprtf import rtf_to_text

    data, cut = read_capped(path, context.options.max_chars)
    if not data:
        return Extracted([])
    if not data.lstrip().startswith(b"{\\rtf"):
        raise ExtractionError("not an RTF document (it does not start with {\\rtf)")
    try:
        text = rtf_to_text(data.decode("latin-1"), errors="ignore")
    except (ValueError, IndexError, UnicodeError) as error:
        raise ExtractionError(f"damaged RTF ({error.__class__.__name__})") from None
    return capped([Page(1, normalise_whitespace(text))], context.options.max_chars, cut)


def extract_notebook(path: Path, context: Context) -> Extracted:
    """Markdown and code cells of a Jupyter notebook, in order; outputs (images, tables, logs) left out."""
    data, cut = read_capped(path, context.options.max_chars)
    if cut:
        raise ExtractionError(f"notebook larger than {context.options.max_chars:,} characters (outputs inside?)")
    if not data.strip():
        return Extracted([])
    try:
        notebook = json.loads(decode_text(data))
        cells = notebook["cells"] if isinstance(notebook, dict) and "cells" in notebook else \
            [c for w in notebook.get("worksheets", []) for c in w.get("cells", [])]
    except (ValueError, AttributeError, TypeError):
        raise ExtractionError("damaged notebook: not valid notebook JSON") from None
    parts = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("markdown", "code"):
            continue
        source = cell.get("source", cell.get("input", ""))
        parts.append("".join(source) if isinstance(source, list) else str(source))
    text = normalise_whitespace("\n\n".join(p for p in parts if p.strip()))
    return capped([Page(1, text)], context.options.max_chars)
