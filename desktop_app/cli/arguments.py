"""The command line's grammar: every command's flags, and the settings, backend and search request
they name (built by the same core helpers the window and the HTTP API use)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app import __version__
from desktop_app.core import (
    API_HOST,
    API_KEY_VARIABLE,
    API_PORT,
    BACKENDS,
    DEFAULT_COLLECTION,
    DEFAULT_EXCLUDES,
    DEVICES,
    DTYPES,
    MODES,
    Backend,
    Settings,
    named_backend,
)

if TYPE_CHECKING:
    from desktop_app.core import SearchRequest

PROG = "desktop-search"


def _typed_text(value: str) -> str:
    """Text the user typed, as they typed it. Where the locale claims ASCII (``LC_ALL=C`` with Python's
    UTF-8 mode off), Python hands UTF-8 arguments over as escaped bytes; those are decoded again."""
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        return value  # not UTF-8 either: the query's own check names the odd character


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
    parser.add_argument("--quick", action="store_true", help="without a command: the quick search box (the running "
                        "app's, if there is one) instead of the window")
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
    search.add_argument("query", nargs="?", type=_typed_text, help='the query: words, "exact phrases", -excluded '
                        "words, a OR b, and filters ext:pdf in:FOLDER name:TEXT after:YYYY-MM-DD "
                        "before:YYYY-MM-DD (filters alone list the matching files, newest first)")
    add_common(search)
    search.add_argument("-k", type=int, default=10, help="number of files to return (default 10)")
    search.add_argument("--mode", default="hybrid", help=f"one of {', '.join(MODES)} (default hybrid)")
    search.add_argument("--weights", metavar="D,S,C[,K]", help="fusion weights for dense, sparse, ColBERT and "
                        "keyword (default: what the index's model is trusted with; see the README); a ColBERT "
                        "weight given here turns ColBERT on")
    search.add_argument("--ext", action="append", metavar="EXT", help="only files with this extension (repeatable)")
    search.add_argument("--in", dest="folder", action="append", metavar="FOLDER",
                        help="only files under this folder (repeatable)")
    search.add_argument("--name", action="append", type=_typed_text, metavar="TEXT",
                        help="only files whose name contains TEXT")
    search.add_argument("--after", metavar="YYYY-MM-DD", help="only files modified on or after this day")
    search.add_argument("--before", metavar="YYYY-MM-DD", help="only files modified before this day")
    search.add_argument("--all-copies", action="store_true", help="every copy of a document as its own hit "
                        "(by default copies are one hit that names the others; the same as dup:show)")
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


def flag_request(args: argparse.Namespace) -> SearchRequest:
    """The search the flags ask for (``--in`` folders from the cwd), built as the HTTP API builds its own."""
    from desktop_app.core import search_request

    folders = [str(Path(f).expanduser().absolute()) for f in args.folder or []]
    return search_request(args.query or "", args.k, args.mode, args.weights, args.colbert, args.fusion,
                          {"ext": args.ext, "in": folders, "name": args.name, "after": args.after,
                           "before": args.before, "dup": "show" if args.all_copies else None}, args.sort)
