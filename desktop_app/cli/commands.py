"""One function per command: call the core, print what it did, turn its errors into one-line messages.

Exit codes: 0 success, 1 an error (message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from desktop_app.cli.arguments import PROG, backend_from, build_parser, flag_request, settings_from
from desktop_app.cli.output import format_record, format_result, print_job, print_line, progress_printer
from desktop_app.core import (
    DesktopSearchError,
    IndexMismatchError,
    Settings,
    UsageError,
)

if TYPE_CHECKING:
    from desktop_app.core import Engine, Job



def open_engine(settings: Settings, err: TextIO, writing: bool = False, **options: object) -> Engine:
    """The index with the model the core's one rule picks. A writer that would mix models is refused;
    a search uses the index's own model and says so."""
    from desktop_app.core import Engine

    engine = Engine.open(settings, load=False, on_notice=lambda m: print(f"{PROG}: {m}", file=err), **options)
    if writing:
        try:
            engine.refuse_mixing()
        except IndexMismatchError:
            engine.close()
            raise
    if engine.mismatch:
        print(f"{PROG}: {engine.mismatch}", file=err)
    return engine


def cmd_index(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core import normalise_root

    settings = settings_from(args)
    paths = [normalise_root(p) for p in args.paths]
    engine = open_engine(settings, err, writing=True, create=True, adopt=args.rebuild, backend=backend_from(args))
    try:
        live = err.isatty() and not args.json
        report = engine.indexer(f"{PROG} index", args.wait).run(paths, progress=progress_printer(err, live),
                                                                  rebuild=args.rebuild)
    finally:
        engine.close()
    if live:
        print(file=err)
    if args.json:
        print(json.dumps(report.to_dict()), file=out)
    else:
        print(f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
              f"{report.removed} removed, {report.failed} failed ({report.chunks_added} chunks, "
              f"{report.tokens} tokens, {report.seconds:.1f} s) with {report.model}", file=out)
        if report.chunks_shared:
            print(f"  {report.chunks_shared} chunks of exact copies took their twin's vectors (not encoded again)",
                  file=out)
        for failure in report.failures:
            print(f"  failed: {failure.path}: {failure.reason}", file=out)
    return 1 if report.cancelled else 0


def cmd_watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import queue
    import time

    from desktop_app.core import ChangeBatch, JobListener, JobQueue, LiveSync, device_of, normalise_root, to_text

    settings = settings_from(args)
    if args.stop_after is not None and args.stop_after <= 0:
        raise UsageError("--stop-after must be a positive number of seconds")
    paths = [normalise_root(p) for p in args.paths]
    engine = open_engine(settings, err, writing=True, create=bool(paths))
    happened: queue.Queue[Job | ChangeBatch] = queue.Queue()  # shown in this thread, in the order they came
    show = progress_printer(err, live=False)
    jobs = JobQueue(lambda: engine, f"{PROG} watch")
    jobs.listen(JobListener(progress=lambda job, progress: show(progress), finished=happened.put))
    live = LiveSync(settings, jobs, on_roots=happened.put, on_notice=lambda m: print(f"{PROG}: {m}", file=err),
                    wait=args.wait)
    deadline = None if args.stop_after is None else time.monotonic() + args.stop_after
    try:
        if not engine.roots() and not paths:
            raise UsageError("nothing to watch: name a folder to index first")
        # Watch first, then scan: a file changed during a long first scan arrives as an update after it.
        live.start({**engine.roots(), **{to_text(str(p)): device_of(str(p)) for p in paths}})
        if paths:
            jobs.submit([str(p) for p in paths], args.wait)
        catch_up = jobs.submit([], args.wait, kind="refresh")
        caught_up = False
        while not caught_up or deadline is None or time.monotonic() < deadline:
            try:
                event = happened.get(timeout=0.2)
            except queue.Empty:
                continue
            caught_up = caught_up or event is catch_up
            if isinstance(event, ChangeBatch):
                for root in event.offline:
                    print_line(out, args.json, {"offline": root}, f"offline (kept in the index): {root}")
            else:
                print_job(out, args.json, event)
    except KeyboardInterrupt:
        pass
    finally:
        live.stop()
        jobs.close()
        engine.close()
    return 0


def cmd_search(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    request = flag_request(args)
    if args.like is not None:
        return search_like(args, out, err)
    if args.query is None and args.queries is None and request.filters.active:
        args.query = ""  # filters alone: list the matching files
    if (args.query is None) == (args.queries is None):
        raise UsageError("give either a QUERY or --queries FILE")
    if args.queries is not None:
        lines = read_queries(args.queries)
    else:
        from desktop_app.core import validate_query

        validate_query(args.query, request.filters)
    settings = settings_from(args)
    backend = backend_from(args)
    engine = open_engine(settings, err, with_model=args.mode != "keyword", backend=backend, create=backend is not None)
    if engine.empty:
        engine.close()
        raise DesktopSearchError(f"the index at {settings.index_dir} is empty: run `{PROG} index PATH` first")
    try:
        if args.queries is None:
            result = engine.search(request.query, **request.options())
            print(json.dumps(result.to_dict()) if args.json else format_result(result), file=out)
            return 0
        for query_id, text in lines:
            try:
                result = engine.search(text, **request.options())
                record = {"id": query_id, "took_ms": result.took_ms, "hits": [h.to_dict() for h in result.hits]}
            except UsageError as error:
                record = {"id": query_id, "error": str(error), "hits": []}
            print(json.dumps(record) if args.json else f"# {query_id}\n{format_record(record)}", file=out)
        return 0
    finally:
        engine.close()


def search_like(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``search --like PATH[:PAGE]``: the passage's own stored vectors are the query."""
    if args.query is not None or args.queries is not None:
        raise UsageError("--like takes no QUERY or --queries")
    path, _, page = args.like.rpartition(":") if re.search(r":\d+$", args.like) else (args.like, "", "")
    engine = open_engine(settings_from(args), err, with_model=False)
    try:
        from desktop_app.core import to_text

        result = engine.more_like(to_text(str(Path(path).expanduser().absolute())), int(page) if page else None, args.k)
        print(json.dumps(result.to_dict()) if args.json else format_result(result), file=out)
    finally:
        engine.close()
    return 0


def cmd_files(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core import Engine

    engine = Engine.open(settings_from(args), with_model=False)
    try:
        files = engine.files(args.text or "", args.failed, limit=args.limit)
    finally:
        engine.close()
    if args.json:
        print(json.dumps({"files": files}), file=out)
        return 0
    for file in files:
        why = f": {file['reason']}" if file["reason"] else ""
        print(f"{file['state']:8} {file['chunks']:5} chunks {file['size']:>12,} B  {file['mtime'][:16]}  "
              f"{file['path']}{why}", file=out)
    return 0


def read_queries(path: Path) -> list[tuple[str, str]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read queries file {path}: {error}") from None
    queries = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            query_id, _, text = line.partition("\t") if "\t" in line else (str(number), "", line)
            queries.append((query_id.strip(), text.strip()))
    return queries


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core import Engine

    backend = backend_from(args)
    engine = Engine.open(settings_from(args), with_model=False, backend=backend, create=backend is not None)
    try:
        status = engine.status()
    finally:
        engine.close()
    if args.json:
        print(json.dumps(status), file=out)
        return 0
    print(f"index {status['index']}: {status['files']} files ({status['failed']} failed), {status['chunks']} chunks, "
          f"{status['disk_bytes'] / 1e6:.1f} MB; model {status['model']} (dim {status['dim']}); "
          f"backend {status['backend']}", file=out)
    if status["pending_chunks"]:
        print(f"  meaning pending for {status['pending_chunks']:,} chunks of {status['pending_files']:,} files "
              f"(searchable by their words now; `{PROG} index` or `{PROG} watch` encodes them)", file=out)
    if status["searches_only"]:
        print(f"  searches a collection indexed elsewhere: {status['vectors']} chunks", file=out)
    for root in status["roots"]:
        away = "" if root["online"] else " (offline: folder missing or drive unplugged; kept in the index)"
        print(f"  {root['path']}: {root['files']} files, {root['chunks']} chunks{away}", file=out)
    for failure in status["failures"]:
        print(f"  failed: {failure['path']}: {failure['reason']}", file=out)
    return 0


def cmd_remove(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core import Engine

    engine = Engine.open(settings_from(args), with_model=False)
    try:
        removed = engine.remove(args.paths, wait=args.wait,
                                on_wait=lambda text: print(f"{PROG}: {text}", file=err, flush=True))
    finally:
        engine.close()
    if removed == 0:
        raise DesktopSearchError(f"nothing removed: {', '.join(map(str, args.paths))} is not in the index")
    print(json.dumps({"removed": removed}) if args.json else f"removed {removed} files from the index", file=out)
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.api.app import ServeOptions, create_app
    from desktop_app.api.security import is_loopback
    from desktop_app.api.server import ApiServer, bind
    from desktop_app.api.token import api_token

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535 (got {args.port})")
    settings = settings_from(args)
    if not is_loopback(args.host):
        print(f"{PROG}: warning: serving on {args.host}: other computers can reach this server, and anyone with the "
              "token can search and index your documents", file=err)
    listening = bind(args.host, args.port)  # before the model loads: a busy port fails at once
    try:
        engine = open_engine(settings, err, create=True)
    except BaseException:
        listening.close()
        raise
    try:
        token = api_token(settings.index_dir)  # kept in the index folder, which exists now (never made elsewhere)
        # Answers from the first second: searches are ranked by words until the model is loaded.
        engine.load_in_background(lambda reason: print(f"{PROG}: the model could not be loaded: {reason}; "
                                                       "searches are answered by keyword", file=err, flush=True))
        options = ServeOptions(token.value, args.host, args.allow_origin, f"{PROG} serve")
        server = ApiServer(create_app(lambda: engine, options), listening)
        kept = "set by DESKTOP_SEARCH_API_TOKEN" if token.from_env else f"{token.value}  (kept in {token.source})"
        print(f"Desktop Search serves {settings.index_dir} with {engine.spec.display_name} (loading in the "
              f"background) at {server.url}\n"
              f"  search page {server.url}   JSON API {server.url}v1/   OpenAPI {server.url}docs\n"
              f"  token: {kept}\n  Ctrl+C stops it.", file=out, flush=True)
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn stopped gracefully on Ctrl+C, then passed the signal on
            pass
    finally:
        engine.close()
    print(f"{PROG}: stopped", file=err)
    return 0


COMMANDS = {"index": cmd_index, "search": cmd_search, "status": cmd_status, "watch": cmd_watch, "remove": cmd_remove,
            "files": cmd_files, "serve": cmd_serve}


def _printable(stream: TextIO) -> TextIO:
    """The stream, made to escape what its encoding cannot write (a file name with accents where the
    locale claims ASCII) instead of stopping the command with a traceback."""
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="backslashreplace")
    return stream


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's last flush has nowhere to fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no file behind stdout (a test's buffer)
        pass


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or _printable(sys.stdout)
    err = err or _printable(sys.stderr)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command is None:
        from desktop_app.gui.app import run

        return run([PROG, "--quick"]) if args.quick else run()
    from desktop_app.core import start_logging

    start_logging()
    try:
        code = COMMANDS[args.command](args, out, err)
        out.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # the reader went first (``| head``): end quietly, as Python's docs advise
        _silence_stdout()
        return 1
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=err)
        return 2
    except DesktopSearchError as error:
        print(f"{PROG}: error: {error}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
