"""E-mail: .eml files and .mbox mailboxes (the standard library's ``email`` and ``mailbox``) and
Outlook .msg files (extract-msg). A message is a unit: subject, from, to, date, then the body.

Attachments of supported types are read like files of their own and follow the body under an
``Attachment: name`` heading; the others are named in the file's note with the reason.
"""

from __future__ import annotations

import email
import mailbox
import tempfile
from email import policy
from email.message import EmailMessage
from pathlib import Path

from desktop_app.core.errors import ExtractionError
from desktop_app.core.ingest.extract.base import (
    OLE_MAGIC,
    Context,
    Extracted,
    Page,
    capped,
    first_line,
    normalise_whitespace,
)
from desktop_app.core.ingest.extract.text import decode_text, html_to_text

MAX_MAIL_BYTES = 200 * 2**20
HEADERS = ("Subject", "From", "To", "Date")


def extract_eml(path: Path, context: Context) -> Extracted:
    data = _read_mail(path)
    if not data.strip():
        return Extracted([], unit="message")
    message = email.message_from_bytes(data, policy=policy.default)
    if not any(message.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID", "Received")):
        raise ExtractionError("not an e-mail message (no From, To, Subject or Date header)")
    notes: list[str] = []
    return capped([Page(1, _message_text(message, context, notes))], context.options.max_chars,
                  unit="message", notes=_summarise(notes))


def extract_mbox(path: Path, context: Context) -> Extracted:
    """A message a page, in mailbox order."""
    with path.open("rb") as handle:
        head = handle.read(5)
    if not head:
        return Extracted([], unit="message")
    if head != b"From ":
        raise ExtractionError("not an mbox mailbox (it does not start with a 'From ' line)")
    box = mailbox.mbox(str(path), create=False)
    pages, notes, used = [], [], 0
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            if used > context.options.max_chars:
                break
            message = email.message_from_bytes(box.get_bytes(key), policy=policy.default)
            text = _message_text(message, context, notes, label=f"message {number}: ")
            pages.append(Page(number, text))
            used += len(text)
    finally:
        box.close()
    return capped(pages, context.options.max_chars, unit="message", notes=_summarise(notes))


def extract_msg(path: Path, context: Context) -> Extracted:
    """An Outlook message: headers, the plain body (else the HTML one) and its attachments."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head:
        return Extracted([], unit="message")
    if head != OLE_MAGIC:
        raise ExtractionError("not an Outlook .msg message (no OLE container)")
    import extract_msg as outlook

    notes: list[str] = []
    try:
        message = outlook.openMsg(str(path), delayAttachments=False)
    except Exception as error:  # noqa: BLE001 - extract-msg raises many kinds on broken files
        raise ExtractionError(f"damaged Outlook message ({first_line(error)})") from None
    try:
        fields = {"Subject": message.subject, "From": message.sender, "To": message.to, "Date": message.date}
        body = message.body or ""
        if not body.strip() and message.htmlBody:
            body = html_to_text(message.htmlBody)
        parts = [_header_block(fields), body]
        for attachment in message.attachments:
            name = getattr(attachment, "longFilename", None) or getattr(attachment, "shortFilename", None) \
                or "attachment"
            data = getattr(attachment, "data", None)
            if isinstance(data, bytes):
                parts.append(_attachment_text(name, data, context, notes))
            else:
                notes.append(f"{name} (embedded item, not read)")
    except ExtractionError:
        raise
    except Exception as error:  # noqa: BLE001 - a broken stream surfaces while reading properties
        raise ExtractionError(f"damaged Outlook message ({first_line(error)})") from None
    finally:
        message.close()
    text = normalise_whitespace("\n\n".join(p for p in parts if p))
    return capped([Page(1, text)], context.options.max_chars, unit="message", notes=_summarise(notes))


def _read_mail(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_MAIL_BYTES + 1)
    if len(data) > MAX_MAIL_BYTES:
        raise ExtractionError(f"e-mail larger than {MAX_MAIL_BYTES // 2**20} MB")
    return data


def _header_block(fields: dict[str, object]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in fields.items() if value)


def _message_text(message: EmailMessage, context: Context, notes: list[str], label: str = "") -> str:
    """Headers, body and readable attachments of one message; skipped attachments go to ``notes``."""
    parts = [_header_block({h: message.get(h) for h in HEADERS}), _body(message)]
    for part in message.iter_attachments():
        name = part.get_filename() or f"attachment.{part.get_content_subtype()}"
        if part.get_content_type() == "message/rfc822":
            inner = part.get_content()
            if isinstance(inner, EmailMessage):
                parts.append(f"Attached message:\n{_message_text(inner, context, notes, label)}")
            continue
        try:
            data = part.get_payload(decode=True) or b""
        except (ValueError, LookupError) as error:
            notes.append(f"{label}{name} ({first_line(error)})")
            continue
        parts.append(_attachment_text(name, data, context, notes, label))
    return normalise_whitespace("\n\n".join(p for p in parts if p))


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        content = decode_text(part.get_payload(decode=True) or b"")
    return html_to_text(content) if part.get_content_subtype() == "html" else str(content)


def _attachment_text(name: str, data: bytes, context: Context, notes: list[str], label: str = "") -> str:
    """An attachment read as a file of its own (in a private temporary folder), under a heading."""
    suffix = Path(name).suffix.lower()
    if context.extract_file is None:
        notes.append(f"{label}{name} (attachments are not read here)")
        return ""
    with tempfile.TemporaryDirectory(prefix="desktop-search-") as folder:
        copy = Path(folder) / f"attachment{suffix}"
        copy.write_bytes(data)
        try:
            extracted = context.extract_file(copy, context)
        except ExtractionError as error:
            notes.append(f"{label}{name} ({error})")
            return ""
    text = "\n".join(p.text for p in extracted.pages)
    return f"Attachment: {name}\n{text}" if text else ""


def _summarise(skipped: list[str]) -> list[str]:
    if not skipped:
        return []
    shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return [f"attachments not indexed: {shown}"]
