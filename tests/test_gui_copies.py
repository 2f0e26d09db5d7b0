"""The result card of a document with copies: "also in N places", a click lists them and folds them again."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPoint, QPointF, Qt
from PySide6.QtWidgets import QListView, QStyleOptionViewItem

from desktop_app.core import Hit
from desktop_app.gui.results import CARD_PADDING, COPIES_LINK, CardHtmlRole, HitDelegate, ResultsModel, card_html

COPIES = ["/home/me/Downloads/report.pdf", "/home/me/Projects/copy of report.pdf"]


def report_hit(duplicates: list[str]) -> Hit:
    return Hit("/home/me/Documents/report.pdf", 1, 0.9, {"dense": 0.9}, "Budget for next year", ["budget"], 1, 0, 20,
               duplicates=duplicates)


def test_a_card_says_where_else_the_document_is_and_lists_it_when_asked() -> None:
    folded, shown = card_html(report_hit(COPIES)), card_html(report_hit(COPIES), copies_shown=True)
    assert "also in 2 places" in folded and COPIES[0] not in folded
    assert all(path in shown for path in COPIES)
    assert "also in 1 other place" in card_html(report_hit(COPIES[:1]))
    assert "also in" not in card_html(report_hit([]))


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
