"""Command-line front-end: parse arguments, call the core, turn its errors into one-line messages.

Exit codes: 0 success, 1 an error (message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from desktop_app import __version__
from desktop_app.core.backends.choice import API_KEY_VARIABLE, BACKENDS, DEFAULT_COLLECTION, Backend
from desktop_app.core.backends.choice import named as named_backend
from desktop_app.core.config import API_HOST, API_PORT, DEFAULT_EXCLUDES, DEVICES, DTYPES, MODES, Settings
from desktop_app.core.errors import DesktopSearchError, IndexMismatchError, UsageError
from desktop_app.core.ingest.extract.base import place_of

if TYPE_CHECKING:
    from desktop_app.core.engine import Engine
    from desktop_app.core.search.request import SearchRequest

PROG = "desktop-search"


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", metavar="DIR", type=Path, help="index folder (default: $DESKTOP_SEARCH_HOME "
                        "or the platform's app-data folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def add_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-wait", dest="wait", action="store_false", help="fail at once when another process "
                        "is writing to the index (default: wait for it, saying who holds it)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, help="where to run the model (default: auto = CUDA if present)")
    parser.add_argument("--dtype", choices=DTYPES, help="model precision or CPU runtime (default: auto = fp16 on "
                        "CUDA; on a CPU what the start-up probe measured fastest at the fp32 model's fidelity)")


def add_ocr_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-ocr", dest="ocr", action="store_false", default=None,
                        help="do not read scanned pages and images with OCR (images are then left out, and "
                        "scanned PDFs fail with that reason)")


def add_backend_options(parser: argparse.ArgumentParser, writing: bool = False) -> None:
    """Where the search side lives; recorded in the index folder, so later commands need no flags."""
    parser.add_argument("--backend", choices=BACKENDS, help="where the search side lives: local (default) or qdrant "
                        "(a Qdrant cluster or an embedded folder); recorded in the index folder for later commands")
    parser.add_argument("--qdrant-location", metavar="LOC", help="http(s)://HOST:PORT of a Qdrant server or "
                        "cluster, or a folder for embedded mode (one process at a time)")
    parser.add_argument("--qdrant-collection", metavar="NAME", help=f"collection name (default {DEFAULT_COLLECTION})")
    parser.add_argument("--qdrant-api-key", metavar="KEY", help="API key for the Qdrant server (or "
                        f"${API_KEY_VARIABLE}, which is never written down)")
    if writing:
        parser.add_argument("--qdrant-colbert", action="store_true", help="store ColBERT multi-vectors in Qdrant "
                            "(about 2 KB per token) so hybrid search re-ranks with them without re-encoding")
        parser.add_argument("--qdrant-shards", type=int, metavar="N", help="shards of a new collection on a "
                            "cluster (default: the server's)")
        parser.add_argument("--qdrant-replicas", type=int, metavar="N", help="copies of each shard on a cluster, "
                            "e.g. 2 to survive the loss of a node (default: the server's)")


def backend_from(args: argparse.Namespace) -> Backend | None:
    return named_backend(args.backend, args.qdrant_location, args.qdrant_collection, args.qdrant_api_key,
                         getattr(args, "qdrant_colbert", False), getattr(args, "qdrant_shards", None),
                         getattr(args, "qdrant_replicas", None))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Search your own documents by meaning, offline. Without a command it opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    index = commands.add_parser("index", help="index folders or files (only what changed since last time)",
                                description="Index folders or files; unchanged files are skipped.")
    index.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="folder or file to index")
    add_common(index)
    index.add_argument("--model", help="model id (e.g. BAAI/bge-m3) or model folder; default: the index's model, "
                       "$DESKTOP_SEARCH_MODEL, cached BAAI/bge-m3, else the lite model")
    add_model_options(index)
    index.add_argument("--chunk-tokens", type=int, help="tokens per chunk (default 512, capped by the model)")
    index.add_argument("--overlap", type=int, help="tokens shared by neighbouring chunks (default 64)")
    index.add_argument("--rebuild", action="store_true", help="drop the index and re-encode everything "
                       "(needed to switch models)")
    index.add_argument("--exclude", action="append", metavar="PATTERN", help="leave out what this .gitignore-style "
                       "pattern matches (repeatable; adds to the default patterns), e.g. 'build/' or '*.log'")
    index.add_argument("--no-gitignore", dest="gitignore", action="store_false",
                       help="index files that .gitignore files inside the folders leave out")
    add_ocr_option(index)
    add_backend_options(index, writing=True)
    add_wait_option(index)

    search = commands.add_parser("search", help="search the index", description="Search the index by meaning "
                                 "and keywords; hits are grouped per file.")
    search.add_argument("query", nargs="?", help='the query: words, "exact phrases", -excluded words, a OR b, and '
                        "filters ext:pdf in:FOLDER name:TEXT after:YYYY-MM-DD before:YYYY-MM-DD (filters alone list "
                        "the matching files, newest first)")
    add_common(search)
    search.add_argument("-k", type=int, default=10, help="number of files to return (default 10)")
    search.add_argument("--mode", default="hybrid", help=f"one of {', '.join(MODES)} (default hybrid)")
    search.add_argument("--weights", metavar="D,S,C[,K]", help="fusion weights for dense, sparse, ColBERT and "
                        "keyword (default: what the index's model is trusted with; see the README); a ColBERT "
                        "weight given here turns ColBERT on")
    search.add_argument("--ext", action="append", metavar="EXT", help="only files with this extension (repeatable)")
    search.add_argument("--in", dest="folder", action="append", metavar="FOLDER",
                        help="only files under this folder (repeatable)")
    search.add_argument("--name", action="append", metavar="TEXT", help="only files whose name contains TEXT")
    search.add_argument("--after", metavar="YYYY-MM-DD", help="only files modified on or after this day")
    search.add_argument("--before", metavar="YYYY-MM-DD", help="only files modified before this day")
    search.add_argument("--sort", default="relevance", choices=("relevance", "date", "name"),
                        help="order of the hits (default relevance)")
    search.add_argument("--colbert", action=argparse.BooleanOptionalAction, default=None,
                        help="re-rank with ColBERT in hybrid mode (default: only on CUDA)")
    search.add_argument("--fusion", choices=("max", "raw"), default="max", help="how channel scores combine: "
                        "max = each channel divided by its best score first (default), raw = BGE-M3's weighted sum")
    search.add_argument("--like", metavar="PATH[:PAGE]", help="more like this: files similar to an indexed file "
                        "(its first passage, or the first on PAGE)")
    search.add_argument("--queries", type=Path, metavar="FILE", help="batch mode: one 'id<TAB>query' per line; "
                        "prints one JSON object per line with --json")
    add_model_options(search)
    add_backend_options(search)

    status = commands.add_parser("status", help="show what the index holds", description="Show the index's "
                                 "files, chunks, model and size.")
    add_common(status)
    add_backend_options(status)

    watch = commands.add_parser("watch", help="keep the index in sync with its folders until interrupted",
                                description="Bring every indexed folder up to date, then re-index files as they "
                                "are created, changed, renamed or deleted (Ctrl+C stops). Unplugged folders are "
                                "kept in the index and caught up when they return.")
    watch.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="folders to add before watching")
    add_common(watch)
    add_model_options(watch)
    watch.add_argument("--stop-after", type=float, metavar="SECONDS", help="stop after this long (for scripts)")
    add_ocr_option(watch)
    add_wait_option(watch)

    files = commands.add_parser("files", help="list the indexed files", description="List the indexed files with "
                                "their size, date, chunk count and state (indexed, failed with the reason, offline).")
    files.add_argument("text", nargs="?", help="only files whose path contains this text (case-insensitive)")
    files.add_argument("--failed", action="store_true", help="only files that failed, with the reason")
    files.add_argument("--limit", type=int, default=100_000, help="at most this many (default 100000)")
    add_common(files)

    serve = commands.add_parser(
        "serve", help="answer searches over HTTP on this computer: a JSON API and a search page",
        description="Serve the index over HTTP: the search page at /, the JSON API under /v1 (OpenAPI at /docs). "
        "Every /v1 request needs 'Authorization: Bearer TOKEN'; the token is printed at start "
        "($DESKTOP_SEARCH_API_TOKEN, else the index folder's api-token file, made once).")
    serve.add_argument("--index", metavar="DIR", type=Path, help="index folder (default: $DESKTOP_SEARCH_HOME "
                       "or the platform's app-data folder); created when missing, for POST /v1/index")
    serve.add_argument("--host", default=API_HOST, help=f"address to listen on (default {API_HOST}: this computer "
                       "only; another address lets other computers in, and says so)")
    serve.add_argument("--port", type=int, default=API_PORT, help=f"port (default {API_PORT}; 0: any free port)")
    serve.add_argument("--allow-origin", metavar="ORIGIN", help="let web pages from this origin (e.g. "
                       "http://localhost:3000) call the API from a browser (CORS); none by default")
    add_model_options(serve)

    remove = commands.add_parser("remove", help="remove folders or files from the index",
                                 description="Remove folders or files (and their chunks) from the index.")
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="folder or file to forget")
    add_common(remove)
    add_wait_option(remove)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        index_dir=getattr(args, "index", None),
        model=getattr(args, "model", None),
        device=getattr(args, "device", None),
        dtype=getattr(args, "dtype", None),
        chunk_tokens=getattr(args, "chunk_tokens", None),
        chunk_overlap=getattr(args, "overlap", None),
        exclude_patterns=(DEFAULT_EXCLUDES + tuple(args.exclude)) if getattr(args, "exclude", None) else None,
        honour_gitignore=getattr(args, "gitignore", None),
        ocr=getattr(args, "ocr", None),
    )


def open_engine(settings: Settings, err: TextIO, writing: bool = False, **options: object) -> Engine:
    """The index with the model the core's one rule picks. A writer that would mix models is refused;
    a search uses the index's own model and says so."""
    from desktop_app.core.engine import Engine

    engine = Engine.open(settings, load=False, on_notice=lambda m: print(f"{PROG}: {m}", file=err), **options)
    if engine.mismatch and writing:
        wanted = engine.choice.wanted.name
        engine.close()
        raise IndexMismatchError(
            f"the index at {settings.index_dir} was built with model {engine.spec.name}, not {wanted}: re-index "
            f"with `{PROG} index --rebuild --model {wanted} PATH...` or pick another --index folder")
    if engine.mismatch:
        print(f"{PROG}: {engine.mismatch}", file=err)
    return engine


