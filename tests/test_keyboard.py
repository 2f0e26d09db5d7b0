"""The window at the keyboard: every menu action has a key that its tooltip shows, hits are reached,
opened and revealed by keys alone, and recent searches are offered as the user types."""

from __future__ import annotations

from pathlib import Path

import test_gui
import test_quick
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication
from test_gui import LOAD_TIMEOUT, drop, search

from desktop_app.gui.app import MainWindow
from desktop_app.gui.history import MAX_SEARCHES, SearchHistory
from desktop_app.gui.settings import SettingsDialog, load_window_prefs, open_qsettings

ini, window, launched = test_gui.ini, test_gui.window, test_quick.launched  # fixtures shared with those tests
CTRL = Qt.KeyboardModifier.ControlModifier


def menu_actions(main: MainWindow) -> list:
    return [action for menu in main.menuBar().actions() for action in menu.menu().actions() if not action.isSeparator()]


def test_every_menu_action_has_its_own_key_shown_in_its_tooltip(qtbot, ini) -> None:
    main = MainWindow(open_qsettings(ini), autoload=False)
    qtbot.addWidget(main)
    actions = menu_actions(main)
    names = {action.text().replace("&", "") for action in actions}
    assert {"Focus search", "Next hit", "Previous hit", "Open", "Show in folder", "Preview", "Filters", "Add folder…",
            "Pause or resume", "Settings…", "Quit"} <= names
    keys = []
    for action in actions:
        key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert key, f"{action.text()} has no key"
        assert f"({key})" in action.toolTip() and action.statusTip() == action.toolTip(), action.text()
        keys.extend(shortcut.toString() for shortcut in action.shortcuts())
    assert len(keys) == len(set(keys)), "each key does one thing"
    assert "Ctrl+Shift+A" in main.folders_pane.add_button.toolTip()
    assert "Ctrl+Shift+P" in main.progress_pane.pause_button.toolTip()
    main.close()


def test_ctrl_q_in_the_search_box_ends_the_app(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    with qtbot.waitSignal(window.shut_down, timeout=30_000):
        qtbot.keyClick(window.search_bar.query, Qt.Key.Key_Q, CTRL)
    assert not window.isVisible()


def test_hits_are_chosen_opened_and_revealed_by_keys_alone(qtbot, window, aero_corpus, launched) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    query = window.search_bar.query
    qtbot.keyClick(window.results_pane.view, Qt.Key.Key_F, CTRL)
    assert QApplication.focusWidget() is query
    result = search(qtbot, window, "wing stall boundary layer")
    with qtbot.waitSignal(window.searching.preview_shown, timeout=30_000):
        qtbot.keyClick(query, Qt.Key.Key_Down, CTRL)
    assert window.results_pane.view.currentIndex().row() == 0
    assert "Wing stall" in window.preview_pane.browser.toPlainText()
    for key in (Qt.Key.Key_Down, Qt.Key.Key_Down, Qt.Key.Key_Up):
        qtbot.keyClick(query, key, CTRL)
    assert window.results_pane.view.currentIndex().row() == 1 and QApplication.focusWidget() is query
    qtbot.keyClick(query, Qt.Key.Key_O, CTRL)
    qtbot.keyClick(query, Qt.Key.Key_Return, CTRL)
    second = Path(result.hits[1].path)
    assert launched == [["xdg-open", str(second)], ["xdg-open", str(second.parent)]]
    qtbot.keyClick(query, Qt.Key.Key_P, CTRL)
    assert QApplication.focusWidget() is window.preview_pane.browser
    qtbot.keyClick(window.preview_pane.browser, Qt.Key.Key_F, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert QApplication.focusWidget() is window.search_bar.type_box
    qtbot.keyClick(window.search_bar.type_box, Qt.Key.Key_P, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert window.statusBar().currentMessage() == "Nothing is being indexed" and not window.indexing.jobs.paused


def test_a_search_is_remembered_when_settled_on_and_offered_as_one_types(qtbot, window, aero_corpus,
                                                                        launched) -> None:
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    with qtbot.waitSignal(window.searching.results_shown, timeout=60_000):
        qtbot.keyClicks(window.search_bar.query, "jet noise")
    assert window.history.entries() == [], "typing alone is not settling on a search"
    qtbot.keyClick(window.search_bar.query, Qt.Key.Key_Return)
    search(qtbot, window, "heat shield")
    window.results_pane.view.setCurrentIndex(window.searching.results.index(0))
    window.searching.open_current()  # opening a hit settles on its search too
    search(qtbot, window, "jet noise")
    assert window.history.entries() == ["jet noise", "heat shield"], "most recent first, each once"
    again = SearchHistory(open_qsettings(window.qsettings.fileName()))
    assert again.entries() == ["jet noise", "heat shield"], "kept across restarts"
    window.search_bar.query.clear()
    qtbot.keyClicks(window.search_bar.query, "SHI")
    completer = window.search_bar.query.completer()
    qtbot.waitUntil(lambda: completer.popup().isVisible(), timeout=5000)
    assert completer.completionCount() == 1 and completer.currentCompletion() == "heat shield"


def test_the_history_is_bounded_cleared_and_turned_off(qtbot, window, monkeypatch) -> None:
    history = window.history
    for number in range(MAX_SEARCHES + 10):
        history.record(f"query {number}")
    assert len(history.entries()) == MAX_SEARCHES and history.entries()[0] == f"query {MAX_SEARCHES + 9}"

    def clear_then_cancel(dialog: SettingsDialog) -> int:
        next(button for button in dialog.findChildren(type(window.rebuild_button))
             if button.text() == "Clear history").click()
        return 0

    monkeypatch.setattr(SettingsDialog, "exec", clear_then_cancel)
    window.edit_settings()
    assert history.entries() == [] and SearchHistory(open_qsettings(window.qsettings.fileName())).entries() == []
    history.record("wing flutter")

    def turn_off(dialog: SettingsDialog) -> int:
        dialog.remember_searches.setChecked(False)
        return 1

    monkeypatch.setattr(SettingsDialog, "exec", turn_off)
    window.edit_settings()
    assert history.entries() == [] and not load_window_prefs(window.qsettings).remember_searches
    window.search_bar.query.setText("wing stall")
    qtbot.keyClick(window.search_bar.query, Qt.Key.Key_Return)
    assert history.entries() == [], "off: nothing is kept"
    assert SearchHistory(open_qsettings(window.qsettings.fileName()), remember=False).entries() == []
