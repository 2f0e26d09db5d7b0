"""What the commands print: hits, watch events and progress, as text for people or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from desktop_app.cli.arguments import PROG
from desktop_app.core import DesktopSearchError, place_of

if TYPE_CHECKING:
    from desktop_app.core import IndexReport, Job, Progress, SearchResult


def print_job(out: TextIO, as_json: bool, job: Job) -> None:
    """What a watch job did: the catch-up and each update (a failure ends the command, saying why)."""
    if job.state == "failed":
        raise DesktopSearchError(job.error)
    if job.kind == "refresh":
        print_sync(out, as_json, "caught up", job.report, [])
    elif job.kind == "update":
        print_sync(out, as_json, f"{job.events} events", job.report, job.paths)


def print_sync(out: TextIO, as_json: bool, cause: str, report: IndexReport, paths: list[str]) -> None:
    text = (f"{cause}: {report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.failed} failed" + "".join(f"\n  failed: {f.path}: {f.reason}" for f in report.failures))
    print_line(out, as_json, {"cause": cause, "paths": paths, **report.to_dict()}, text)


def print_line(out: TextIO, as_json: bool, record: dict, text: str) -> None:
    print(json.dumps(record) if as_json else text, file=out, flush=True)


def progress_printer(err: TextIO, live: bool = True) -> Callable[[Progress], None]:
    """Progress on one rewritten line where ``err`` is a terminal; a wait for the writer lock always says so."""
    def show(progress: Progress) -> None:
        if progress.phase == "waiting":
            print(f"{PROG}: {progress.current} (Ctrl+C stops; --no-wait fails at once)", file=err, flush=True)
            return
        if not live:
            return
        if progress.phase in ("indexing", "encoding"):
            name = Path(progress.current).name[-30:] if progress.current else ""
            rate = f" · {progress.tokens_per_s:,.0f} tokens/s" if progress.phase == "encoding" else ""
            line = f"{progress.line()}{rate} {name}"
        else:
            line = progress.phase
        print("\r" + line[:110].ljust(110), end="", file=err, flush=True)

    return show


def format_result(result: SearchResult) -> str:
    lines = [f"{len(result.hits)} results for {result.query!r} ({result.mode}: {', '.join(result.channels)}; "
             f"{result.took_ms:.0f} ms)"]
    if result.note:
        lines.append(f"  ({result.note})")
    for rank, hit in enumerate(result.hits, start=1):
        lines.append(format_hit(rank, hit.to_dict()))
    return "\n".join(lines)


def format_record(record: dict) -> str:
    if "error" in record:
        return f"error: {record['error']}"
    return "\n".join(format_hit(rank, hit) for rank, hit in enumerate(record["hits"], start=1))


def format_hit(rank: int, hit: dict) -> str:
    channels = "  ".join(f"{name} {value:.3f}" for name, value in hit["scores"].items() if value is not None)
    terms = f"  [{', '.join(hit['terms'])}]" if hit["terms"] else "  (found by meaning: no query word in it)"
    snippet = " ".join(hit["snippet"].split())[:200]
    where = (place_of(hit["unit"], hit["page"]) + (", text read by OCR" if hit["ocr"] else "")
             + (f", {hit['meaning']}" if hit.get("meaning") else "")
             + (", without the exact phrase" if hit.get("without_phrase") else ""))
    listed = hit.get("duplicates", [])
    copies = "".join(f"\n    also in {other}" for other in listed)
    if hit.get("duplicates_total", 0) > len(listed):
        copies += f"\n    and in {hit['duplicates_total'] - len(listed):,} more places"
    return f"{rank:2d}. {hit['score']:.3f}  {hit['path']} ({where})\n    {channels}{terms}\n    {snippet}{copies}"
