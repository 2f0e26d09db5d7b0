"""Hostile clients of the HTTP API: generated requests from its OpenAPI description (Schemathesis, and
Hypothesis strategies over the same operations with hostile values), slow clients, and bodies over the
limit. Every refusal is a 4xx with a readable ``{"error": ...}``, never a 5xx or a trace, and the server
answers a known query right afterwards.

The generated requests go to the app in-process (fast, and a failure names its input); the slow clients
and the body limit need a real server's sockets, so those tests serve the same app on a free port.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hostile import (
    HOSTILE,
    MEGABYTE,
    any_text,
    assert_readable,
    hostile_json,
    hostile_number,
    hostile_text,
    short_hostile_text,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from desktop_app.api.app import ServeOptions, create_app
from desktop_app.api.schemas import MAX_BODY_BYTES
from desktop_app.api.server import HEADER_TIMEOUT_S, ApiServer, bind

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
TOKEN = "a-token-for-hostile-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
HOST = {"Host": "localhost"}  # the Host guard refuses Schemathesis's own "testserver"
KNOWN_QUERY = {"q": "how do wings stall", "k": "1"}
HEADER_TIMEOUT_FOR_TESTS_S = 1.5  # the served app's, shorter than HEADER_TIMEOUT_S so the tests need not wait


@pytest.fixture(scope="module")
def app(aero_engine) -> FastAPI:
    return create_app(lambda: aero_engine, ServeOptions(TOKEN))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[httpx.Client]:
    from fastapi.testclient import TestClient  # imported here, so the filter above covers its import warning

    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        yield client


def _assert_still_answers(client: httpx.Client) -> None:
    """The known query after the hostile ones: 200, and the file it names first."""
    response = client.get("/v1/search", params=KNOWN_QUERY, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["hits"][0]["path"].endswith("stall.txt")


def _assert_refused_readably(response: httpx.Response | schemathesis.Response) -> None:
    """A 2xx answer, or a 4xx whose body is ``{"error": a readable sentence}``; never a 5xx."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert list(response.json()) == ["error"], response.text[:500]
        assert_readable(response.json()["error"])


# ----- generated from the OpenAPI description ------------------------------------------------------------


def test_requests_from_the_api_description_are_never_a_server_error(app: FastAPI, client: httpx.Client) -> None:
    """Schemathesis's valid and invalid requests for every described operation, the same ones every run.
    Indexing is left out: a valid request would index whatever folder was generated (``/``); its hostile
    bodies are in the next property."""
    described = schemathesis.openapi.from_asgi("/openapi.json", app, headers=HOST).exclude(path="/v1/index")
    described.config.generation.update(with_security_parameters=False)
    cases = st.one_of(described.as_strategy(GenerationMode.POSITIVE), described.as_strategy(GenerationMode.NEGATIVE))

    @settings(HOSTILE, max_examples=150)
    @given(cases)
    def call(case: schemathesis.Case) -> None:
        response = case.call(headers={**AUTH, **HOST})
        case.validate_response(response, checks=[not_a_server_error])
        _assert_refused_readably(response)

    call()
    _assert_still_answers(client)


@dataclass(frozen=True)
class _Operation:
    """One route of the description: its method, path, query parameters and body fields by name."""

    method: str
    path: str
    parameters: tuple[str, ...]
    fields: tuple[str, ...]


