"""The FastAPI app: ``/v1`` routes over ``core.engine``, the guards around them, and the search page.

FastAPI runs these plain ``def`` routes in its thread pool. They share one engine and need no lock
of their own: the engine takes its reading connection in turn (see
:class:`~desktop_app.core.engine.Engine`), and indexing runs in a :class:`JobQueue`'s one worker
thread under the index's writer lock (the window's own queue, when the window serves). ``engine_of``
(kept in ``app.state``) is asked on every request, so the window can hand over a new engine after a
model switch (meanwhile requests get 503).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi import Path as InPath
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from desktop_app import __version__
from desktop_app.api.errors import BodyLimitMiddleware, InFlightLimitMiddleware, add_error_handlers
from desktop_app.api.opening import open_indexed
from desktop_app.api.schemas import (
    MAX_COLBERT_CHARS,
    MAX_JOB_ID_CHARS,
    MAX_K,
    MAX_OFFSET,
    MAX_PAGE,
    MAX_PATH_CHARS,
    EmbedBody,
    HighlightBody,
    IndexBody,
    Mode,
    OpenBody,
    SearchBody,
)
from desktop_app.api.security import BearerTokenMiddleware, HostGuardMiddleware, allowed_hosts, is_loopback
from desktop_app.core import (
    MAX_QUERY_CHARS,
    Engine,
    IndexClosedError,
    IndexMismatchError,
    Job,
    JobQueue,
    UsageError,
    highlight_segments,
    search_request,
)

# Beside the window's style sheet and icons; the PyInstaller bundle carries resources/ whole.
WEB = Path(__file__).resolve().parents[2] / "resources" / "web"
# Requests answered or waiting at once before a 503 with Retry-After: searches are answered in turn
# in tens of milliseconds (lite model, 2 cores), so 64 waiting is about a second and a half.
MAX_IN_FLIGHT = 64
# The page loads only its own files: no external script, style, font or frame, even if a snippet held markup.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
DESCRIPTION = ("Search the documents indexed by Desktop Search. Every /v1 request needs the header "
               "`Authorization: Bearer TOKEN` (printed by `desktop-search serve` at start).")


@dataclass(frozen=True)
class ServeOptions:
    """How the server lets clients in: the token, the address it is bound to, the one web origin allowed."""

    token: str
    host: str = "127.0.0.1"
    allow_origin: str | None = None
    purpose: str = "desktop-search serve"  # who holds the writer lock while an API job indexes
    max_in_flight: int = MAX_IN_FLIGHT  # requests answered or waiting at once; more get 503 + Retry-After


def create_app(engine_of: Callable[[], Engine | None], options: ServeOptions, jobs: JobQueue | None = None) -> FastAPI:
    """The whole server: routes, error handlers, the page, and the guards (outermost first: Host, CORS, token,
    body size).

    ``jobs`` is a front-end's own queue (the window's: its jobs and the API's then run in one line, shown
    in the window, and the window closes it); without one the app keeps its own and closes it when it stops.
    """
    own_jobs = jobs is None
    jobs = JobQueue(engine_of, options.purpose) if jobs is None else jobs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_jobs:
            await run_in_threadpool(jobs.close)

    app = FastAPI(title="Desktop Search", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.state.engine_of, app.state.jobs = engine_of, jobs
    add_error_handlers(app)
    app.include_router(_routes())
    _add_page(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(BearerTokenMiddleware, token=options.token)
    if options.allow_origin:
        app.add_middleware(CORSMiddleware, allow_origins=[options.allow_origin],
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(HostGuardMiddleware, allowed=allowed_hosts(options.host))
    app.add_middleware(InFlightLimitMiddleware, limit=options.max_in_flight)  # outermost: refusing costs least
    _document_bearer(app)
    return app


def _current_engine(request: Request) -> Engine:
    engine = request.app.state.engine_of()
    if engine is None:
        raise IndexClosedError("the index is being opened (the model is loading): try again in a moment")
    return engine


def _jobs(request: Request) -> JobQueue:
    return request.app.state.jobs


Current = Annotated[Engine, Depends(_current_engine)]
Jobs = Annotated[JobQueue, Depends(_jobs)]
JobId = Annotated[str, InPath(max_length=MAX_JOB_ID_CHARS)]


def _routes() -> APIRouter:
    router = APIRouter(prefix="/v1")

    # Searches answer with their JSON as it is: FastAPI's own encoding walks every value of a returned dict
    # again (0.7 ms for ten hits on a 2-core VM, a few percent of a search).
    @router.post("/search", response_model=dict, summary="Search: the JSON of `desktop-search search --json`")
    def search(body: SearchBody, engine: Current) -> JSONResponse:
        filters = body.filters.as_mapping()
        roots = list(engine.roots()) if filters.get("in") else []  # only a relative in: folder needs them
        request = search_request(body.query, body.k, body.mode, body.weights, body.colbert, body.fusion,
                                 filters, body.sort, roots=roots)
        return JSONResponse(engine.search(request.query, **request.options()).to_dict())

    @router.get("/search", response_model=dict, summary="Search with a query string (for a quick curl)")
    def search_get(engine: Current, q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)],
                   k: Annotated[int, Query(ge=1, le=MAX_K)] = 10, mode: Mode = "hybrid") -> JSONResponse:
        request = search_request(q, k, mode)
        return JSONResponse(engine.search(request.query, **request.options()).to_dict())

    @router.get("/status", summary="What the index holds: the JSON of `desktop-search status --json`")
    def status(engine: Current) -> dict:
        return engine.status()

    @router.get("/files", summary="The indexed files, a page at a time, with their state and failure reasons")
    def files(engine: Current, text: Annotated[str, Query(max_length=MAX_PATH_CHARS)] = "", failed: bool = False,
              offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
              limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> dict:
        listed = engine.files(text, failed, offset, limit)
        return {"files": listed, "offset": offset, "limit": limit,
                "next_offset": offset + limit if len(listed) == limit else None}

    @router.post("/index", status_code=202, summary="Index folders or files in the background; returns the job")
    def index(body: IndexBody, engine: Current, jobs: Jobs, response: Response) -> dict:
        relative = next((p for p in body.paths if not os.path.isabs(os.path.expanduser(p))), None)
        if relative is not None:
            raise UsageError(f"give absolute paths (a relative one would be taken from the server's working "
                             f"folder): {relative}")
        if engine.mismatch:
            raise IndexMismatchError(engine.mismatch)
        job = jobs.submit(body.paths, body.wait)
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return job.to_dict()

    @router.get("/jobs/{job_id}", summary="An indexing job's state, progress (files, tokens/s, ETA) and report")
    def job(job_id: JobId, jobs: Jobs) -> dict:
        return _known(jobs.get(job_id), job_id).to_dict()

    @router.delete("/jobs/{job_id}", status_code=202, summary="Cancel an indexing job (it stops at its next batch)")
    def cancel(job_id: JobId, jobs: Jobs) -> dict:
        return _known(jobs.cancel(job_id), job_id).to_dict()

    @router.post("/embed", summary="BGE-M3's dense vectors, lexical weights by token text, and ColBERT vectors")
    def embed(body: EmbedBody, engine: Current) -> JSONResponse:
        if body.return_colbert and sum(map(len, body.texts)) > MAX_COLBERT_CHARS:
            raise UsageError(f"ColBERT vectors are {engine.dimension} numbers per token: ask for them on at most "
                             f"{MAX_COLBERT_CHARS:,} characters per call")
        return JSONResponse(engine.embed(body.texts, body.return_dense, body.return_sparse, body.return_colbert))

    @router.post("/highlight", summary="Texts cut into plain and matching pieces (odd positions match the terms)")
    def highlight(body: HighlightBody) -> dict:
        return {"segments": [highlight_segments(text, body.terms) for text in body.texts]}

    @router.post("/open", summary="Open an indexed file (or show it in its folder) on this computer's desktop")
    def open_file(body: OpenBody, request: Request, engine: Current) -> dict:
        if request.client is None or not is_loopback(request.client.host):
            raise HTTPException(403, "only a client on this computer may open files on its desktop")
        opened = open_indexed(engine, body.path, body.page, body.reveal)
        if opened is None:
            raise HTTPException(404, f"{body.path} is not in the index: only indexed files can be opened")
        return opened

    return router


def _known(job: Job | None, job_id: str) -> Job:
    if job is None:
        raise HTTPException(404, f"no job {job_id} (this server keeps its last 100 finished jobs until it stops)")
    return job


def _add_page(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/assets", StaticFiles(directory=WEB, check_dir=False), name="assets")


def _document_bearer(app: FastAPI) -> None:
    """The token is checked by a middleware (before routing and body parsing, so a request without it
    learns nothing); this tells the OpenAPI description, so /docs offers "Authorize"."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, operations in schema["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
        return app.openapi_schema

    app.openapi = openapi
