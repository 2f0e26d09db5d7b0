"""The result card of a document with copies: "also in N places", a click lists them and folds them again."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import test_gui
from PySide6.QtCore import QModelIndex, QPoint, QPointF, Qt
from PySide6.QtWidgets import QListView, QStyleOptionViewItem

from desktop_app.core import Hit
from desktop_app.gui.results import CARD_PADDING, COPIES_LINK, CardHtmlRole, HitDelegate, ResultsModel, card_html
from desktop_app.gui.settings import load_window_prefs

ini, window = test_gui.ini, test_gui.window  # the window's fixtures
drop, search, LOAD_TIMEOUT = test_gui.drop, test_gui.search, test_gui.LOAD_TIMEOUT
COPIES = ["/home/me/Downloads/report.pdf", "/home/me/Projects/copy of report.pdf"]


def report_hit(duplicates: list[str], total: int | None = None) -> Hit:
    return Hit("/home/me/Documents/report.pdf", 1, 0.9, {"dense": 0.9}, "Budget for next year", ["budget"], 1, 0, 20,
               duplicates=duplicates, duplicates_total=len(duplicates) if total is None else total)


def test_a_card_says_where_else_the_document_is_and_lists_it_when_asked() -> None:
    folded, shown = card_html(report_hit(COPIES)), card_html(report_hit(COPIES), copies_shown=True)
    assert "also in 2 places" in folded and COPIES[0] not in folded
    assert all(path in shown for path in COPIES)
    assert "also in 1 other place" in card_html(report_hit(COPIES[:1]))
    assert "also in" not in card_html(report_hit([]))
    many = card_html(report_hit(COPIES, total=9_999), copies_shown=True)
    assert "also in 9,999 places" in many and "and 9,997 more" in many


def test_clicking_also_in_on_the_card_unfolds_the_copies_and_a_second_click_folds_them(qtbot) -> None:
    model = ResultsModel()
    view = QListView()
    view.setModel(model)
    delegate = HitDelegate(view)
    view.setItemDelegate(delegate)
    view.resize(700, 400)
    qtbot.addWidget(view)
    view.show()
    model.set_hits([report_hit(COPIES), report_hit([])])
    qtbot.waitExposed(view)
    first = model.index(0)
    folded_height = view.visualRect(first).height()
    link = link_position(view, delegate, first)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=link)
    assert all(path in model.data(first, CardHtmlRole) for path in COPIES)
    qtbot.waitUntil(lambda: view.visualRect(first).height() > folded_height)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=link_position(view, delegate, first))
    assert COPIES[0] not in model.data(first, CardHtmlRole)
    model.toggle_copies(1)  # a hit without copies has nothing to unfold
    assert model.copies_shown == set()


def link_position(view: QListView, delegate: HitDelegate, index: QModelIndex) -> QPoint:
    """Where the card's "also in" link is drawn, in the viewport's coordinates."""
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualRect(index)
    document = delegate.document(option, index)
    layout = document.documentLayout()
    for y in range(0, option.rect.height(), 2):
        for x in range(0, option.rect.width(), 3):
            if layout.anchorAt(QPointF(x, y)) == COPIES_LINK:
                return QPoint(option.rect.left() + CARD_PADDING + x + 1, option.rect.top() + CARD_PADDING + y + 1)
    raise AssertionError("the card has no 'also in' link")


def test_the_window_and_quick_box_show_a_copied_file_once_until_every_copy_is_asked_for(qtbot, window,
                                                                                        aero_corpus) -> None:
    """An exact copy in a subfolder: one hit that names it; the setting (and dup:show) lists both."""
    (aero_corpus / "old").mkdir()
    copy = aero_corpus / "old" / "stall.txt"
    shutil.copyfile(aero_corpus / "stall.txt", copy)
    with qtbot.waitSignal(window.indexing.finished, timeout=LOAD_TIMEOUT):
        drop(window, aero_corpus)
    query = "wing stall boundary layer"
    stalls = {str(aero_corpus / "stall.txt"), str(copy)}
    grouped = search(qtbot, window, query)
    assert [Path(hit.path).name for hit in grouped.hits].count("stall.txt") == 1
    assert {grouped.hits[0].path, *grouped.hits[0].duplicates} == stalls
    assert "also in 1 other place" in window.results.data(window.results.index(0), CardHtmlRole)
    other = grouped.hits[0].duplicates[0]
    assert other not in window.results.data(window.results.index(0), CardHtmlRole)
    window.results_pane.view.setCurrentIndex(window.results.index(0))
    qtbot.keyClick(window.search_bar.query, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)  # Search ▸ Show copies
    assert other in window.results.data(window.results.index(0), CardHtmlRole)
    assert stalls <= {hit.path for hit in search(qtbot, window, query + " dup:show").hits}
    search(qtbot, window, query)
    with qtbot.waitSignal(window.searching.results_shown, timeout=60_000) as shown:
        window.apply_prefs(replace(window.prefs, every_copy=True))  # Settings ▸ Copies: searches again
    assert stalls <= {hit.path for hit in shown.args[0].hits}
    assert load_window_prefs(window.qsettings).every_copy
    window.show_quick()
    with qtbot.waitSignal(window.quick.results_shown, timeout=60_000) as quick:
        qtbot.keyClicks(window.quick.box.query, query)
    assert stalls <= {hit.path for hit in quick.args[0].hits}
    window.apply_prefs(replace(window.prefs, every_copy=False))
    with qtbot.waitSignal(window.quick.results_shown, timeout=60_000) as quick:
        window.quick.search_again()
    assert [Path(hit.path).name for hit in quick.args[0].hits].count("stall.txt") == 1
    assert "also in 1 other place" in window.quick.box.hits.item(0).text()


def test_the_settings_dialog_turns_every_copy_on(qtbot) -> None:
    from desktop_app.core import Settings
    from desktop_app.gui.settings import SettingsDialog, WindowPrefs

    dialog = SettingsDialog(Settings(), prefs=WindowPrefs())
    qtbot.addWidget(dialog)
    assert not dialog.every_copy.isChecked()
    dialog.every_copy.setChecked(True)
    assert dialog.result_prefs().every_copy
