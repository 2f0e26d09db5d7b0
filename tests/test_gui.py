"""The window, driven offscreen with pytest-qt: drop, index, search, preview, cancel, settings."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QTextDocument

from desktop_app.core.config import Settings, Weights
from desktop_app.gui.app import MainWindow
from desktop_app.gui.results import CardHtmlRole, HitRole, highlight_html
from desktop_app.gui.settings import load_settings, open_qsettings, save_settings

LOAD_TIMEOUT = 120_000


@pytest.fixture
def ini(tmp_path: Path, lite_model_dir: Path) -> Path:
    path = tmp_path / "settings.ini"
    qsettings = open_qsettings(path)
    qsettings.setValue("index_dir", str(tmp_path / "gui-index"))
    qsettings.setValue("model", str(lite_model_dir))
    qsettings.setValue("device", "cpu")
    qsettings.sync()
    return path


@pytest.fixture
def window(qtbot, ini: Path):
    main = MainWindow(open_qsettings(ini))
    qtbot.addWidget(main)
    with qtbot.waitSignal(main.model_control.ready, timeout=LOAD_TIMEOUT):
        main.show()
    yield main
    main.close()


def drop(window: MainWindow, *paths: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def notes_folder(parent: Path, name: str, count: int, template: str) -> Path:
    """``count`` small text files whose text is ``template`` formatted with their number."""
    folder = parent / name
    folder.mkdir()
    for i in range(count):
        (folder / f"{name}{i:03d}.txt").write_text(template.format(i=i))
    return folder


def drop_and_pause(qtbot, window: MainWindow, folder: Path):
    """Drop ``folder`` and press Pause at the first progress report; returns the slot to disconnect."""
    def pause_once(progress) -> None:
        if progress.phase == "indexing" and not window.indexing.jobs.paused:
            window.progress_pane.pause_button.click()

    window.indexing.progress.connect(pause_once)
    drop(window, folder)
    qtbot.waitUntil(lambda: window.indexing.jobs.paused, timeout=LOAD_TIMEOUT)
    return pause_once


def search(qtbot, window: MainWindow, text: str):
    with qtbot.waitSignal(window.searching.results_shown, timeout=60_000) as shown:
        window.search_bar.query.setText(text)
        qtbot.keyClick(window.search_bar.query, Qt.Key.Key_Return)
    return shown.args[0]


def test_dropped_folder_is_indexed_and_listed(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as finished:
        drop(window, aero_corpus)
    report = finished.args[0]
    assert report.added == 4 and not report.cancelled
    item = window.folders_pane.tree.topLevelItem(0)
    assert item.text(0) == aero_corpus.name and item.text(1) == "4" and item.text(2) == "4"
    assert "lite model" in window.windowTitle() and "CPU" in window.model_label.text()


def test_search_shows_hits_with_highlighted_terms_and_preview(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    result = search(qtbot, window, "turbulent jet noise")
    assert window.searching.results.rowCount() == len(result.hits) > 0
    first = window.searching.results.index(0)
    assert first.data(HitRole).path.endswith("noise.txt")
    card = first.data(CardHtmlRole)
    assert "background-color:#ffe28a" in card and "noise" in first.data(HitRole).terms
    with qtbot.waitSignal(window.searching.preview_shown, timeout=30_000):  # read on the search thread
        window.results_pane.view.setCurrentIndex(first)
    assert "Jet noise is produced" in window.preview_pane.browser.toPlainText()
    assert window.preview_pane.open_button.isEnabled()


def test_search_as_you_type_is_debounced(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    with qtbot.waitSignal(window.searching.results_shown, timeout=60_000) as shown:
        for prefix in ("b", "bu", "buck", "buckling shells"):
            window.search_bar.query.setText(prefix)
    assert shown.args[0].query == "buckling shells"
    assert window.searching.request_id == 1


def test_cancel_stops_the_worker(qtbot, window, tmp_path) -> None:
    folder = notes_folder(tmp_path, "note", 300, "Note {i} on compressor surge and rotating stall {i}.")
    cancelled = []
    cancel = window.progress_pane.cancel_button
    window.indexing.progress.connect(
        lambda p: p.phase == "indexing" and not cancelled and (cancelled.append(1), cancel.click()))
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as finished:
        drop(window, folder)
    report = finished.args[0]
    assert report.cancelled and report.added < 300
    assert not window.progress_pane.isVisible()


def test_pause_holds_the_run_until_resume(qtbot, window, tmp_path) -> None:
    folder = notes_folder(tmp_path, "memo", 200, "Memo {i} about fatigue cracks in wing spars {i}.")
    pause_once = drop_and_pause(qtbot, window, folder)
    with qtbot.assertNotEmitted(window.indexing.finished, wait=1500):
        pass
    assert window.progress_pane.pause_button.text() == "Resume"
    window.indexing.progress.disconnect(pause_once)
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as finished:
        window.progress_pane.pause_button.click()
    assert finished.args[0].added == 200 and not finished.args[0].cancelled


def test_settings_that_reopen_the_index_wait_for_the_run_in_progress(qtbot, window, tmp_path) -> None:
    folder = notes_folder(tmp_path, "spec", 200, "Spec {i}: rivet pitch and sealant cure time {i}.")
    pause_once = drop_and_pause(qtbot, window, folder)
    window.indexing.progress.disconnect(pause_once)
    engine = window.model_control.engine
    window.apply_settings(window.settings.with_(extract_workers=1))
    assert "apply when the current indexing run ends" in window.statusBar().currentMessage()
    assert window.model_control.engine is engine and window.indexing.running, "the run keeps its engine"
    with qtbot.waitSignal(window.model_control.ready, timeout=LOAD_TIMEOUT):
        window.progress_pane.cancel_button.click()
    assert window.model_control.engine is not engine and window.model_control.engine.settings.extract_workers == 1


def test_a_folder_that_is_gone_is_explained_not_queued(qtbot, window, tmp_path) -> None:
    with qtbot.waitSignal(window.error_shown) as shown:
        window.activate([str(tmp_path / "gone")])
    assert "does not exist" in shown.args[0] and not window.indexing.jobs.busy


def test_html_in_a_document_shows_as_text(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    payload = '<img src="http://x/y.png" onerror="alert(1)"> <a href="file:///etc/passwd">click wing stall</a>'
    (folder / "evil.md").write_text(f"Notes on wing stall. {payload}")
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, folder)
    search(qtbot, window, "wing stall")
    first = window.searching.results.index(0)
    card = first.data(CardHtmlRole)
    assert "<img" not in card and "<a href" not in card and "&lt;img" in card
    document = QTextDocument()
    document.setHtml(card)
    assert '<img src="http://x/y.png"' in document.toPlainText()
    with qtbot.waitSignal(window.searching.preview_shown, timeout=30_000):
        window.results_pane.view.setCurrentIndex(first)
    browser = window.preview_pane.browser
    assert "<a href=" in browser.toPlainText() and "<img" not in browser.toHtml().split("<body")[1]


def test_bad_query_is_explained_not_crashed(qtbot, window) -> None:
    window.search_bar.query.setText("?!?")
    qtbot.keyClick(window.search_bar.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "no words" in window.results_pane.header.text(), timeout=30_000)


def test_missing_model_is_shown_in_the_window(qtbot, tmp_path) -> None:
    qsettings = open_qsettings(tmp_path / "bad.ini")
    qsettings.setValue("index_dir", str(tmp_path / "idx"))
    qsettings.setValue("model", str(tmp_path / "no-such-model"))
    main = MainWindow(qsettings)
    qtbot.addWidget(main)
    with qtbot.waitSignal(main.error_shown, timeout=LOAD_TIMEOUT) as shown:
        main.show()
    assert "does not exist" in shown.args[0] and main.banner.isVisible()
    assert "no model" in main.windowTitle()
    main.close()


def test_settings_persist_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "persist.ini"
    chosen = Settings(index_dir=tmp_path / "my-index", model="/models/m3", device="cpu", dtype="bf16", chunk_tokens=256,
                      chunk_overlap=32, weights=Weights(0.5, 0.2, 0.2, 0.1), file_types=(".pdf", ".md"),
                      exclude_patterns=("build", "*.tmp"), watch_folders=False, ocr=False, ocr_max_pages=40,
                      ocr_max_seconds=90.0, extract_workers=2, api_enabled=True, api_port=8123)
    save_settings(open_qsettings(path), chosen)
    restored = load_settings(QSettings(str(path), QSettings.Format.IniFormat))
    for field in dataclasses.fields(Settings):
        assert getattr(restored, field.name) == getattr(chosen, field.name), field.name


def test_one_bad_stored_setting_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "bad.ini"
    qsettings = open_qsettings(path)
    save_settings(qsettings, Settings(index_dir=tmp_path / "my-index", dtype="bf16", chunk_tokens=256))
    qsettings.setValue("chunk_overlap", "9999")  # over half the chunk size: invalid
    qsettings.setValue("weights", "a,b")
    qsettings.sync()
    restored = load_settings(QSettings(str(path), QSettings.Format.IniFormat))
    assert restored.index_dir == tmp_path / "my-index", "a bad value must not send the app to another index"
    assert (restored.dtype, restored.chunk_tokens, restored.chunk_overlap) == ("bf16", 256, 64)


def test_highlighting_escapes_before_marking() -> None:
    marked = highlight_html("a <b>stall</b> & stalled", ["stall"])
    assert marked.count("<span") == 2 and "&lt;b&gt;" in marked and "&amp;" in marked


def test_window_shows_without_importing_torch(tmp_path: Path, ini: Path) -> None:
    code = f"""
