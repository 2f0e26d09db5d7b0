"""Every error as ``{"error": "a sentence"}`` with a fitting status; never a stack trace.

Malformed JSON and bad fields are 422 with the field named; the core's readable errors keep their
sentence (a bad query is 422, a busy or mismatched index 409, a closed index or missing model 503);
anything unexpected is 500 with a pointer to the log file, which keeps the detail.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import deque

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desktop_app.api.schemas import MAX_BODY_BYTES
from desktop_app.core import (
    DesktopSearchError,
    IndexClosedError,
    IndexLockedError,
    IndexMismatchError,
    ModelError,
    UsageError,
)

log = logging.getLogger("desktop_search.api")
STATUS_OF = ((UsageError, 422), (IndexLockedError, 409), (IndexMismatchError, 409), (IndexClosedError, 503),
             (ModelError, 503))
UNEXPECTED = "unexpected error in the server; the log file has the detail (the window's About names it)"
RETRY_AFTER_S = 1  # the least a busy answer asks a client to wait
MAX_RETRY_AFTER_S = 60
LATEST_ANSWERS = 32  # the answers whose time in the server tells a refused client how long to wait
BODY_IDLE_S = 10.0  # a request body that stops arriving for this long is refused (408)
SLOW_BODY = (f"the request body stopped arriving (nothing for {BODY_IDLE_S:g} s): send it whole, at once")
TOO_LARGE = (f"the request body is over this server's limit of {MAX_BODY_BYTES // (1024 * 1024)} MB: send fewer or "
             "shorter texts per request")


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _describe_invalid(error: RequestValidationError) -> str:
    """Pydantic's findings as one line: ``k: Input should be less than or equal to 100; mode: ...``."""
    parts = []
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ())]
        if location[:1] in (["body"], ["query"], ["path"]):  # where the field came from, not its name
            location = location[1:]
        if problem.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({problem.get('ctx', {}).get('error', 'cannot parse it')})")
        else:
            parts.append(f"{'.'.join(location) or 'body'}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class BodyLimitMiddleware:
    """413 ``{"error": ...}`` for a body over ``MAX_BODY_BYTES``: at once when its Content-Length says so (not one
    byte of it is read), else as soon as a chunked body grows past it (what was read is dropped). FastAPI's own
    ``max_body_size`` answers the first case in plain text, unlike every other error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = Headers(scope=scope).get("content-length", "")
        if announced.isdigit() and int(announced) > MAX_BODY_BYTES:
            await _error_response(413, TOO_LARGE, {"Connection": "close"})(scope, receive, send)
            return
        received, complete = 0, False

        async def counted() -> Message:
            """The body's next part; a client that stops sending it (slowloris, with a body) is refused
            instead of holding a slot and a thread; after the last part, waits as long as the route likes."""
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_IDLE_S)
            except TimeoutError:
                raise HTTPException(408, SLOW_BODY, {"Connection": "close"}) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413)  # the route is reading its body: the handler below answers
            return message

        await self.app(scope, counted, send)


class InFlightLimitMiddleware:
    """503 ``{"error": ...}`` with ``Retry-After`` once ``limit`` requests are already being answered or
    waiting: the engine answers searches in turn, so a longer line only makes every client wait longer
    (and a crowd of them could hold every thread); a client told when to come back loses nothing. The
    wait it is told is how long the latest answers spent in the server, line included, so a crowd of
    clients does not come back every second to be turned away again (each refusal costs the server and
    the client CPU that the searches in line need)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0  # the event loop's thread alone counts: no lock needed
        self.held: deque[float] = deque(maxlen=LATEST_ANSWERS)  # seconds the latest answers spent in the server

    def retry_after_s(self) -> int:
        """The median of the seconds the latest answers spent in the server, their line included: a full
        line's length at its pace, and after an idle spell no more than the answers of the moment took."""
        if not self.held:
            return RETRY_AFTER_S
        return max(RETRY_AFTER_S, min(MAX_RETRY_AFTER_S, math.ceil(statistics.median(self.held))))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            wait = self.retry_after_s()
            message = f"the server is busy: {self.in_flight} requests are ahead of this one; try again in {wait} s"
            await _error_response(503, message, {"Retry-After": str(wait)})(scope, receive, send)
            return
        self.in_flight += 1
        admitted = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":  # how long the server held it, queueing included
                took = f"app;dur={(time.perf_counter() - admitted) * 1000:.1f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            self.in_flight -= 1
            self.held.append(time.perf_counter() - admitted)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error_response(422, _describe_invalid(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        # BodyLimitMiddleware's 413, raised while a route reads a chunked body: the client needs the limit
        message = TOO_LARGE if error.status_code == 413 else str(error.detail)
        return _error_response(error.status_code, message, error.headers)

    @app.exception_handler(DesktopSearchError)
    async def readable(request: Request, error: DesktopSearchError) -> JSONResponse:
        status = next((code for kind, code in STATUS_OF if isinstance(error, kind)), 500)
        return _error_response(status, str(error))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error_response(500, UNEXPECTED)