def _operations(app: FastAPI) -> list[_Operation]:
    """Every described route, from the same OpenAPI description Schemathesis reads."""
    described = app.openapi()
    operations = []
    for path, methods in described["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in body:
                body = described["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
            parameters = tuple(p["name"] for p in operation.get("parameters", ()) if p["in"] == "query")
            operations.append(_Operation(method.upper(), path, parameters, tuple(body.get("properties", ()))))
    return operations


def _as_query_value(value: object) -> str:
    """Any generated value as the text of a query string, percent-encoded as a client would send it (a lone
    surrogate as its UTF-8-like bytes, which the server must take as invalid UTF-8)."""
    text = json.dumps(value) if not isinstance(value, str) else value
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def _hostile_requests(draw: st.DrawFn, operations: list[_Operation]) -> tuple[str, str, bytes, dict[str, str]]:
    """A request to one described route: its own field and parameter names (and some others) with hostile
    values, or a body that is not the JSON it expects at all."""
    operation = draw(st.sampled_from(operations))
    names = st.one_of(st.sampled_from(operation.fields or ("query",)), any_text)
    body_value = draw(st.one_of(
        st.dictionaries(names, st.one_of(hostile_json, st.lists(hostile_text, max_size=3)), max_size=6),
        hostile_json))
    body = draw(st.one_of(st.just(json.dumps(body_value).encode()), st.binary(max_size=200),
                          st.just(b'{"query": "wing",'), st.just(json.dumps(body_value).encode()[:-1])))
    parameters = draw(st.dictionaries(st.sampled_from(operation.parameters or ("q",)),
                                      st.one_of(short_hostile_text, hostile_number), max_size=3))
    query = "&".join(f"{quote(name)}={_as_query_value(value)}" for name, value in parameters.items())
    path = operation.path.replace("{job_id}", quote(draw(short_hostile_text).encode("utf-8", "surrogatepass"),
                                                    safe=""))
    content_type = draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                         "multipart/form-data; boundary=x", "application/json; charset=utf-16"]))
    return operation.method, f"{path}?{query}" if query else path, body, {**AUTH, "Content-Type": content_type}


def test_hostile_values_in_every_described_field_are_refused_readably(app: FastAPI, client: httpx.Client) -> None:
    """Hypothesis over the described routes' own names: NUL, lone surrogates, right-to-left marks, a megabyte,
    huge and not-a-number numbers, bodies that are not JSON."""

    @HOSTILE
    @given(_hostile_requests(_operations(app)))
    @example(("POST", "/v1/search", json.dumps({"query": "\ud800 wing"}).encode(), JSON))
    @example(("POST", "/v1/search", b'{"query": "wing", "weights": [1e308, 1e308, 1e308]}', JSON))
    @example(("POST", "/v1/search", b'{"query": "wing", "weights": "' + b"9" * MEGABYTE + b'"}', JSON))
    @example(("POST", "/v1/search", b'{"query": "wing", "filters": {"after": "0001-01-01"}}', JSON))
    @example(("POST", "/v1/highlight", json.dumps({"texts": ["\ud800\x00"], "terms": ["\ud800"]}).encode(), JSON))
    @example(("POST", "/v1/embed", json.dumps({"texts": ["\udfff"]}).encode(), JSON))
    @example(("POST", "/v1/index", json.dumps({"paths": ["/\x00", "/\ud800"]}).encode(), JSON))
    @example(("GET", "/v1/files?offset=99999999999999999999999&limit=1", b"", JSON))
    @example(("GET", "/v1/jobs/%00%ED%A0%80", b"", JSON))
    @example(("GET", "/v1/jobs/" + "a" * 5000, b"", JSON))
    def send(request: tuple[str, str, bytes, dict[str, str]]) -> None:
        method, target, body, headers = request
        if method == "POST" and target.startswith("/v1/index") and _names_an_existing_path(body):
            return  # a valid request would index that folder: not what this property is about
        _assert_refused_readably(client.request(method, target, content=body, headers=headers))

    send()
    _assert_still_answers(client)


def _names_an_existing_path(body: bytes) -> bool:
    """True for an index request that names a path on this computer: the server would index it."""
    try:
        paths = json.loads(body)["paths"]
    except (ValueError, KeyError, TypeError, IndexError):
        return False
    return isinstance(paths, list) and any(isinstance(p, str) and os.path.exists(os.path.expanduser(p)) for p in paths)


header_value = st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b)


@HOSTILE
@given(st.dictionaries(st.sampled_from(["authorization", "host", "content-type", "content-length", "accept",
                                        "origin", "transfer-encoding", "x-forwarded-for", "cookie", "range"]),
                       header_value, max_size=4))
@example({"authorization": b"Bearer \xff\xfe" + TOKEN.encode()})
@example({"content-length": b"-1"})
@example({"content-length": str(MAX_BODY_BYTES + 1).encode()})
@example({"host": b"\xc3\xa9vil.example"})
def test_any_header_is_answered_without_a_server_error(client: httpx.Client, headers: dict[str, bytes]) -> None:
    response = client.post("/v1/search", content=b'{"query": "wing"}', headers={**AUTH, **headers})
    _assert_refused_readably(response)


# ----- a real server: slow clients and bodies over the limit ---------------------------------------------