import sys, time
started = time.perf_counter()
from PySide6.QtWidgets import QApplication
from desktop_app.gui.app import MainWindow
from desktop_app.gui.settings import open_qsettings
app = QApplication([])
window = MainWindow(open_qsettings({str(ini)!r}), autoload=False)
window.show()
app.processEvents()
elapsed = time.perf_counter() - started
assert window.isVisible()
assert "torch" not in sys.modules and "FlagEmbedding" not in sys.modules, "torch imported before it was needed"
window.close()
print(f"{{elapsed:.3f}}")
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # The child asserts that torch is not imported. The time: up to four launches until one shows within
    # 1.5 s. One takes 0.7 s alone, but on the suite's busy cores launches took 1.04-1.59 s (a fresh
    # clone's make test failed at 1.0 s); importing torch alone takes 3.5 s on the same machine.
    seconds: list[float] = []
    while len(seconds) < 4 and (not seconds or min(seconds) >= 1.5):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        seconds.append(float(done.stdout.strip().splitlines()[-1]))
    assert min(seconds) < 1.5, seconds


def test_search_while_indexing_returns_what_is_already_indexed(qtbot, window, aero_corpus, tmp_path) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    folder = notes_folder(tmp_path, "log", 200, "Flight log {i}: cruise at altitude, fuel burn nominal {i}.")
    pause_once = drop_and_pause(qtbot, window, folder)
    result = search(qtbot, window, "jet exhaust noise")
    assert result.hits[0].path.endswith("noise.txt")
    assert window.indexing.running
    window.indexing.progress.disconnect(pause_once)
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        window.progress_pane.cancel_button.click()


