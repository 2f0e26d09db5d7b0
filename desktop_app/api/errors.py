"""Every error as ``{"error": "a sentence"}`` with a fitting status; never a stack trace.

Malformed JSON and bad fields are 422 with the field named; the core's readable errors keep their
sentence (a bad query is 422, a busy or mismatched index 409, a closed index or missing model 503);
anything unexpected is 500 with a pointer to the log file, which keeps the detail.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

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


def _error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error_response(422, _describe_invalid(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(DesktopSearchError)
    async def readable(request: Request, error: DesktopSearchError) -> JSONResponse:
        status = next((code for kind, code in STATUS_OF if isinstance(error, kind)), 500)
        return _error_response(status, str(error))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error_response(500, UNEXPECTED)
