"""The window's "Allow other apps to search": off by default, starts and stops `serve`'s server, shows the token."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings

from desktop_app.gui.app import MainWindow
from desktop_app.gui.settings import SettingsDialog, load_settings, open_qsettings

LOAD_TIMEOUT = 120_000


@pytest.fixture
def window(qtbot, tmp_path: Path, lite_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DESKTOP_SEARCH_API_TOKEN", raising=False)
    qsettings = open_qsettings(tmp_path / "settings.ini")
    for key, value in (("index_dir", str(tmp_path / "gui-index")), ("model", str(lite_model_dir)),
                       ("device", "cpu")):
        qsettings.setValue(key, value)
    main = MainWindow(qsettings)
    qtbot.addWidget(main)
    with qtbot.waitSignal(main.model_control.ready, timeout=LOAD_TIMEOUT):
        main.show()
    yield main
    main.close()


def test_allow_other_apps_to_search_starts_and_stops_the_server_on_the_windows_index(qtbot, window: MainWindow,
                                                                                     aero_corpus: Path) -> None:
    assert window.sharing.server is None and not window.settings.api_enabled  # off by default
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        window.indexing.add_paths([aero_corpus])

    window.apply_settings(dataclasses.replace(window.settings, api_enabled=True, api_port=0))
    url, token = window.sharing.server.url, window.sharing.token
    assert token == (window.settings.index_dir / "api-token").read_text().strip()
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/v1/status").status_code == 401
        hits = client.get("/v1/search", params={"q": "how do wings stall", "k": 1},
                          headers={"Authorization": f"Bearer {token}"}).json()["hits"]
    assert hits[0]["path"] == str(aero_corpus / "stall.txt")

    dialog = SettingsDialog(window.settings, window, url, token)
    assert dialog.api.isChecked() and dialog.api_token.text() == token and dialog.api_token.isReadOnly()
    assert dialog.result_settings().api_enabled
    restored = load_settings(QSettings(window.qsettings.fileName(), QSettings.Format.IniFormat))
    assert restored.api_enabled and restored.api_port == 0

    window.apply_settings(dataclasses.replace(window.settings, api_enabled=False))
    assert window.sharing.server is None and window.sharing.token == ""
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "v1/status", timeout=5)


def test_closing_the_window_stops_its_server(window: MainWindow) -> None:
    window.apply_settings(dataclasses.replace(window.settings, api_enabled=True, api_port=0))
    url = window.sharing.server.url
    assert httpx.get(url, timeout=30).status_code == 200  # the search page
    window.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)


def test_a_window_opened_with_the_setting_on_serves_at_once(qtbot, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DESKTOP_SEARCH_API_TOKEN", raising=False)
    qsettings = open_qsettings(tmp_path / "settings.ini")
    for key, value in (("index_dir", str(tmp_path / "gui-index")), ("api_enabled", "true"), ("api_port", "0")):
        qsettings.setValue(key, value)
    window = MainWindow(qsettings, autoload=False)
    qtbot.addWidget(window)
    try:
        response = httpx.get(window.sharing.server.url + "v1/status", timeout=30,
                             headers={"Authorization": f"Bearer {window.sharing.token}"})
        assert response.status_code == 503 and "try again" in response.json()["error"]  # no engine loaded yet
    finally:
        window.close()


def test_an_indexing_job_sent_to_the_windows_server_runs_in_the_windows_queue(qtbot, window: MainWindow,
                                                                              aero_corpus: Path) -> None:
    window.apply_settings(dataclasses.replace(window.settings, api_enabled=True, api_port=0))
    headers = {"Authorization": f"Bearer {window.sharing.token}"}
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as finished:
        response = httpx.post(window.sharing.server.url + "v1/index", json={"paths": [str(aero_corpus)]},
                              headers=headers, timeout=30)
        assert response.status_code == 202
    assert finished.args[0].added == 4, "the window saw the API's job end"
    assert window.folders_pane.tree.topLevelItem(0).text(1) == "4"
    job = httpx.get(window.sharing.server.url + f"v1/jobs/{response.json()['id']}", headers=headers,
                    timeout=30).json()
    assert job["state"] == "done" and job["report"]["added"] == 4