def cmd_index(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core.ingest.scan import normalise_root

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
        for failure in report.failures:
            print(f"  failed: {failure.path}: {failure.reason}", file=out)
    return 1 if report.cancelled else 0


def cmd_watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import queue
    import time

    from desktop_app.core.ingest.live_sync import FolderWatcher, RootsReader, device_of
    from desktop_app.core.ingest.progress import RunControl
    from desktop_app.core.ingest.scan import normalise_root
    from desktop_app.core.paths import to_text

    settings = settings_from(args)
    if args.stop_after is not None and args.stop_after <= 0:
        raise UsageError("--stop-after must be a positive number of seconds")
    paths = [normalise_root(p) for p in args.paths]
    engine = open_engine(settings, err, writing=True, create=bool(paths))
    batches: queue.Queue = queue.Queue()
    control = RunControl()

    def arrived(batch: object) -> None:
        batches.put(batch)
        control.make_way()  # stage 2 of the run in progress stops after its batch; this batch's words go first

    watcher = FolderWatcher(settings, arrived, on_notice=lambda m: print(f"{PROG}: {m}", file=err),
                            roots_source=RootsReader(settings.index_dir))
    deadline = None if args.stop_after is None else time.monotonic() + args.stop_after
    try:
        indexer = engine.indexer(f"{PROG} watch", args.wait)
        show = progress_printer(err, live=False)
        if not engine.roots() and not paths:
            raise UsageError("nothing to watch: name a folder to index first")
        # Watch first, then scan: a file changed during a long first scan arrives as a batch after it.
        watcher.start({**engine.roots(), **{to_text(str(p)): device_of(str(p)) for p in paths}})
        if paths:
            indexer.run(paths, progress=show, control=control)
        print_sync(out, args.json, "caught up", indexer.refresh(progress=show, control=control), [])
        while deadline is None or time.monotonic() < deadline:
            try:
                batch = batches.get(timeout=0.2)
            except queue.Empty:
                continue
            for root in batch.offline:
                print_line(out, args.json, {"offline": root}, f"offline (kept in the index): {root}")
            control = RunControl()  # before looking at the queue: a batch arriving now tells this run
            if not batches.empty():
                control.make_way()
            report = indexer.update(batch.paths, progress=show, control=control)  # also resumes stage 2
            if batch.paths:
                print_sync(out, args.json, f"{batch.events} events", report, batch.paths)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        engine.close()
    return 0


def print_sync(out: TextIO, as_json: bool, cause: str, report: object, paths: list[str]) -> None:
    text = (f"{cause}: {report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.failed} failed" + "".join(f"\n  failed: {f.path}: {f.reason}" for f in report.failures))
    print_line(out, as_json, {"cause": cause, "paths": paths, **report.to_dict()}, text)


def print_line(out: TextIO, as_json: bool, record: dict, text: str) -> None:
    print(json.dumps(record) if as_json else text, file=out, flush=True)


def progress_printer(err: TextIO, live: bool = True) -> Callable[[object], None]:
    """Progress on one rewritten line where ``err`` is a terminal; a wait for the writer lock always says so."""
    def show(progress: object) -> None:
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


def flag_request(args: argparse.Namespace) -> SearchRequest:
    """The search the flags ask for (``--in`` folders from the cwd), built as the HTTP API builds its own."""
    from desktop_app.core.search.request import search_request

    folders = [str(Path(f).expanduser().absolute()) for f in args.folder or []]
    return search_request(args.query or "", args.k, args.mode, args.weights, args.colbert, args.fusion,
                          {"ext": args.ext, "in": folders, "name": args.name, "after": args.after,
                           "before": args.before}, args.sort)


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
        from desktop_app.core.search.searcher import validate_query

        validate_query(args.query, request.filters)
    settings = settings_from(args)
    backend = backend_from(args)
    engine = open_engine(settings, err, with_model=args.mode != "keyword", backend=backend, create=backend is not None)
    if engine.index.model_info is None:
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
        from desktop_app.core.paths import to_text

        result = engine.more_like(to_text(str(Path(path).expanduser().absolute())), int(page) if page else None, args.k)
        print(json.dumps(result.to_dict()) if args.json else format_result(result), file=out)
    finally:
        engine.close()
    return 0


def cmd_files(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core.engine import Engine

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


def format_result(result: object) -> str:
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
    return f"{rank:2d}. {hit['score']:.3f}  {hit['path']} ({where})\n    {channels}{terms}\n    {snippet}"


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from desktop_app.core.engine import Engine

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
    from desktop_app.core.engine import Engine

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
    token = api_token(settings.index_dir)
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


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command is None:
        from desktop_app.gui.app import run

        return run()
    from desktop_app.core.logfile import start_logging

    start_logging()
    try:
        return COMMANDS[args.command](args, out, err)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=err)
        return 2
    except DesktopSearchError as error:
        print(f"{PROG}: error: {error}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
