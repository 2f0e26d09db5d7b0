"""Test collections in SMART format (Cranfield, CACM, ...) read without knowing their names.

A collection folder holds a documents file and a queries file in SMART format (``.I id``
starts a record, ``.T``/``.W``/... start fields) and a judgments file of four columns, either
TREC's ``query 0 doc grade`` or ``query doc 0 0`` (every listed pair relevant). Which file is
which is told from their contents, so a new collection dropped beside the others runs too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"

Qrels = dict[str, dict[str, int]]


@dataclass
class Collection:
    name: str
    documents: dict[str, str]
    queries: list[tuple[str, str]]
    qrels: Qrels

    @property
    def judged_queries(self) -> list[tuple[str, str]]:
        """The queries with at least one relevant document: the ones averaged over."""
        return [(qid, text) for qid, text in self.queries if self.qrels.get(qid)]


def parse_smart(text: str) -> list[tuple[str, dict[str, str]]]:
    """SMART records: ``.I id`` starts a record, ``.X`` lines start field X; returns (id, fields)."""
    records: list[tuple[str, dict[str, str]]] = []
    field = ""
    for line in text.splitlines():
        if line.startswith(".I "):
            records.append((line[3:].strip(), {}))
            field = ""
        elif len(line.rstrip()) == 2 and line.startswith(".") and records:
            field = line[1]
            records[-1][1][field] = ""
        elif field:
            records[-1][1][field] += line + "\n"
    return records


def one_line(text: str) -> str:
    """Collapse whitespace, newlines included."""
    return " ".join(text.split())


def document_text(fields: dict[str, str]) -> str:
    """Title, a blank line, abstract: the convention of the collections' reference figures."""
    return f"{one_line(fields.get('T', ''))}\n\n{fields.get('W', '').strip()}\n"


def read_qrels(path: Path) -> Qrels:
    """Query id -> {doc id: grade} for relevant documents; ids lose leading zeros ("01" -> "1")."""
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    trec = all(row[1] == "0" for row in rows)
    qrels: Qrels = {}
    for row in rows:
        query, doc, grade = (row[0], row[2], int(row[3])) if trec else (row[0], row[1], 1)
        if grade > 0:
            qrels.setdefault(str(int(query)), {})[str(int(doc))] = grade
    return qrels


def _is_qrels(path: Path) -> bool:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[:50]
    return bool(lines) and all(len(line.split()) == 4 and line.split()[0].isdigit() for line in lines if line.strip())


def load(folder: Path) -> Collection:
    """Read one collection folder: the SMART file with most records holds the documents."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.lower().startswith("readme")]
    qrels_files = [p for p in files if _is_qrels(p)]
    smart = {p: parse_smart(p.read_text(encoding="utf-8", errors="replace")) for p in files if p not in qrels_files}
    smart = {p: records for p, records in smart.items() if records}
    if len(qrels_files) != 1 or len(smart) != 2:
        raise SystemExit(f"collections: {folder} needs one judgments file and two SMART files (documents, queries)")
    docs_file, queries_file = sorted(smart, key=lambda p: len(smart[p]), reverse=True)
    qrels = read_qrels(qrels_files[0])
    records = smart[queries_file]
    # Judgments number queries by their .I ids, or (Cranfield) by position in the file.
    by_id = [(str(int(qid)), one_line(fields.get("W", ""))) for qid, fields in records if qid.isdigit()]
    by_order = [(str(n), one_line(fields.get("W", ""))) for n, (_, fields) in enumerate(records, start=1)]
    ids_match = len(by_id) == len(records) and set(qrels) <= {qid for qid, _ in by_id}
    queries = by_id if ids_match else by_order
    documents = {str(int(doc_id)): document_text(fields) for doc_id, fields in smart[docs_file]}
    return Collection(folder.name, documents, queries, qrels)


def discover(root: Path = DATASETS) -> list[Path]:
    """Every collection folder under ``root``."""
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def cranfield_abstracts() -> list[str]:
    """Cranfield's abstracts in file order, one line each (the PDF and pipeline benchmarks' text)."""
    records = parse_smart((DATASETS / "cranfield" / "cran.all.1400").read_text(encoding="utf-8", errors="replace"))
    return [one_line(fields.get("W", "")) for _, fields in records]