def test_a_locked_index_is_waited_for_saying_who_holds_it(qtbot, window, aero_corpus) -> None:
    from desktop_app.core.storage.lock import WriterLock

    holder = WriterLock(window.settings.index_dir, purpose="desktop-search index").acquire()
    drop(window, aero_corpus)
    qtbot.waitUntil(lambda: "Waiting for the index" in window.progress_pane.label.text(), timeout=LOAD_TIMEOUT)
    assert "desktop-search index" in window.progress_pane.label.text() and "pid" in window.progress_pane.label.text()
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as finished:
        holder.release()
    assert finished.args[0].added == 4


def test_a_file_saved_into_an_indexed_folder_is_found_without_asking(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    with qtbot.waitSignal(window.indexing.finished, timeout=30_000) as synced:
        (aero_corpus / "flutter.txt").write_text("Flutter is a self-excited oscillation of the wing in the airflow.")
    assert synced.args[0].added == 1
    result = search(qtbot, window, "self-excited oscillation flutter")
    assert result.hits[0].path.endswith("flutter.txt")


def test_an_unplugged_folder_is_shown_offline_and_kept(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    aero_corpus.rename(aero_corpus.with_name("elsewhere"))
    qtbot.waitUntil(lambda: "(offline)" in window.folders_pane.tree.topLevelItem(0).text(0), timeout=15_000)
    assert window.folders_pane.tree.topLevelItem(0).text(1) == "4"
    assert search(qtbot, window, "jet noise").hits[0].path.endswith("noise.txt")


def test_removing_a_folder_runs_in_the_worker_and_empties_the_list(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    window.folders_pane.tree.setCurrentItem(window.folders_pane.tree.topLevelItem(0))
    with qtbot.waitSignal(window.indexing.finished, timeout=30_000) as finished:
        window.indexing.remove_selected()
    assert finished.args[0].removed == 4 and window.folders_pane.tree.topLevelItemCount() == 0


@pytest.fixture
def first_run(tmp_path: Path, lite_model_dir: Path, monkeypatch) -> Path:
    """Settings of a first launch: no model chosen, an empty Hugging Face cache."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("DESKTOP_SEARCH_MODEL", raising=False)
    path = tmp_path / "first-run.ini"
    qsettings = open_qsettings(path)
    qsettings.setValue("index_dir", str(tmp_path / "first-index"))
    qsettings.setValue("device", "cpu")
    qsettings.sync()
    return path


def open_window(qtbot, ini: Path) -> MainWindow:
    main = MainWindow(open_qsettings(ini))
    qtbot.addWidget(main)
    with qtbot.waitSignal(main.model_control.ready, timeout=LOAD_TIMEOUT):
        main.show()
    return main


def test_offline_first_run_uses_the_lite_model_and_says_so(qtbot, first_run, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main = open_window(qtbot, first_run)
    assert "lite model" in main.windowTitle()
    assert main.banner.isVisible() and "Offline (HF_HUB_OFFLINE is set)" in main.banner.text()
    assert main.banner.property("notice") is True, "a notice, not shown as an error"
    assert not main.model_offer.isVisible()
    main.close()


def test_first_run_download_switches_to_the_model_and_re_encodes_folders(qtbot, first_run, monkeypatch,
                                                                          aero_corpus) -> None:
    from test_download import fake_hub_fetch

    from desktop_app.core.model import download
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("FAKE_HUB_DELAY", "0.01")
    monkeypatch.setattr(download, "fetch_snapshot", fake_hub_fetch)
    monkeypatch.setattr(download, "expected_bytes", lambda repo_id: 91_000_000)
    main = open_window(qtbot, first_run)
    with qtbot.waitSignal(main.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(main, aero_corpus)
    assert main.model_offer.isVisible() and "lite model" in main.windowTitle()
    steps: list[int] = []
    main.model_offer.worker.progress.connect(lambda done, total: steps.append(done))
    reports: list[object] = []
    main.indexing.finished.connect(reports.append)  # the watcher's catch-up of the new folder may run first
    main.model_offer.download_button.click()
    qtbot.waitUntil(lambda: main.windowTitle().startswith("Desktop Search — BAAI/bge-m3")
                    and any(r is not None and r.added == 4 for r in reports), timeout=LOAD_TIMEOUT)
    assert len(set(steps)) >= 3 and not main.model_offer.isVisible()
    # the folders encoded by the lite model were re-encoded with the new one (added == 4 above)
    assert main.settings.model == "BAAI/bge-m3"
    main.close()


def test_not_now_is_remembered(qtbot, first_run, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    main = open_window(qtbot, first_run)
    assert main.model_offer.isVisible()
    main.model_offer.later_button.click()
    main.close()
    again = open_window(qtbot, first_run)
    assert not again.model_offer.isVisible()
    again.close()


def test_about_names_the_model_and_the_versions_of_torch_and_qt(qtbot, window) -> None:
    from importlib import metadata

    from PySide6.QtCore import qVersion

    from desktop_app.gui.about import about_html

    text = about_html(window.model_control.engine, str(window.settings.index_dir), window.qsettings.fileName())
    assert "bge-m3-lite (lite model) on CPU" in text and str(window.model_control.engine.spec.path) in text
    assert metadata.version("torch") in text and qVersion() in text and "FlagEmbedding" in text


def test_the_status_line_stops_saying_loading_once_the_model_is_ready(qtbot, window) -> None:
    """The status bar went on saying "loading model … on CPU…" for eight seconds after the model label showed
    it loaded."""
    message = window.statusBar().currentMessage()
    assert "loading" not in message and window.model_control.engine.describe() in message, message


def test_a_second_launch_hands_its_folder_to_the_first_window(qtbot, window, aero_corpus, tmp_path) -> None:
    from desktop_app.gui.single_instance import SingleInstance, instance_name

    name = instance_name(tmp_path / "some-index")
    first = SingleInstance(name)
    assert first.claim([])
    first.activated.connect(window.activate)
    window.showMinimized()
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as finished:
        assert not SingleInstance(name).claim([aero_corpus])
    assert finished.args[0].added == 4 and not window.isMinimized()
    first.release()


def test_a_crashed_instance_leaves_no_stale_claim(qtbot, tmp_path) -> None:
    from desktop_app.gui.single_instance import SingleInstance, instance_name

    name = instance_name(tmp_path / "crashed-index")
    crashed = SingleInstance(name)
    assert crashed.claim([])
    crashed.server.close()
    successor = SingleInstance(name)
    assert successor.claim([]), "nobody answers, so this launch becomes the instance"
    successor.release()


def test_a_real_second_process_exits_and_passes_its_folder(qtbot, tmp_path, aero_corpus) -> None:
    from desktop_app.gui.single_instance import SingleInstance, instance_name

    index_dir = tmp_path / "shared-index"
    first = SingleInstance(instance_name(index_dir))
    assert first.claim([])
    env = dict(os.environ, DESKTOP_SEARCH_HOME=str(index_dir), XDG_CONFIG_HOME=str(tmp_path / "config"))
    code = "import sys; from desktop_app.gui.app import run; sys.exit(run(['desktop-search-gui', sys.argv[1]]))"
    with qtbot.waitSignal(first.activated, timeout=60_000) as activated:
        second = subprocess.Popen([sys.executable, "-c", code, str(aero_corpus)], env=env)
    assert second.wait(timeout=60) == 0
    assert activated.args[0] == [str(aero_corpus)]
    first.release()


def test_window_geometry_is_restored_at_the_next_start(qtbot, ini: Path) -> None:
    first = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(first)
    first.show()
    first.setGeometry(40, 50, 900, 530)
    first.close()
    second = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(second)
    assert second.height() == 530, "the default would be 800"
    assert second.width() >= 790, "restored as wide as the 800-pixel offscreen screen allows"
    second.close()


def test_the_live_sync_setting_starts_and_stops_watching(qtbot, window, aero_corpus) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    # Watches start on the watcher's own thread (the window never stats a folder), within a tick.
    indexing = window.indexing
    qtbot.waitUntil(lambda: indexing.live_sync is not None and str(aero_corpus) in indexing.live_sync.watched(),
                    timeout=5000)
    window.apply_settings(window.settings.with_(watch_folders=False))
    assert indexing.live_sync is None
    window.apply_settings(window.settings.with_(watch_folders=True))
    qtbot.waitUntil(lambda: indexing.live_sync is not None and str(aero_corpus) in indexing.live_sync.watched(),
                    timeout=5000)


def test_markup_in_file_names_is_shown_literally(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "<b>bold"
    folder.mkdir()
    (folder / "<img src=x>.txt").write_text("Landing gear shimmy dampers.")
    (folder / "<i>broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, folder)
    for label in (window.banner, window.model_label, window.progress_pane.label):
        assert label.textFormat() == Qt.TextFormat.PlainText
    window.show_banner(f"Could not open {folder / '<img src=x>.txt'}")
    assert window.banner.text().endswith("<img src=x>.txt")
    tip = window.folders_pane.tree.topLevelItem(0).toolTip(0)
    assert "&lt;b&gt;bold" in tip and "<b>" not in tip
    problem = window.folders_pane.problems.item(0)
    assert problem.text().startswith("<i>broken.pdf") and "&lt;i&gt;" in problem.toolTip()
    card = search(qtbot, window, "shimmy damper")
    assert card.hits and "&lt;img src=x&gt;.txt" in window.searching.results.index(0).data(CardHtmlRole)


def test_choosing_another_model_offers_a_rebuild_and_never_mixes_models(qtbot, window, aero_corpus, tmp_path,
                                                                        lite_model_dir, monkeypatch) -> None:
    import shutil

    from PySide6.QtWidgets import QMessageBox

    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    other = tmp_path / "other-model"
    shutil.copytree(lite_model_dir, other)
    (other / "colbert_linear.pt").write_bytes((other / "colbert_linear.pt").read_bytes() + b"\0")
    with qtbot.waitSignal(window.model_control.ready, timeout=LOAD_TIMEOUT):
        window.apply_settings(window.settings.with_(model=str(other), dtype="fp32"))  # a new model, not a probe
    assert "the settings name other-model" in window.banner.text() and window.rebuild_button.isVisible()
    assert window.rebuild_action.isEnabled()
    assert window.model_control.engine.spec.path == lite_model_dir, "searches keep the model the index was built with"
    assert search(qtbot, window, "jet noise").hits[0].path.endswith("noise.txt")
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    reports: list[object] = []
    window.indexing.finished.connect(reports.append)
    window.rebuild_button.click()
    qtbot.waitUntil(lambda: any(r is not None and r.added == 4 for r in reports), timeout=LOAD_TIMEOUT)
    assert window.model_control.engine.spec.path == other and not window.rebuild_button.isVisible()
    assert search(qtbot, window, "jet noise").hits[0].path.endswith("noise.txt")


def test_errors_shown_in_the_window_go_to_the_log_file_named_in_about(qtbot, window, tmp_path) -> None:
    import logging

    from desktop_app.core.logfile import start_logging
    from desktop_app.gui.about import about_html

    path = start_logging(tmp_path / "logs")
    try:
        window.show_banner("Indexing stopped: the disk is full")
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "Indexing stopped: the disk is full" in path.read_text()
        assert str(tmp_path / "logs") in about_html(window.model_control.engine, "idx", "settings.ini", str(path))
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "baseFilename", None) == str(path):
                logging.getLogger().removeHandler(handler)
                handler.close()


def test_a_full_disk_stops_indexing_with_one_banner_not_a_dialog_per_file(qtbot, window, tmp_path,
                                                                          monkeypatch) -> None:
    import sqlite3

    from PySide6.QtWidgets import QMessageBox

    from desktop_app.core.storage.store import Store

    dialogs: list[tuple] = []
    for name in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, lambda *args, **kwargs: dialogs.append(args))
    original = Store.replace_file
    calls: list[int] = []

    def fills_the_disk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "replace_file", fills_the_disk)
    banners: list[str] = []
    window.indexing.banner.connect(lambda text, notice: banners.append(text))
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT) as done:
        drop(window, notes_folder(tmp_path, "full", 30, "Note {i} about turbine blade cooling."))
    assert done.args[0] is None
    assert len(banners) == 1 and banners[0].startswith(f"Indexing stopped: the disk holding "
                                                       f"{window.settings.index_dir} is full"), banners
    assert window.banner.isVisible() and window.banner.text() == banners[0] and not dialogs


def test_cards_show_bars_only_for_the_channels_the_ranking_used(qtbot, window, aero_corpus) -> None:
    from desktop_app.gui.results import bars

    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    result = search(qtbot, window, "jet noise")
    assert window.searching.results.channels == result.channels == ["dense", "keyword"]
    hit = result.hits[0]
    assert hit.scores["sparse"] is not None, "computed, but the lite model's fusion leaves it out"
    assert [name for name, _ in bars(hit.scores, window.searching.results.channels)] == ["dense", "keyword"]


def test_filter_row_chips_typed_operators_and_more_like_this(qtbot, window, aero_corpus, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    (aero_corpus / "flutter.md").write_text("Wing flutter couples bending and torsion of the wing.")
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    qtbot.waitUntil(lambda: window.search_bar.folder_box.count() == 2, timeout=5000)  # "" and the folder
    window.search_bar.type_box.setCurrentText("md")
    result = search(qtbot, window, "wing stall")
    assert [Path(h.path).name for h in result.hits] == ["flutter.md"]
    chips = [window.search_bar.chips.itemAt(i).widget().text() for i in range(window.search_bar.chips.count())]
    assert chips == ["ext:md  ✕"]
    with qtbot.waitSignal(window.searching.results_shown, timeout=60_000) as shown:
        window.search_bar.chips.itemAt(0).widget().click()  # one click clears the filter
    assert window.search_bar.type_box.currentText() == "" and len(shown.args[0].hits) > 1
    result = search(qtbot, window, "wing ext:pdf")
    assert result.hits == [] and "no indexed file matches ext:pdf" in window.results_pane.header.text()
    assert any("ext:pdf" in window.search_bar.chips.itemAt(i).widget().text()
               for i in range(window.search_bar.chips.count()))
    window.search_bar.query.setText("wing after:yesterday")
    qtbot.keyClick(window.search_bar.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "After: needs a date" in window.results_pane.header.text(), timeout=30_000)
    result = search(qtbot, window, "wing stall")
    first = result.hits[0]
    with qtbot.waitSignal(window.searching.results_shown, timeout=60_000) as shown:
        window.searching.more_like(first)
    assert shown.args[0].mode == "like" and all(h.path != first.path for h in shown.args[0].hits)
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: seen.append(text))
    window.searching.show_syntax_help()
    assert seen and "ext:pdf" in seen[0] and "after:2024-01-31" in seen[0]


def test_files_view_lists_filters_and_acts_on_a_file(qtbot, window, aero_corpus, monkeypatch) -> None:
    from desktop_app.gui import files_view

    (aero_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    # Not watched: the watcher's catch-up of a new folder may land after "remove" on a slow machine and
    # rightly index the file again (it is still on disk); this test is about the Files view.
    window.apply_settings(window.settings.with_(watch_folders=False))
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    assert window.indexing.live_sync is None
    monkeypatch.setattr(files_view, "PAGE", 2)  # pages of two rows: the view fetches more as it needs them
    window.show_files()
    dialog = window.files_dialog
    model = dialog.model
    qtbot.waitUntil(lambda: len(model.rows) >= 2, timeout=10_000)
    while model.canFetchMore() or model.waiting:
        model.fetchMore()
        qtbot.waitUntil(lambda: not model.waiting, timeout=10_000)
    assert len(model.rows) == 5 and model.complete
    states = {Path(row["path"]).name: row["state"] for row in model.rows}
    assert states["broken.pdf"] == "failed" and states["noise.txt"] == "indexed"
    dialog.filter.setText("NOISE")
    qtbot.waitUntil(lambda: [Path(r["path"]).name for r in model.rows] == ["noise.txt"], timeout=10_000)
    dialog.filter.clear()
    dialog.failed_only.setChecked(True)
    qtbot.waitUntil(lambda: [Path(r["path"]).name for r in model.rows] == ["broken.pdf"], timeout=10_000)
    assert "truncated" in model.data(model.index(0, 5), Qt.ItemDataRole.ToolTipRole) or model.rows[0]["reason"]
    dialog.failed_only.setChecked(False)
    dialog.filter.setText("noise")
    qtbot.waitUntil(lambda: len(model.rows) == 1, timeout=10_000)
    dialog.table.selectRow(0)
    reports: list[object] = []
    window.indexing.finished.connect(reports.append)
    dialog.act(dialog.reindex_file)
    qtbot.waitUntil(lambda: any(r is not None and r.updated == 1 for r in reports), timeout=LOAD_TIMEOUT)
    qtbot.waitUntil(lambda: len(model.rows) == 1, timeout=10_000)  # reloaded after the run
    dialog.table.selectRow(0)
    dialog.act(dialog.remove_file)
    qtbot.waitUntil(lambda: any(r is not None and r.removed == 1 for r in reports), timeout=LOAD_TIMEOUT)
    qtbot.waitUntil(lambda: model.rows == [] and model.complete, timeout=10_000)


def test_window_filter_row_folder_and_dates_and_typed_combinations(qtbot, window, aero_corpus, tmp_path) -> None:
    import os
    import time

    other = tmp_path / "other"
    other.mkdir()
    (other / "stall-old.txt").write_text("Wing stall at the angle of attack, an old report.")
    old = time.mktime((2023, 6, 1, 12, 0, 0, 0, 0, -1))
    os.utime(other / "stall-old.txt", (old, old))
    for folder in (aero_corpus, other):
        with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
            drop(window, folder)
    qtbot.waitUntil(lambda: window.search_bar.folder_box.count() == 3, timeout=5000)
    bar = window.search_bar
    bar.folder_box.setCurrentText(str(other))
    assert [Path(h.path).name for h in search(qtbot, window, "wing stall").hits] == ["stall-old.txt"]
    bar.folder_box.setCurrentText("")
    bar.before_edit.setText("2024-01-01")
    assert [Path(h.path).name for h in search(qtbot, window, "wing stall").hits] == ["stall-old.txt"]
    bar.before_edit.clear()
    bar.after_edit.setText("2024-01-01")
    assert "stall-old.txt" not in [Path(h.path).name for h in search(qtbot, window, "wing stall").hits]
    bar.after_edit.clear()
    result = search(qtbot, window, '"angle of attack" -boundary ext:txt before:2024-01-01')
    assert [Path(h.path).name for h in result.hits] == ["stall-old.txt"]
    chips = [bar.chips.itemAt(i).widget().text() for i in range(bar.chips.count())]
    assert chips == ["ext:txt  ✕", "before:2024-01-01  ✕"]
    result = search(qtbot, window, '"angle of attack" -old -boundary')
    assert all(hit.without_phrase for hit in result.hits) and "every hit holds the excluded" in \
        window.results_pane.header.text()
    assert "without the exact phrase" in window.searching.results.data(window.searching.results.index(0), CardHtmlRole)


def test_cards_name_slides_and_sheets_and_mark_ocr_text() -> None:
    from desktop_app.core.search.results import Hit
    from desktop_app.gui.results import card_html, preview_html

    slide = Hit("/docs/deck.pptx", 3, 0.9, {"dense": 0.9}, "Dredging the silt basin", ["silt"], 1, 0, 20,
                unit="slide")
    scan = Hit("/docs/receipt.png", 1, 0.8, {"dense": 0.8}, "Kitchen water heater", [], 2, 0, 20, unit="image",
               ocr=True)
    assert "slide 3" in card_html(slide) and "OCR" not in card_html(slide)
    assert "image" in card_html(scan) and "text read by OCR" in card_html(scan)
    html = preview_html("/docs/book.xlsx", 2, "", "Fuel | 1200", "", [], [(7, 3, "Crew")], "sheet")
    assert "sheet 2" in html and ">sheet 3</a>" in html


def index_before_launch(ini: Path, corpus: Path, encoder) -> None:
    """Index ``corpus`` into the window's index folder before the window starts."""
    from desktop_app.core.backends.local.index import LocalIndex
    from desktop_app.core.ingest.indexer import Indexer

    settings = load_settings(open_qsettings(ini))
    index = LocalIndex.open(settings.index_dir, create=True)
    Indexer(index, encoder, settings).run([corpus])
    index.close()


def test_a_query_typed_at_launch_is_answered_by_words_then_reranked_in_place(qtbot, ini, aero_corpus, encoder,
                                                                            monkeypatch) -> None:
    import threading

    from desktop_app.core.engine import Engine
    from desktop_app.gui.results import PathRole

    index_before_launch(ini, aero_corpus, encoder)
    release = threading.Event()
    load_model = Engine.load_model

    def held_back(engine) -> None:  # the model loads only when the test says so
        release.wait(60)
        load_model(engine)

    monkeypatch.setattr(Engine, "load_model", held_back)
    main = MainWindow(open_qsettings(ini))
    qtbot.addWidget(main)
    main.search_bar.query.setText("wing boundary layer heat")  # typed before the index is even open
    with qtbot.waitSignal(main.searching.results_shown, timeout=60_000) as first:
        main.show()
    by_words = first.args[0]
    assert by_words.mode == "keyword" and by_words.note.startswith("ranked by words") and len(by_words.hits) >= 2
    assert "ranked by words" in main.results_pane.header.text()
    main.results_pane.view.setCurrentIndex(main.searching.results.index(1))
    selected = main.results_pane.view.currentIndex().data(PathRole)
    with qtbot.waitSignal(main.searching.results_shown, timeout=LOAD_TIMEOUT) as second:
        release.set()
    by_meaning = second.args[0]
    assert by_meaning.mode == "hybrid" and not by_meaning.note
    assert main.results_pane.view.currentIndex().data(PathRole) == selected, "the selection stays on the same hit"
    main.close()


def test_the_model_waits_for_the_answer_to_a_query_typed_at_launch(qtbot, ini, aero_corpus, encoder,
                                                                   monkeypatch) -> None:
    """Importing torch holds Python's lock for seconds: it starts only once the words' answer is shown."""
    from desktop_app.core.engine import Engine
    from desktop_app.gui import worker

    index_before_launch(ini, aero_corpus, encoder)
    monkeypatch.setattr(worker, "FIRST_ANSWER_WAIT_S", 60.0)
    order = []
    load_model = Engine.load_model

    def recorded(engine) -> None:
        order.append("model")
        load_model(engine)

    monkeypatch.setattr(Engine, "load_model", recorded)
    search = Engine.search

    def slow_first_search(engine, *args, **kwargs):  # long enough for a model that did not wait to load
        if not order:
            time.sleep(3)
        return search(engine, *args, **kwargs)

    monkeypatch.setattr(Engine, "search", slow_first_search)
    main = MainWindow(open_qsettings(ini))
    qtbot.addWidget(main)
    main.searching.results_shown.connect(lambda result: order.append(result.mode))
    main.search_bar.query.setText("wing boundary layer heat")
    with qtbot.waitSignal(main.model_control.ready, timeout=LOAD_TIMEOUT):
        main.show()
    assert order[:2] == ["keyword", "model"], order
    main.close()


def test_a_stale_type_ahead_search_is_dropped_before_it_runs(qtbot) -> None:
    """Typing queues one search per pause; only the newest still waiting is worth running."""
    from desktop_app.gui.worker import SearchWorker

    class CountingEngine:
        def __init__(self) -> None:
            self.queries: list[str] = []

        def search(self, query: str, **options: object) -> str:
            self.queries.append(query)
            return f"result for {query}"

    newest = 3
    worker, engine = SearchWorker(newest=lambda: newest), CountingEngine()
    answered: list[tuple[int, object]] = []
    worker.done.connect(lambda request, result: answered.append((request, result)))
    for request, query in ((1, "w"), (2, "wi"), (3, "wing")):
        worker.search(request, engine, query, {})
    assert engine.queries == ["wing"] and answered == [(3, "result for wing")]


def test_a_model_that_finishes_loading_after_the_window_closed_is_closed_not_used(qtbot, ini, aero_corpus, encoder,
                                                                                  monkeypatch) -> None:
    """Closing waits for a load under way; the engine it hands over afterwards must not come back to life."""
    import threading

    from desktop_app.core.engine import Engine

    index_before_launch(ini, aero_corpus, encoder)
    started, release = threading.Event(), threading.Event()
    load_model = Engine.load_model

    def held_back(engine) -> None:
        started.set()
        release.wait(60)
        load_model(engine)

    monkeypatch.setattr(Engine, "load_model", held_back)
    main = MainWindow(open_qsettings(ini))
    qtbot.addWidget(main)
    readied = []
    main.model_control.ready.connect(lambda *args: readied.append(args))
    main.show()
    qtbot.waitUntil(started.is_set, timeout=LOAD_TIMEOUT)
    threading.Timer(0.5, release.set).start()  # the load ends while close() waits for it
    main.close()
    qtbot.wait(300)  # the loader's queued "loaded" reaches the closed window's event loop now
    assert readied == [] and main.model_control.engine is None and main.model_control.search_engine is None


def test_the_line_after_adding_a_folder_says_what_was_added(qtbot, window, aero_corpus) -> None:
    """The watcher catches up with a folder it starts watching: a run that finds nothing changed must not
    replace "4 added" with "0 added, 4 unchanged" (seen at a new user's first drop)."""
    reports = []
    window.indexing.finished.connect(reports.append)
    drop(window, aero_corpus)
    qtbot.waitUntil(lambda: any(r is not None and r.added == 4 for r in reports), timeout=LOAD_TIMEOUT)
    qtbot.wait(4000)  # the watcher's catch-up run (a tick, a quiet second, a scan) ends within this
    assert window.statusBar().currentMessage().startswith("Indexed: 4 added"), (
        window.statusBar().currentMessage(), reports)
