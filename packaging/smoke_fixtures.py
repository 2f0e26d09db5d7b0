"""One small file per format family, each holding a word no other file has, for build.sh's smoke test.

    python packaging/smoke_fixtures.py write FOLDER > QUERIES     # the files; QUERIES: "family<TAB>word" lines
    python packaging/smoke_fixtures.py check FOLDER QUERIES HITS  # HITS: `search --queries QUERIES --json -k 1`

Runs with the venv's Python (it borrows the test builders in tests/builders.py, which need the dev
extra: fpdf2, XlsxWriter); the bundle indexes FOLDER in between and must find every file by its word.
The scan and the photo carry their word only as pixels, so finding them proves OCR works.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from builders import (  # noqa: E402 - tests/ is not a package
    make_docx,
    make_email,
    make_epub,
    make_notebook,
    make_odf,
    make_pdf,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
    text_image,
)

# family -> (file name, its word). Real, unrelated words: the lite model splits made-up words into
# shared sub-words, and OCR reads dictionary words reliably.
FAMILIES = {
    "text": ("notes.txt", "albatross"),
    "markdown": ("readme.md", "marzipan"),
    "html": ("page.html", "harpsichord"),
    "code": ("script.py", "quaternion"),
    "notebook": ("analysis.ipynb", "narwhal"),
    "rtf": ("letter.rtf", "rhubarb"),
    "pdf": ("report.pdf", "pelican"),
    "docx": ("memo.docx", "dandelion"),
    "pptx": ("deck.pptx", "porcupine"),
    "xlsx": ("budget.xlsx", "xylophone"),
    "odt": ("essay.odt", "ocelot"),
    "ods": ("sheet.ods", "sassafras"),
    "odp": ("slides.odp", "pangolin"),
    "epub": ("book.epub", "eucalyptus"),
    "eml": ("mail.eml", "elderberry"),
    "msg": ("outlook.msg", "mongoose"),
    "scan": ("scan.pdf", "tortoise"),
    "photo": ("photo.jpg", "flamingo"),
}


def sentence(word: str) -> str:
    return f"This file is part of the bundle smoke test; the word {word} appears in no other file."


def make_msg(path: Path, subject: str, body: str) -> Path:
    """A minimal Outlook .msg: an OLE container with the message class, subject, sender and plain body
    (extract-msg's own OLE writer; there is no builder for real .msg files in tests/builders.py)."""
    from extract_msg.ole_writer import OleWriter

    strings = {0x001A: "IPM.Note", 0x0037: subject, 0x0C1A: "Ada Lovelace", 0x1000: body}
    writer = OleWriter()
    # The top-level property stream: a 32-byte header (no recipients, no attachments), then one
    # 16-byte entry per property; a string's entry gives its size in bytes with the terminator.
    properties = bytes(32)
    for tag, text in strings.items():
        data = text.encode("utf-16-le")
        writer.addEntry(f"__substg1.0_{tag:04X}001F", data)
        properties += struct.pack("<IIII", (tag << 16) | 0x001F, 6, len(data) + 2, 0)
    writer.addEntry("__properties_version1.0", properties)
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    writer.write(str(path))
    return path


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for family, (name, word) in FAMILIES.items():
        path, text = folder / name, sentence(word)
        if family in ("text", "code"):
            path.write_text(text if family == "text" else f'"""{text}"""\n\nANSWER = 42\n', encoding="utf-8")
        elif family == "markdown":
            path.write_text(f"# Smoke test\n\n{text}\n", encoding="utf-8")
        elif family == "html":
            path.write_text(f"<html><head><title>Smoke</title></head><body><p>{text}</p></body></html>",
                            encoding="utf-8")
        elif family == "notebook":
            make_notebook(path, [("markdown", f"# Smoke\n{text}"), ("code", "total = 1 + 1")])
        elif family == "rtf":
            path.write_text(r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard " + text + r"\par}",
                            encoding="ascii")
        elif family == "pdf":
            make_pdf(path, [text])
        elif family == "docx":
            make_docx(path, [text])
        elif family == "pptx":
            make_pptx(path, [("Smoke", text, "")])
        elif family == "xlsx":
            make_xlsx(path, {"Sheet1": [["Item", "Note"], ["one", text]]})
        elif family in ("odt", "ods", "odp"):
            make_odf(path, {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}[family], [text])
        elif family == "epub":
            make_epub(path, [text])
        elif family == "eml":
            path.write_bytes(make_email("Smoke test", text))
        elif family == "msg":
            make_msg(path, "Smoke test", text)
        elif family == "scan":  # pictures of text only: no text layer, so only OCR can read it
            make_scanned_pdf(path, [["A scanned page.", f"The word {word} is here."]])
        elif family == "photo":
            text_image(["A photo of a page.", f"The word {word} is here."]).save(path, quality=90)
        print(f"{family}\t{word}")


def check(folder: Path, queries: Path, hits: Path) -> int:
    """Every family in QUERIES must have its own file as the first hit; name the ones that do not."""
    top = {}
    for line in hits.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            answer = json.loads(line)
            top[answer["id"]] = answer["hits"][0]["path"] if answer.get("hits") else None
    missed = []
    for line in queries.read_text(encoding="utf-8").splitlines():
        family, word = line.split("\t")
        expected = str(folder / FAMILIES[family][0])
        if top.get(family) == expected:
            print(f"  found  {family:9s} {word:12s} {FAMILIES[family][0]}")
        else:
            print(f"  MISSED {family:9s} {word:12s} {FAMILIES[family][0]} (first hit: {top.get(family)})")
            missed.append(family)
    if missed:
        print(f"not found: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(Path(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))
    else:
        sys.exit(f"usage: {sys.argv[0]} write FOLDER | check FOLDER QUERIES HITS")
