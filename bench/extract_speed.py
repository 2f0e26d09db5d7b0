"""Extraction speed: PDFium against pypdf on the same PDFs, OCR pages/s, and the worker pool.

Runs in one process, so the ratios compare like with like on this machine. PDFs are made
from Cranfield abstracts (36 and 117 pages, as in the issue's measurement) plus every PDF under
``--real`` (e.g. a checkout of py-pdf/sample-files); OCR runs on scanned pages made from the
same text. Prints one JSON object.

    python bench/extract_speed.py [--real FOLDER] [--ocr-pages 6] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from builders import make_pdf, make_scanned_pdf  # noqa: E402
from testsets import cranfield_abstracts  # noqa: E402

from desktop_app.core.errors import ExtractionError  # noqa: E402
from desktop_app.core.ingest.extract import Context, OcrLimits, OcrReader, Options, extract  # noqa: E402
from desktop_app.core.ingest.extract.pdf import extract_with_pypdf  # noqa: E402
from desktop_app.core.ingest.extract.pool import ExtractionPool  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def make_pdfs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    texts = [t.encode("latin-1", "replace").decode("latin-1") for t in cranfield_abstracts()]
    made = []
    for pages, offset in ((36, 0), (117, 40)):
        path = folder / f"cranfield-{pages}.pdf"
        if not path.exists():
            make_pdf(path, ["\n\n".join(texts[offset + 3 * i: offset + 3 * i + 3]) for i in range(pages)])
        made.append(path)
    return made


def timed(read, paths: list[Path], repeat: int) -> tuple[float, int, int]:  # noqa: ANN001
    """Best of ``repeat`` runs: (seconds, pages, characters); unreadable files are skipped."""
    best, pages, chars = float("inf"), 0, 0
    for _ in range(repeat):
        started, pages, chars = time.perf_counter(), 0, 0
        for path in paths:
            try:
                extracted = read(path)
            except ExtractionError:
                continue
            pages += len(extracted.pages)
            chars += sum(len(p.text) for p in extracted.pages)
        best = min(best, time.perf_counter() - started)
    return best, pages, chars


def pool_files_per_s(paths: list[Path], workers: int) -> float:
    pool = ExtractionPool(Options(), workers)
    try:
        for future in [pool.submit(str(p)) for p in paths[:workers]]:  # start the workers first
            future.exception()
        started = time.perf_counter()
        for future in [pool.submit(str(p)) for p in paths]:
            future.exception()
        return len(paths) / (time.perf_counter() - started)
    finally:
        pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, help="also time every PDF under this folder")
    parser.add_argument("--ocr-pages", type=int, default=6, help="scanned pages to OCR (0: skip OCR)")
    parser.add_argument("--workers", default="1,2", help="pool sizes to time, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "extract")
    args = parser.parse_args()
    sets = {"generated": make_pdfs(args.work)}
    if args.real:
        sets["real"] = sorted(p for p in args.real.rglob("*.pdf") if p.stat().st_size > 0)
    reader = OcrReader()
    no_ocr = Options(ocr=OcrLimits(enabled=False))
    result: dict[str, object] = {}
    for name, paths in sets.items():
        pdfium_s, pages, chars = timed(lambda p: extract(p, no_ocr), paths, args.repeat)
        pypdf_s, pypdf_pages, _ = timed(lambda p: extract_with_pypdf(p, Context(no_ocr, reader)), paths, args.repeat)
        result[name] = {
            "files": len(paths), "pages": pages, "chars": chars,
            "pdfium_pages_per_s": round(pages / pdfium_s, 1),
            "pypdf_pages_per_s": round(pypdf_pages / pypdf_s, 1),
            "pdfium_speedup": round((pages / pdfium_s) / (pypdf_pages / pypdf_s), 2),
        }
    if args.ocr_pages:
        text = cranfield_abstracts()
        lines = [[t[i:i + 60] for i in range(0, 600, 60)] for t in text[:args.ocr_pages]]
        scan = make_scanned_pdf(args.work / f"scan-{args.ocr_pages}.pdf", lines)
        extract(scan, progress=lambda _: None, reader=reader)  # loads the models
        ocr_s, ocr_pages, ocr_chars = timed(lambda p: extract(p, reader=reader), [scan], 1)
        result["ocr"] = {"pages": ocr_pages, "pages_per_s": round(ocr_pages / ocr_s, 2), "chars": ocr_chars}
    paths = sets["generated"] * 4
    result["pool_files_per_s"] = {w: round(pool_files_per_s(paths, int(w)), 2) for w in args.workers.split(",")}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
