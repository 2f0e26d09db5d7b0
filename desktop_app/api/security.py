"""Who may talk to the server: a bearer token on every request for data, and Host names that are this
computer's (a web page whose DNS name was re-pointed at 127.0.0.1 sends its own name: refused)."""

from __future__ import annotations

import hmac
import ipaddress
import re

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# The search page, its scripts and styles, and the API's description hold nothing from the index, and a
# browser cannot add a header to a page it navigates to: they are served without the token (the page then
# asks for it). Everything under /v1/ needs it.
PUBLIC_PATHS = ("/", "/docs", "/openapi.json")
PUBLIC_PREFIX = "/assets/"
WRONG_HOST = ("the Host header must name this computer (localhost, 127.0.0.1, [::1]) or the address the server "
              "listens on; another name is refused (a web page's own name, re-pointed at this computer)")
# A Host header: a name or a bracketed IPv6 address, then an optional port; nothing else (no path, no user).
HOST_HEADER = re.compile(r"(?P<name>\[[0-9a-f:.]+\]|[^\s:/\\@?#\[\]]+)(?::\d{1,5})?", re.IGNORECASE)
UNAUTHORISED = ("missing or wrong token: send the header 'Authorization: Bearer TOKEN' with the token that "
                "desktop-search serve printed at start")


def is_loopback(host: str) -> bool:
    """True for names and addresses of this computer only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """The Host header names a request may carry: this computer's, and the address the server was bound to."""
    named = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return list(dict.fromkeys([*LOOPBACK_NAMES, named.lower()]))


class HostGuardMiddleware:
    """400 ``{"error": ...}`` for a request whose Host header is not one of ``allowed`` (see :func:`allowed_hosts`),
    before anything else runs; Starlette's own guard answers the same refusal in plain text."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self._allowed = {name.lower() for name in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._host_name(Headers(scope=scope)) in self._allowed:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"error": WRONG_HOST}, status_code=400)(scope, receive, send)

    @staticmethod
    def _host_name(headers: Headers) -> str | None:
        found = HOST_HEADER.fullmatch(headers.get("host", ""))
        return found.group("name").lower() if found else None


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX)


class BearerTokenMiddleware:
    """401 before anything else runs (routing, body parsing) for a request outside the public paths without
    ``Authorization: Bearer TOKEN``; the token is compared in constant time and nothing else is said."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]) or self._authorised(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"error": UNAUTHORISED}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _authorised(self, headers: Headers) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        given = f"{scheme.capitalize()} {credentials.strip()}".encode()
        return hmac.compare_digest(given, self._expected)