@pytest.fixture(scope="module")
def served(app: FastAPI) -> Iterator[tuple[str, int]]:
    server = ApiServer(app, bind("127.0.0.1", 0), header_timeout_s=HEADER_TIMEOUT_FOR_TESTS_S)
    server.start()
    yield "127.0.0.1", server.port
    server.stop()


def _connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=10)


def _read_response(connection: socket.socket) -> bytes:
    """What the server sends until it closes the connection or has sent its headers and a short body."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
            head, separator, body = received.partition(b"\r\n\r\n")
            if separator and len(body) >= _content_length(head):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_slow_clients_do_not_hold_the_server(served: tuple[str, int]) -> None:
    """Slowloris: some clients send nothing, others their headers a byte at a time; a normal request still
    answers at once."""
    stop = threading.Event()
    silent = [_connect(served) for _ in range(8)]
    trickling = [_connect(served) for _ in range(8)]

    def trickle() -> None:
        request = b"POST /v1/search HTTP/1.1\r\nHost: localhost\r\n" + f"Authorization: Bearer {TOKEN}".encode()
        for byte in request:
            if stop.wait(0.2):
                return
            for connection in trickling:
                try:
                    connection.send(bytes([byte]))
                except OSError:  # dropped by the server: what it should do with them, in the end
                    pass

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(0.5)
        with httpx.Client(base_url=f"http://{served[0]}:{served[1]}", timeout=10) as normal:
            for _ in range(3):
                started = time.monotonic()
                _assert_still_answers(normal)
                assert time.monotonic() - started < 2
    finally:
        stop.set()
        sender.join()
        for connection in silent + trickling:
            connection.close()


@pytest.mark.parametrize("sent", [b"", b"GET /v1/status HTTP/1.1\r\nHost: loc"])
def test_a_client_that_does_not_finish_its_headers_in_time_is_dropped(served: tuple[str, int], sent: bytes) -> None:
    """Without a deadline each silent or trickling connection kept its slot for ever (uvicorn has none for
    headers): ``MAX_CONNECTIONS`` of them and every other client got 503."""
    assert HEADER_TIMEOUT_FOR_TESTS_S < HEADER_TIMEOUT_S
    with _connect(served) as connection:
        connection.sendall(sent)
        started = time.monotonic()
        assert _read_response(connection) == b""  # closed, without an answer
        assert time.monotonic() - started < HEADER_TIMEOUT_FOR_TESTS_S + 2


def test_a_body_that_stops_arriving_is_refused_and_frees_its_slot(served: tuple[str, int], monkeypatch) -> None:
    """Slowloris with a body: complete headers, then part of the announced body, then nothing. Without a
    deadline the request held an in-flight slot and a worker thread for ever."""
    from desktop_app.api import errors

    monkeypatch.setattr(errors, "BODY_IDLE_S", 1.0)
    with _connect(served) as connection:
        connection.sendall(b"POST /v1/search HTTP/1.1\r\nHost: localhost\r\n"
                           + f"Authorization: Bearer {TOKEN}".encode()
                           + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\": \"wi")
        started = time.monotonic()
        answer = _read_response(connection)
        assert time.monotonic() - started < 1.0 + 2
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert "stopped arriving" in json.loads(body)["error"]
    with httpx.Client(base_url=f"http://{served[0]}:{served[1]}", timeout=10) as normal:
        _assert_still_answers(normal)


def test_a_body_announced_over_the_limit_is_refused_before_it_is_sent(served: tuple[str, int]) -> None:
    with _connect(served) as connection:
        connection.sendall(b"POST /v1/embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                           + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
        response = _read_response(connection)  # not one byte of the body was sent
    _assert_413(response)


def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(served: tuple[str, int]) -> None:
    chunk = b"a" * 65536
    with _connect(served) as connection:
        connection.sendall(b"POST /v1/embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                           + f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        connection.sendall(b'11\r\n{"texts": ["aaaaa\r\n')
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):  # past the limit, and the body never ends
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = _read_response(connection)
    _assert_413(response)


def _assert_413(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and body.startswith(b"{"), response[:300]
    assert_readable(json.loads(body)["error"])
    assert f"{MAX_BODY_BYTES // MEGABYTE} MB" in json.loads(body)["error"]
