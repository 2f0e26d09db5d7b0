"""The HTTP API's app and token in-process: what a real server cannot be made to show cheaply (an allowed
web origin, an unexpected error, no engine yet, a client on another computer)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from desktop_app.api.app import ServeOptions, create_app
from desktop_app.api.token import TOKEN_ENV, api_token
from desktop_app.core.errors import DesktopSearchError, UsageError

# Starlette 1.x asks for httpx2 under its test client; httpx (installed) still works for these tests.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
TOKEN = "a-token-for-these-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client(engine_of, **options):
    from fastapi.testclient import TestClient  # imported here, so the filter above covers its import warning

    return TestClient(create_app(engine_of, ServeOptions(TOKEN, **options)), base_url="http://localhost",
                      raise_server_exceptions=False)


def test_an_allowed_origin_gets_cors_headers_and_no_other_does() -> None:
    with client(lambda: None, allow_origin="http://localhost:3000") as app:
        preflight = app.options("/v1/search", headers={"Origin": "http://localhost:3000",
                                                       "Access-Control-Request-Method": "POST",
                                                       "Access-Control-Request-Headers": "authorization"})
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
        refused = app.get("/v1/status", headers={"Origin": "http://localhost:3000"})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = app.get("/v1/status", headers={**AUTH, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_an_unexpected_error_is_500_without_a_trace_or_its_text() -> None:
    def broken() -> None:
        raise RuntimeError("secret detail /home/someone/private.txt")

    with client(broken) as app:
        response = app.get("/v1/status", headers=AUTH)
    assert response.status_code == 500
    assert "log file" in response.json()["error"]
    assert "secret" not in response.text and "Traceback" not in response.text


def test_without_an_engine_yet_requests_are_503_with_a_reason() -> None:
    with client(lambda: None) as app:
        response = app.post("/v1/search", json={"query": "wing"}, headers=AUTH)
    assert response.status_code == 503 and "try again" in response.json()["error"]


def test_only_a_client_on_this_computer_may_open_files() -> None:
    with client(object) as app:  # the test client's address is "testclient", not a loopback one
        response = app.post("/v1/open", json={"path": "/x.txt"}, headers=AUTH)
    assert response.status_code == 403


def test_the_token_file_is_made_once_with_mode_0600_and_tightened_if_copied_wider(tmp_path: Path) -> None:
    first = api_token(tmp_path / "index", env={})
    assert api_token(tmp_path / "index", env={}) == first
    path = Path(first.source)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert api_token(tmp_path / "index", env={}).value == first.value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_environment_token_wins_but_must_not_be_short(tmp_path: Path) -> None:
    token = api_token(tmp_path, env={TOKEN_ENV: "x" * 20})
    assert token.value == "x" * 20 and token.from_env and not (tmp_path / "api-token").exists()
    with pytest.raises(UsageError, match="too short"):
        api_token(tmp_path, env={TOKEN_ENV: "short"})
    (tmp_path / "api-token").write_text("\n")
    with pytest.raises(DesktopSearchError, match="delete the file"):
        api_token(tmp_path, env={})


def _line_of_two(held_s: tuple[float, ...] = ()):
    """Two requests held by a slow app behind a line limit of two, a third one refused, then the two let
    go and a fourth asked: (refused, the two answers, the fourth). ``held_s``: how long earlier answers
    spent in the server."""
    import asyncio

    import httpx

    from desktop_app.api.errors import InFlightLimitMiddleware

    async def main() -> tuple[httpx.Response, list[httpx.Response], httpx.Response]:
        release = asyncio.Event()

        async def slow_search(scope, receive, send) -> None:
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        app = InFlightLimitMiddleware(slow_search, limit=2)
        app.held.extend(held_s)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as api:
            waiting = [asyncio.create_task(api.get("/v1/status")) for _ in range(2)]
            while app.in_flight < 2:
                await asyncio.sleep(0.01)
            refused = await api.get("/v1/status")
            release.set()
            answered = await asyncio.gather(*waiting)
            return refused, answered, await api.get("/v1/status")

    return asyncio.run(main())


def test_requests_past_the_line_limit_get_503_with_retry_after_and_the_line_moves_on() -> None:
    """200 clients degrade gracefully: past the limit a request is told when to come back, at once."""
    refused, answered, after = _line_of_two()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"].startswith("the server is busy: 2 requests are ahead")
    assert [r.status_code for r in answered] == [200, 200] and after.status_code == 200


def test_a_busy_answer_names_the_wait_the_line_ahead_takes() -> None:
    """A crowd told to come back in a second came back to be turned away again (3,900 refusals in 30 s for
    1,000 answers at 200 clients); the wait is now what the latest answers spent in the server, their line
    included. (A first try took the line's length over the latest answers' pace, and after an idle spell
    that pace came out tiny: a burst of clients was told to wait a minute.)"""
    from desktop_app.api.errors import MAX_RETRY_AFTER_S

    slow = _line_of_two(held_s=(3.9, 3.2, 4.5))[0]  # the median answer spent 3.9 s in the server
    assert slow.status_code == 503 and slow.headers["retry-after"] == "4"
    assert slow.json()["error"].endswith("try again in 4 s")
    fast = _line_of_two(held_s=(0.02, 0.01, 0.03))[0]
    assert fast.headers["retry-after"] == "1", "never less than a second"
    stuck = _line_of_two(held_s=(3600.0, 1800.0, 900.0))[0]
    assert stuck.headers["retry-after"] == str(MAX_RETRY_AFTER_S), "nor more than a minute"


def test_an_answer_says_how_long_the_server_held_it() -> None:
    """Server-Timing tells a client (and bench/api_load.py) the server's share of a slow answer, its
    queueing included, from what the network and the client's own loop add."""
    import asyncio

    import httpx

    from desktop_app.api.errors import InFlightLimitMiddleware

    async def main() -> httpx.Response:
        async def slow_search(scope, receive, send) -> None:
            await asyncio.sleep(0.05)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"{}"})

        app = InFlightLimitMiddleware(slow_search, limit=2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as api:
            return await api.get("/v1/status")

    answer = asyncio.run(main())
    name, duration = answer.headers["server-timing"].split(";dur=")
    assert name == "app" and 50 <= float(duration) < 5000
    assert answer.headers["content-type"] == "text/plain", "the app's own headers are kept"


def test_the_served_app_limits_its_line() -> None:
    with client(lambda: None, max_in_flight=0) as app:
        busy = app.get("/v1/status", headers=AUTH)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"


def test_a_full_disk_leaves_no_empty_token_file_and_says_so(tmp_path: Path, monkeypatch) -> None:
    """An empty api-token would make every later start refuse it; a failed write leaves nothing."""
    import errno
    import os as os_module

    from desktop_app.api import token as token_module
    from desktop_app.core import DesktopSearchError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os_module, "fsync", full)
    with pytest.raises(DesktopSearchError, match="could not keep the API token .* the disk is full"):
        token_module.api_token(tmp_path, env={})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    made = token_module.api_token(tmp_path, env={})
    assert len(made.value) >= 32 and [p.name for p in tmp_path.iterdir()] == ["api-token"]


