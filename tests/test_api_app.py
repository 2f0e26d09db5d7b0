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
