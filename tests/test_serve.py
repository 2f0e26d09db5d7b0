"""`desktop-search serve` through real HTTP: one server process for the module, on a free port, lite model.

Every endpoint, the token, the Host guard, limits, parity with the CLI's JSON, indexing jobs,
embeddings equal to the encoder's, and the search page in a real headless Chromium.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import AERO_DOCS, make_folder

from desktop_app.api.security import UNAUTHORISED
from desktop_app.cli import main
from desktop_app.core.storage.lock import WriterLock

START_TIMEOUT_S = 120


@dataclass
class Served:
    url: str
    port: int
    token: str
    banner: str
    index_dir: Path
    corpus: Path
    root: Path
    opened_log: Path
    process: subprocess.Popen


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def server_env(root: Path, lite_model_dir: Path) -> dict[str, str]:
    """The lite model in fp32 on the CPU (to compare embeddings exactly), no token from the environment,
    and a fake ``xdg-open`` that writes down what it was asked to open."""
    fake_bin = root / "bin"
    fake_bin.mkdir(exist_ok=True)
    opener = fake_bin / "xdg-open"
    opener.write_text(f'#!/bin/sh\necho "$@" >> "{root / "opened.log"}"\n')
    opener.chmod(0o755)
    env = {**os.environ, "DESKTOP_SEARCH_MODEL": str(lite_model_dir), "DESKTOP_SEARCH_DEVICE": "cpu",
           "DESKTOP_SEARCH_DTYPE": "fp32", "PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("DESKTOP_SEARCH_API_TOKEN", None)
    return env


def start_serve(args: list[str], env: dict[str, str], stderr_path: Path) -> subprocess.Popen:
    with open(stderr_path, "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "desktop_app", "serve", *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=stderr)


@pytest.fixture(scope="module")
def served(tmp_path_factory, lite_model_dir: Path):
    root = tmp_path_factory.mktemp("serve")
    corpus = make_folder(root, "docs", AERO_DOCS)
    (corpus / "garbage.txt").write_bytes(b"\x00\xff" * 500)
    index_dir = root / "index"
    code, _, err = cli("index", str(corpus), "--index", str(index_dir), "--model", str(lite_model_dir),
                       "--device", "cpu", "--dtype", "fp32")
    assert code == 0, err
    process = start_serve(["--index", str(index_dir), "--port", "0"], server_env(root, lite_model_dir),
                          root / "serve.err")
    banner = "".join(process.stdout.readline() for _ in range(4))
    found = re.search(r" at (http://127\.0\.0\.1:(\d+)/)\n", banner)
    assert found, (banner, (root / "serve.err").read_text())
    token = (index_dir / "api-token").read_text().strip()
    deadline = time.monotonic() + 120  # it answers at once, by words; these tests compare the model's ranking
    while not httpx.get(f"{found.group(1)}v1/status", headers={"Authorization": f"Bearer {token}"}).json()[
            "model_loaded"]:
        assert time.monotonic() < deadline, (root / "serve.err").read_text()
        time.sleep(0.1)
    yield Served(found.group(1), int(found.group(2)), token, banner, index_dir, corpus, root, root / "opened.log",
                 process)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0, (root / "serve.err").read_text()
    assert "stopped" in (root / "serve.err").read_text()


@pytest.fixture
def api(served: Served):
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"}, timeout=120) as client:
        yield client


def without_timing(result: dict) -> dict:
    return {key: value for key, value in result.items() if key != "took_ms"}


def wait_for_job(api: httpx.Client, job_id: str, seen: list | None = None, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if seen is not None and job["progress"] is not None:
            seen.append(job["progress"])
        if job["state"] in ("done", "cancelled", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.01)


# ----- start-up, token, guards -------------------------------------------------------------------------


def test_the_token_is_generated_once_kept_with_mode_0600_and_printed(served: Served) -> None:
    token_file = served.index_dir / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(served.token) >= 32 and f"token: {served.token}" in served.banner
    assert "127.0.0.1" in served.url and "warning" not in (served.root / "serve.err").read_text()


V1_REQUESTS = [("GET", "/v1/search?q=wing", None), ("POST", "/v1/search", {"query": "wing"}),
               ("GET", "/v1/status", None), ("GET", "/v1/files", None), ("POST", "/v1/index", {"paths": ["/tmp"]}),
               ("GET", "/v1/jobs/x", None), ("DELETE", "/v1/jobs/x", None), ("POST", "/v1/embed", {"texts": ["a"]}),
               ("POST", "/v1/highlight", {"texts": ["a"], "terms": []}), ("POST", "/v1/open", {"path": "/etc/passwd"}),
               ("GET", "/v1/no-such-thing", None)]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-of-some-length", "Basic dXNlcjpwYXNz", "Bearer"])
def test_every_v1_request_without_the_right_token_is_401_and_says_nothing_else(served: Served,
                                                                                authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=served.url, headers=headers) as client:
        for method, path, body in V1_REQUESTS:
            response = client.request(method, path, json=body)
            assert response.status_code == 401, (method, path)
            assert response.json() == {"error": UNAUTHORISED}
            assert "server" not in response.headers  # not even which server software answers
        malformed = client.post("/v1/search", content=b"{not json", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 401  # the token is checked before the body is read


def test_the_page_and_the_api_description_need_no_token_and_load_nothing_from_outside(served: Served) -> None:
    with httpx.Client(base_url=served.url) as client:
        page = client.get("/")
        assert page.status_code == 200 and "Desktop Search" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("/assets/search.js", "/assets/search.css"):
            text = client.get(asset).text
            assert text and not re.search(r"(https?:)?//[\w.-]+\.\w", text.replace("http://localhost", "")), asset
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
        schema = client.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert {"/v1/search", "/v1/status", "/v1/files", "/v1/index", "/v1/jobs/{job_id}", "/v1/embed"} <= set(
            schema["paths"])
        assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(("host", "status"), [("evil.example", 400), ("evil.example:{port}", 400),
                                              ("127.0.0.1.evil.example:{port}", 400), ("localhost:{port}", 200),
                                              ("127.0.0.1:{port}", 200), ("[::1]:{port}", 200), ("localhost", 200)])
def test_a_host_header_naming_another_computer_is_refused(api: httpx.Client, served: Served, host: str,
                                                          status: int) -> None:
    response = api.get("/v1/status", headers={"Host": host.format(port=served.port)})
    assert response.status_code == status


def test_no_cors_headers_unless_an_origin_is_allowed(api: httpx.Client) -> None:
    response = api.get("/v1/status", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name in response.headers)
    preflight = api.options("/v1/search", headers={"Origin": "http://evil.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


# ----- search, status, files ---------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "flags"), [
    ({"query": "how do wings stall", "k": 3}, ["-k", "3"]),
    ({"query": "heat", "k": 5, "mode": "keyword"}, ["-k", "5", "--mode", "keyword"]),
    ({"query": "flow", "weights": [0.3, 0.2, 0, 0.5], "sort": "name", "filters": {"ext": ["txt"], "name": ["e"]}},
     ["--weights", "0.3,0.2,0,0.5", "--sort", "name", "--ext", "txt", "--name", "e"]),
    ({"query": "", "filters": {"ext": "txt", "after": "2000-01-01"}}, ["--ext", "txt", "--after", "2000-01-01"]),
])
def test_search_answers_exactly_the_json_the_cli_prints(api: httpx.Client, served: Served, body: dict,
                                                         flags: list[str]) -> None:
    response = api.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    query = [body["query"]] if body["query"] else []
    code, out, err = cli("search", *query, "--json", "--index", str(served.index_dir), "--dtype", "fp32", *flags)
    assert code == 0, err
    assert without_timing(response.json()) == without_timing(json.loads(out))
    assert response.json()["hits"]


def test_the_quick_get_search_is_the_same_search(api: httpx.Client) -> None:
    got = api.get("/v1/search", params={"q": "how do wings stall", "k": 2}).json()
    posted = api.post("/v1/search", json={"query": "how do wings stall", "k": 2}).json()
    assert without_timing(got) == without_timing(posted)
    assert got["hits"][0]["path"].endswith("stall.txt")


def test_status_is_the_json_of_status(api: httpx.Client, served: Served) -> None:
    code, out, _ = cli("status", "--json", "--index", str(served.index_dir))
    expected, got = json.loads(out), api.get("/v1/status").json()
    assert code == 0 and set(got) == set(expected)
    own = ("disk_bytes", "model_loaded", "runtime")  # the server has loaded its model; `status` never loads one
    assert {k: v for k, v in got.items() if k not in own} == {k: v for k, v in expected.items() if k not in own}
    assert got["model_loaded"] and not expected["model_loaded"]
    assert got["runtime"]["precision"] == "fp32" and got["runtime"]["device"] == "cpu" and expected["runtime"] is None


def test_files_come_a_page_at_a_time_with_their_state_and_failure_reason(api: httpx.Client, served: Served) -> None:
    first = api.get("/v1/files", params={"limit": 2, "text": str(served.corpus)}).json()
    second = api.get("/v1/files", params={"limit": 2, "offset": 2, "text": str(served.corpus)}).json()
    assert len(first["files"]) == 2 and first["next_offset"] == 2
    paths = [f["path"] for f in first["files"] + second["files"]]
    assert len(set(paths)) == 4 and paths == sorted(paths)
    failed = api.get("/v1/files", params={"failed": True}).json()["files"]
    assert [f["path"] for f in failed] == [str(served.corpus / "garbage.txt")]
    assert failed[0]["state"] == "failed" and "binary" in failed[0]["reason"]


def test_a_search_sees_what_another_process_indexed_after_the_server_started(api: httpx.Client, served: Served,
                                                                              tmp_path: Path) -> None:
    baking = make_folder(tmp_path, "baking", {"croissant.txt": "Croissants need cold butter and patience."})
    assert cli("index", str(baking), "--index", str(served.index_dir))[0] == 0
    hits = api.get("/v1/search", params={"q": "croissants butter", "k": 1}).json()["hits"]
    assert hits[0]["path"] == str(baking / "croissant.txt")


# ----- limits and malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "says"), [
    ("/v1/search", {"query": "wing", "k": 0}, "k: "),
    ("/v1/search", {"query": "wing", "k": 101}, "k: "),
    ("/v1/search", {"query": "w" * 2001}, "query: "),
    ("/v1/search", {"query": "wing", "mode": "fuzzy"}, "mode: "),
    ("/v1/search", {"query": "wing", "colour": "red"}, "colour: "),
    ("/v1/search", {"query": ["wing"]}, "query: "),
    ("/v1/search", {"k": 3}, "query: Field required"),
    ("/v1/search", {"query": "wing", "weights": "1,2"}, "weights must be D,S,C"),
    ("/v1/search", {"query": "wing", "filters": {"after": "yesterday"}}, "after: needs a date"),
    ("/v1/search", {"query": "   "}, "the query is empty"),
    ("/v1/embed", {"texts": ["a"] * 65}, "texts: "),
    ("/v1/embed", {"texts": []}, "texts: "),
    ("/v1/embed", {"texts": ["x" * 40_001]}, "texts.0: "),
    ("/v1/embed", {"texts": ["word " * 5000] * 3, "return_colbert": True}, "ColBERT vectors"),
    ("/v1/index", {"paths": []}, "paths: "),
    ("/v1/index", {"paths": ["relative/folder"]}, "absolute paths"),
    ("/v1/index", {"paths": ["/no/such/folder"]}, "path does not exist"),
    ("/v1/highlight", {"texts": ["a"], "terms": ["t"] * 51}, "terms: "),
])
def test_bad_fields_are_422_with_a_message_naming_them(api: httpx.Client, path: str, body: dict, says: str) -> None:
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert list(response.json()) == ["error"] and says in response.json()["error"]
    assert "Traceback" not in response.text


def test_malformed_json_is_422_and_a_body_over_the_limit_is_413(api: httpx.Client) -> None:
    broken = api.post("/v1/search", content=b'{"query": "wing",', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]
    huge = api.post("/v1/embed", content=b'{"texts": ["' + b"a" * (5 * 1024 * 1024) + b'"]}',
                    headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert api.get("/v1/search", params={"q": "wing", "k": 500}).status_code == 422


# ----- indexing jobs -----------------------------------------------------------------------------------


def test_an_indexing_job_reports_files_tokens_per_second_and_eta_then_its_report(api: httpx.Client,
                                                                                  tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "notes", {f"note{i:03d}.txt": f"Note {i} about wind tunnel test {i} " * 10
                                             for i in range(150)})
    response = api.post("/v1/index", json={"paths": [str(folder)]})
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    seen: list[dict] = []
    job = wait_for_job(api, job_id, seen)
    assert job["state"] == "done", job
    assert job["report"]["added"] == 150 and job["report"]["failed"] == 0
    reading = [p for p in seen if p["phase"] == "indexing"]  # stage 1: words
    assert reading and all(p["files_total"] == 150 for p in reading)
    encoding = [p for p in seen if p["phase"] == "encoding"]  # stage 2: meaning, at the model's speed
    assert any(p["tokens_per_s"] > 0 and p["eta_s"] is not None for p in encoding), (reading + encoding)[-3:]
    hits = api.get("/v1/search", params={"q": "wind tunnel note 7", "k": 1}).json()["hits"]
    assert hits and hits[0]["path"].startswith(str(folder))


def test_a_job_waits_while_another_process_writes_says_who_and_can_be_cancelled(api: httpx.Client, served: Served,
                                                                                tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "later", {"a.txt": "Ailerons roll the aircraft."})
    with WriterLock(served.index_dir, purpose="a terminal's index"):
        refused = wait_for_job(api, api.post("/v1/index", json={"paths": [str(folder)], "wait": False}).json()["id"])
        assert refused["state"] == "failed" and "a terminal's index" in refused["error"]
        job_id = api.post("/v1/index", json={"paths": [str(folder)]}).json()["id"]
        deadline = time.monotonic() + 60
        while (api.get(f"/v1/jobs/{job_id}").json()["progress"] or {}).get("phase") != "waiting":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "a terminal's index" in api.get(f"/v1/jobs/{job_id}").json()["progress"]["current"]
        assert api.delete(f"/v1/jobs/{job_id}").status_code == 202
        job = wait_for_job(api, job_id)
    assert job["state"] == "cancelled" and job["report"]["cancelled"] and job["report"]["added"] == 0
    assert api.get("/v1/jobs/no-such-job").status_code == 404
    assert api.delete("/v1/jobs/no-such-job").status_code == 404


# ----- embeddings, highlighting, opening ---------------------------------------------------------------


def test_embed_gives_exactly_the_encoders_three_outputs(api: httpx.Client, encoder) -> None:
    texts = ["Wing stall at a high angle of attack", "Jet noise comes from turbulent mixing."]
    got = api.post("/v1/embed", json={"texts": texts, "return_colbert": True}).json()
    expected = encoder.encode(texts, colbert=True)
    assert got["dim"] == encoder.dim == len(got["dense_vecs"][0])
    for position, want in enumerate(expected):
        np.testing.assert_allclose(got["dense_vecs"][position], want.dense, atol=1e-5)
        np.testing.assert_allclose(got["colbert_vecs"][position], want.colbert, atol=1e-5)
        assert got["lexical_weights"][position] == pytest.approx(encoder.lexical_text(want.sparse), abs=1e-5)
    assert "stall" in got["lexical_weights"][0]
    only_dense = api.post("/v1/embed", json={"texts": texts[:1], "return_sparse": False}).json()
    assert set(only_dense) == {"model", "dim", "dense_vecs"}


def test_highlight_cuts_texts_at_the_words_that_match_by_stem(api: httpx.Client) -> None:
    got = api.post("/v1/highlight", json={"texts": ["Wings stalled near the edge", "nothing"],
                                          "terms": ["wing", "stall"]}).json()
    assert got["segments"] == [["", "Wings", " ", "stalled", " near the edge"], ["nothing"]]


def test_open_starts_the_desktop_opener_for_indexed_files_only(api: httpx.Client, served: Served) -> None:
    stall = str(served.corpus / "stall.txt")
    assert api.post("/v1/open", json={"path": stall}).json()["action"] == "opened"
    assert api.post("/v1/open", json={"path": stall, "reveal": True}).json()["action"] == "shown in folder"
    refused = api.post("/v1/open", json={"path": "/etc/passwd"})
    assert refused.status_code == 404 and "not in the index" in refused.json()["error"]
    deadline = time.monotonic() + 10
    while len(served.opened_log.read_text().splitlines() if served.opened_log.exists() else []) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert served.opened_log.read_text().splitlines()[-2:] == [stall, str(served.corpus)]


# ----- start-up errors ---------------------------------------------------------------------------------


def test_a_busy_port_is_one_readable_line_and_exit_1(served: Served, lite_model_dir: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    process = start_serve(["--index", str(served.index_dir), "--port", str(served.port)],
                          server_env(tmp_path, lite_model_dir), tmp_path / "err")
    assert process.wait(START_TIMEOUT_S) == 1
    lines = (tmp_path / "err").read_text().splitlines()
    assert len(lines) == 1 and f"port {served.port}" in lines[0] and "--port" in lines[0], lines
    assert time.monotonic() - started < 30  # refused before the model loads


def test_another_host_is_served_only_when_named_and_with_a_warning(served: Served, lite_model_dir: Path,
                                                                    tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_serve(["--index", str(served.index_dir), "--host", "0.0.0.0", "--port", str(port)],
                              server_env(tmp_path, lite_model_dir), tmp_path / "err")
        assert process.wait(START_TIMEOUT_S) == 1
    err = (tmp_path / "err").read_text()
    assert "warning: serving on 0.0.0.0: other computers can reach this server" in err
    assert f"port {port} on 0.0.0.0 is already in use" in err


# ----- the search page in a real browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no Chromium and chromedriver on this machine (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the page itself at 1280x800, for the screenshot
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


def test_the_search_page_asks_for_the_token_once_then_shows_highlighted_hits(browser, served: Served,
                                                                             tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(served.url)
    token_box = wait.until(ec.visibility_of_element_located((By.ID, "token")))
    token_box.send_keys(served.token, Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "files"))
    browser.find_element(By.ID, "query").send_keys("how do wings stall", Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "results for"))
    first = browser.find_element(By.CSS_SELECTOR, "#results li")
    assert first.find_element(By.CLASS_NAME, "title").text == "stall.txt"
    assert [mark.text for mark in first.find_elements(By.TAG_NAME, "mark")] == ["stall"]  # the hit's terms
    assert browser.find_elements(By.CLASS_NAME, "by-meaning")  # a hit without the query's words says so
    assert "page 1" in first.find_element(By.CLASS_NAME, "place").text
    shot = tmp_path / "search-page-1280x800.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("DESKTOP_SEARCH_SCREENSHOTS"):  # how docs/screenshots/search-page-1280x800.png is made
        shutil.copy(shot, Path(os.environ["DESKTOP_SEARCH_SCREENSHOTS"]) / shot.name)

    first.find_element(By.XPATH, ".//button[text()='Show in folder']").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "stall.txt: shown in folder"))
    origins = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert origins and all(name.startswith(served.url) for name in origins), origins

    browser.refresh()  # the browser kept the token: no question this time
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "files"))
    assert not browser.find_element(By.ID, "token-form").is_displayed()