def test_searches_answer_with_their_json_as_it_is(monkeypatch) -> None:
    """FastAPI's own response encoding walked a returned dict value by value (0.7 ms for ten hits); a search
    hands over its JSON, and both routes answer exactly ``SearchResult.to_dict()``."""
    import fastapi.routing

    from desktop_app.core.search.results import ChunkHit, Hit, SearchResult

    hit = Hit("/docs/wing.txt", 1, 0.9, {"dense": 0.9, "sparse": None}, "the wing stalls", ["wing"], 7, 0, 15,
              more=[ChunkHit(8, 2, 15, 30, 0.5, {"dense": 0.5}, "more wing", ["wing"])])
    result = SearchResult("wing", "hybrid", ["dense"], {"dense": 1.0}, 1.5, [hit])

    class Engine:
        def roots(self) -> dict[str, int | None]:
            return {}

        def search(self, query: str, **options: object) -> SearchResult:
            return result

    encoded: list[object] = []
    real = fastapi.routing.serialize_response

    async def counting(*args: object, **kwargs: object) -> object:
        encoded.append(kwargs.get("response_content"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "serialize_response", counting)
    with client(Engine) as app:
        posted = app.post("/v1/search", json={"query": "wing"}, headers=AUTH)
        got = app.get("/v1/search", params={"q": "wing"}, headers=AUTH)
    assert posted.status_code == got.status_code == 200
    assert posted.json() == got.json() == result.to_dict()
    assert encoded == [], "no search went through FastAPI's response encoding"
