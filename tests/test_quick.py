"""The quick search box, `--quick` and the tray, driven offscreen with pytest-qt and the keyboard alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_gui
from PySide6.QtCore import QProcess, Qt
from PySide6.QtGui import QGuiApplication
from test_gui import LOAD_TIMEOUT, drop

from desktop_app.gui.app import MainWindow
from desktop_app.gui.settings import WindowPrefs, open_qsettings, save_window_prefs

ini, window = test_gui.ini, test_gui.window  # the window's fixtures


@pytest.fixture
def launched(monkeypatch) -> list[list[str]]:
    """The commands the app starts (opening a file, showing a folder), recorded instead of run."""
    commands: list[list[str]] = []

    def record(program: str, arguments: list[str] = (), *rest: object) -> bool:
        commands.append([program, *arguments])
        return True

    monkeypatch.setattr(QProcess, "startDetached", staticmethod(record))
    return commands


def type_into_quick(qtbot, main: MainWindow, text: str):
    """Type ``text`` key by key into the quick box; returns the one answer the pause in typing brings."""
    with qtbot.waitSignal(main.quick.results_shown, timeout=60_000) as shown:
        qtbot.keyClicks(main.quick.box.query, text)
    return shown.args[0]


def test_keyboard_alone_finds_chooses_and_opens_the_right_hit(qtbot, window, aero_corpus, launched) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    window.show_quick()
    box = window.quick.box
    qtbot.waitUntil(lambda: box.isVisible() and box.query.hasFocus(), timeout=5000)
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert abs(box.geometry().center().x() - screen.center().x()) <= 1, "centred on the screen"
    result = type_into_quick(qtbot, window, "wing stall boundary layer")
    assert window.quick.request_id == 1, "one search after the pause in typing, as in the window"
    assert Path(result.hits[0].path).name == "stall.txt" and len(result.hits) >= 2
    assert box.hits.count() == len(result.hits) and box.chosen() == 0
    assert box.hits.item(0).text().startswith("stall.txt")
    for key in (Qt.Key.Key_Down, Qt.Key.Key_Down, Qt.Key.Key_Up):
        qtbot.keyClick(box.query, key)
    assert box.chosen() == 1 and box.query.text() == "wing stall boundary layer", "the text keeps the keys"
    qtbot.keyClick(box.query, Qt.Key.Key_Return)
    assert launched == [["xdg-open", result.hits[1].path]] and not box.isVisible()
    assert window.isVisible(), "the window the user had open stays"
    assert window.history.entries() == ["wing stall boundary layer"]


def test_ctrl_enter_shows_in_folder_and_escape_hides(qtbot, window, aero_corpus, launched) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    window.show_quick()
    result = type_into_quick(qtbot, window, "jet exhaust noise")
    qtbot.keyClick(window.quick.box.query, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert launched == [["xdg-open", str(Path(result.hits[0].path).parent)]]
    window.show_quick()
    assert window.quick.box.query.selectedText() == "jet exhaust noise", "typing replaces the last query"
    qtbot.keyClick(window.quick.box.query, Qt.Key.Key_Escape)
    assert not window.quick.box.isVisible() and launched == [["xdg-open", str(Path(result.hits[0].path).parent)]]


def test_the_box_goes_away_when_the_user_turns_to_another_window(qtbot, ini) -> None:
    main = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(main)
    main.show()
    main.show_quick()
    qtbot.waitUntil(main.quick.box.isActiveWindow, timeout=5000)
    main.activateWindow()
    qtbot.waitUntil(lambda: not main.quick.box.isVisible(), timeout=5000)
    assert main.isVisible()
    main.close()


def test_a_query_typed_before_the_index_opens_is_answered_once_it_does(qtbot, ini, aero_corpus) -> None:
    main = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(main)
    main.show_quick()
    qtbot.keyClicks(main.quick.box.query, "buckling shells")
    qtbot.waitUntil(lambda: "index is opening" in main.quick.box.status.text(), timeout=5000)
    with qtbot.waitSignal(main.quick.results_shown, timeout=LOAD_TIMEOUT) as shown:
        main.model_control.start_loading()
    assert shown.args[0].query == "buckling shells"
    qtbot.waitUntil(lambda: main.model_control.engine is not None, timeout=LOAD_TIMEOUT)
    main.close()


def test_with_no_window_and_no_tray_hiding_the_box_ends_the_app(qtbot, window) -> None:
    window.hide()
    window.show_quick()
    with qtbot.waitSignal(window.shut_down, timeout=30_000):
        qtbot.keyClick(window.quick.box.query, Qt.Key.Key_Escape)
    assert window.model_control.engine is None, "the index was closed on the way out"


def test_a_quick_launch_asks_the_running_instance_for_its_box(qtbot, tmp_path, aero_corpus) -> None:
    from desktop_app.gui.single_instance import SingleInstance, instance_name

    name = instance_name(tmp_path / "quick-index")
    first = SingleInstance(name)
    assert first.claim([])
    with qtbot.waitSignal(first.quick_wanted, timeout=10_000), \
            qtbot.assertNotEmitted(first.activated, wait=300):
        assert not SingleInstance(name).claim([], quick=True)
    with qtbot.waitSignals([first.quick_wanted, first.activated], timeout=10_000):
        assert not SingleInstance(name).claim([aero_corpus], quick=True)
    with qtbot.waitSignal(first.activated, timeout=10_000) as plain:
        assert not SingleInstance(name).claim([])
    assert plain.args == [[]], "a plain second launch still brings the window forward"
    first.release()


def test_the_quick_flag_shows_the_box_alone(tmp_path: Path) -> None:
    """`desktop-search-gui --quick` with no app running: the box shows, the window waits to be asked for."""
    code = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop_app.gui import app

qapp = QApplication(sys.argv)

def look() -> None:
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, app.MainWindow))
    print("shown:", sorted(w.objectName() or type(w).__name__ for w in QApplication.topLevelWidgets() if w.isVisible()))
    print("window:", window.isVisible())
    window.quit_app()

QTimer.singleShot(300, look)
sys.exit(app.run(["desktop-search-gui", "--quick"]))
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DESKTOP_SEARCH_HOME=str(tmp_path / "index"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "shown: ['quick']" in done.stdout and "window: False" in done.stdout, done.stdout


@pytest.fixture
def tray_window(qtbot, ini: Path, monkeypatch):
    """A window whose desktop shows tray icons and whose user chose to keep it running there."""
    from desktop_app.gui import app

    monkeypatch.setattr(app, "tray_available", lambda: True)
    save_window_prefs(open_qsettings(ini), WindowPrefs(keep_in_tray=True))
    main = MainWindow(open_qsettings(ini))
    qtbot.addWidget(main)
    with qtbot.waitSignal(main.model_control.ready, timeout=LOAD_TIMEOUT):
        main.show()
    yield main
    main.quit_app()


def test_the_tray_keeps_the_app_and_its_watchers_running_until_quit(qtbot, tray_window, aero_corpus) -> None:
    main = tray_window
    with qtbot.waitSignal(main.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(main, aero_corpus)
    qtbot.waitUntil(lambda: main.indexing.live_sync is not None, timeout=5000)
    tray = main.tray
    tray.refresh()
    assert not tray.pause_action.isEnabled(), "nothing is being indexed: nothing to pause"
    with qtbot.assertNotEmitted(main.shut_down):
        main.close()
    assert not main.isVisible() and main.indexing.live_sync is not None and main.model_control.engine is not None
    tray.quick_action.trigger()
    assert main.quick.box.isVisible()
    qtbot.keyClick(main.quick.box.query, Qt.Key.Key_Escape)
    assert not main.quick.box.isVisible() and main.model_control.engine is not None, "the tray keeps it alive"
    reports: list[object] = []
    main.indexing.finished.connect(reports.append)
    (aero_corpus / "flutter.txt").write_text("Flutter is a self-excited oscillation of the wing.")
    qtbot.waitUntil(lambda: any(r is not None and r.added == 1 for r in reports), timeout=30_000)  # live sync goes on
    tray.window_action.trigger()
    assert main.isVisible()
    with qtbot.waitSignal(main.shut_down, timeout=30_000):
        tray.quit_action.trigger()
    assert main.indexing.live_sync is None and main.model_control.engine is None


def test_a_job_that_has_ended_is_not_offered_for_pausing(qtbot, tray_window, monkeypatch) -> None:
    """The queue tells its listeners a job ended while it still holds it as its running job (a listener may
    read the engine it ran on): for that moment the window must not offer to pause it."""
    from desktop_app.core.jobs import Job, JobQueue

    ended = Job("done-job", "index", ["/docs"], state="done")
    monkeypatch.setattr(JobQueue, "running", property(lambda queue: ended))
    tray_window.tray.refresh()
    assert tray_window.indexing.paused_state() is None and not tray_window.tray.pause_action.isEnabled()


def test_the_settings_dialog_offers_the_tray_only_where_there_is_one(qtbot) -> None:
    from desktop_app.core import Settings
    from desktop_app.gui.settings import SettingsDialog

    with_tray = SettingsDialog(Settings(), prefs=WindowPrefs(keep_in_tray=True), has_tray=True)
    qtbot.addWidget(with_tray)
    assert with_tray.keep_in_tray.isEnabled() and with_tray.result_prefs() == WindowPrefs(keep_in_tray=True)
    without = SettingsDialog(Settings(), prefs=WindowPrefs(), has_tray=False)
    qtbot.addWidget(without)
    assert not without.keep_in_tray.isEnabled() and "no tray" in without.keep_in_tray.toolTip()


def test_the_cli_without_a_command_passes_quick_on(monkeypatch) -> None:
    """The packaged app's one executable is the CLI's: `desktop-search --quick` shows the box too."""
    from desktop_app.cli import main
    from desktop_app.gui import app

    asked: list[object] = []
    monkeypatch.setattr(app, "run", lambda argv=None: asked.append(argv) or 0)
    assert main(["--quick"]) == 0 and main([]) == 0
    assert asked == [["desktop-search", "--quick"], None]


def test_the_model_waits_for_the_quick_boxs_answer_to_a_query_typed_at_launch(qtbot, ini, aero_corpus, encoder,
                                                                              monkeypatch) -> None:
    """`--quick` on a cold start: the box's first answer comes by words before torch takes Python's lock."""
    import time

    from desktop_app.core.engine import Engine
    from desktop_app.gui import worker

    test_gui.index_before_launch(ini, aero_corpus, encoder)
    monkeypatch.setattr(worker, "FIRST_ANSWER_WAIT_S", 60.0)
    order = []
    load_model, search = Engine.load_model, Engine.search

    def recorded(engine) -> None:
        order.append("model")
        load_model(engine)

    def slow_first_search(engine, *args, **kwargs):  # long enough for a model that did not wait to load
        if not order:
            time.sleep(3)
        return search(engine, *args, **kwargs)

    monkeypatch.setattr(Engine, "load_model", recorded)
    monkeypatch.setattr(Engine, "search", slow_first_search)
    main = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(main)
    main.quick.results_shown.connect(lambda result: order.append(result.mode))
    main.show_quick()
    main.quick.box.query.setText("wing boundary layer heat")  # typed before the index is even open
    with qtbot.waitSignal(main.model_control.ready, timeout=LOAD_TIMEOUT):
        main.model_control.start_loading()
    assert order[:2] == ["keyword", "model"], order
    main.close()


def test_closing_while_the_model_waits_for_the_boxs_answer_ends_at_once(qtbot, ini, monkeypatch) -> None:
    """The loader holds the model back while the box answers a query typed at launch by its words; a close
    meanwhile neither waits out that pause nor loads the model (it had: two seconds, then the whole load,
    seconds more with BGE-M3 on a CPU, on an app the user had already closed)."""
    import time

    from desktop_app.core.engine import Engine
    from desktop_app.gui import worker
    from desktop_app.gui.quick import QuickSearch

    monkeypatch.setattr(worker, "FIRST_ANSWER_WAIT_S", 60.0)
    monkeypatch.setattr(QuickSearch, "run_search", lambda quick: None)  # the box's answer is still on its way
    loads = []
    monkeypatch.setattr(Engine, "load_model", lambda engine: loads.append(engine))
    main = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(main)
    main.show_quick()
    main.quick.box.query.setText("wing boundary layer heat")
    with qtbot.waitSignal(main.model_control.opened, timeout=LOAD_TIMEOUT):
        main.model_control.start_loading()
    started = time.monotonic()
    main.quit_app()
    assert time.monotonic() - started < 5.0
    assert loads == []
