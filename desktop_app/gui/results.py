"""Result list model + delegate (score bars, highlighted terms) and the preview's HTML.

Document text is always HTML-escaped before terms are wrapped in highlight tags, so a
document that contains markup shows that markup as text, never as rich content.
"""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_app.core import highlight_segments, place_of

HIGHLIGHT = "background-color:#ffe28a;color:#000000;font-weight:600"
CHIP = "background-color:#dde8f7;color:#1d3b66"
BY_MEANING = "color:#666666;font-style:italic"
CHANNEL_COLOURS = {"dense": "#4a7fd4", "sparse": "#d4843a", "colbert": "#3aa57a", "keyword": "#9a5bc8"}
BAR_AREA = 170
CARD_PADDING = 8

HitRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
CardHtmlRole = Qt.ItemDataRole.UserRole + 3
COPIES_LINK = "copies"  # the card's "also in N places" anchor: a click shows (or hides) where


def highlight_html(text: str, terms: list[str]) -> str:
    """Escaped ``text`` with the words that match the terms wrapped in highlight spans; newlines
    become <br>. Matching is the keyword index's (stems, folded accents, CJK bigrams), so the
    words lit up are the ones that made the hit a keyword match, in any script."""
    segments = highlight_segments(text, terms)
    pieces = [html.escape(segment) if plain else f'<span style="{HIGHLIGHT}">{html.escape(segment)}</span>'
              for plain, segment in zip(itertools.cycle((True, False)), segments)]
    return "".join(pieces).replace("\n", "<br>")


def chips_html(terms: list[str]) -> str:
    """The matched query words as chips; a passage that holds none of them was found by meaning."""
    if not terms:
        return f"<span style='{BY_MEANING}'>found by meaning: none of the query's words are in this passage</span>"
    return " ".join(f'<span style="{CHIP}">&nbsp;{html.escape(t)}&nbsp;</span>' for t in terms)


def also_in(copies: int) -> str:
    """Where else a document is, in words: "also in 1 other place", "also in 3 places"."""
    return "also in 1 other place" if copies == 1 else f"also in {copies:,} places"


def copies_html(duplicates: list[str], total: int, expanded: bool) -> str:
    """"also in N places", a link that shows the copies' paths under it when ``expanded`` (the first of them,
    when there are very many)."""
    if not duplicates:
        return ""
    link = f" · <a href='{COPIES_LINK}'>{also_in(total)}</a>"
    if not expanded:
        return link
    more = f"<br>&nbsp;&nbsp;and {total - len(duplicates):,} more" if total > len(duplicates) else ""
    return link + "".join(f"<br><span style='font-size:small'>&nbsp;&nbsp;{html.escape(other)}</span>"
                          for other in duplicates) + more


def card_html(hit: object, copies_shown: bool = False) -> str:
    """The text part of one result card: name, page, folder (and the document's copies), snippet, term chips."""
    path = Path(hit.path)
    more = f" · +{len(hit.more)} more in this file" if hit.more else ""
    ocr = f" · <span style='{BY_MEANING}'>text read by OCR</span>" if hit.ocr else ""
    meaning = "".join(f" · <span style='{BY_MEANING}'>{html.escape(note)}</span>"
                      for note in (hit.meaning, "without the exact phrase" if hit.without_phrase else "") if note)
    return (
        f"<div><b>{html.escape(path.name)}</b>"
        f"<span style='color:#666666'> · {hit.place}{ocr}{meaning}{more}</span></div>"
        f"<div style='color:#666666;font-size:small'>{html.escape(str(path.parent))}"
        f"{copies_html(hit.duplicates, hit.duplicates_total, copies_shown)}</div>"
        f"<div style='margin-top:3px'>{highlight_html(' '.join(hit.snippet.split()), hit.terms)}</div>"
        f"<div style='margin-top:3px'>{chips_html(hit.terms)}</div>"
    )


def reflow(text: str) -> str:
    """Join hard-wrapped lines into paragraphs; blank lines stay paragraph breaks."""
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text)


def preview_html(path: str, page: int, before: str, text: str, after: str, terms: list[str],
                 others: list[tuple[int, int, str]], unit: str = "page") -> str:
    """The preview pane: the hit in its page context, terms highlighted, other matches as links."""
    before, text, after = reflow(before), reflow(text), reflow(after)
    links = "".join(
        f"<li><a href='chunk:{chunk_id}'>{place_of(unit, other_page)}</a>: {html.escape(snippet[:120])}…</li>"
        for chunk_id, other_page, snippet in others
    )
    others_html = f"<p><b>Other matches in this file</b></p><ul>{links}</ul>" if others else ""
    return (
        f"<p><b>{html.escape(Path(path).name)}</b> — {place_of(unit, page)}<br>"
        f"<span style='color:#666666'>{html.escape(path)}</span></p>"
        f"<p>{'…' if before else ''}{highlight_html(before, terms)}"
        f"<span style='background-color:#eef4ff'>{highlight_html(text, terms)}</span>"
        f"{highlight_html(after, terms)}{'…' if after else ''}</p>{others_html}"
    )


def bar_fraction(channel: str, value: float) -> float:
    """Bar length in [0, 1]: cosines as they are, sparse over BGE-M3's typical 0.3, BM25 squashed."""
    if channel == "keyword":
        return value / (value + 5.0) if value > 0 else 0.0
    scale = 0.3 if channel == "sparse" else 1.0
    return max(0.0, min(1.0, value / scale))


def bars(scores: dict[str, float | None], channels: list[str]) -> list[tuple[str, float]]:
    """The (channel, score) pairs a card shows: those the ranking used, when it says which."""
    return [(name, value) for name, value in scores.items()
            if value is not None and (not channels or name in channels)]


class ResultsModel(QAbstractListModel):
    """A flat list of file hits (each with its folded chunks) for a QListView."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[object] = []
        self.channels: list[str] = []
        self.copies_shown: set[str] = set()  # paths of the hits whose copies are listed on their card

    def set_hits(self, hits: list[object], channels: list[str] | None = None) -> None:
        """Show ``hits``; bars are drawn for ``channels``, the ones the ranking used."""
        self.beginResetModel()
        self.hits = list(hits)
        self.channels = list(channels or [])
        self.endResetModel()

    def toggle_copies(self, row: int) -> None:
        """List the copies of the hit at ``row`` on its card, or fold them away again."""
        if not 0 <= row < len(self.hits) or not self.hits[row].duplicates:
            return
        self.copies_shown ^= {self.hits[row].path}
        self.layoutAboutToBeChanged.emit()  # the card's height changes: the view lays its rows out again
        self.layoutChanged.emit()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self.hits):
            return None
        hit = self.hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{Path(hit.path).name} ({hit.place}) {hit.score:.3f}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return hit.path
        if role == HitRole:
            return hit
        if role == PathRole:
            return hit.path
        if role == CardHtmlRole:
            return card_html(hit, hit.path in self.copies_shown)
        return None


class HitDelegate(QStyledItemDelegate):
    """Paints a result card: rich text on the left, fused score and channel bars on the right."""

    def __init__(self, view: QAbstractItemView) -> None:
        super().__init__(view)
        self.view = view

    def document(self, option: QStyleOptionViewItem, index: QModelIndex) -> QTextDocument:
        """The card's text laid out for the view's current width (the same in sizeHint and paint)."""
        document = QTextDocument()
        document.setDefaultFont(option.font)
        document.setHtml(index.data(CardHtmlRole) or "")
        document.setTextWidth(max(self.view.viewport().width() - BAR_AREA - 2 * CARD_PADDING, 120))
        return document

    def editorEvent(self, event: QEvent, model: ResultsModel, option: QStyleOptionViewItem,  # noqa: N802
                    index: QModelIndex) -> bool:
        """A click on "also in N places" shows or hides the copies; other clicks select as usual."""
        if event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent):
            where = event.position() - QPointF(option.rect.left() + CARD_PADDING, option.rect.top() + CARD_PADDING)
            document = self.document(option, index)  # held: its layout dies with it
            if document.documentLayout().anchorAt(where) == COPIES_LINK:
                model.toggle_copies(index.row())
                return True
        return super().editorEvent(event, model, option, index)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        document = self.document(option, index)
        height = max(int(document.size().height()), 5 * option.fontMetrics.height())
        return QSize(self.view.viewport().width(), height + 2 * CARD_PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        hit = index.data(HitRole)
        painter.save()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        background = option.palette.color(QPalette.ColorRole.Highlight).lighter(170) if selected \
            else option.palette.color(QPalette.ColorRole.Base)
        painter.fillRect(option.rect, background)
        painter.setPen(QColor("#dddddd"))
        painter.drawLine(option.rect.bottomLeft(), option.rect.bottomRight())
        document = self.document(option, index)
        painter.translate(option.rect.left() + CARD_PADDING, option.rect.top() + CARD_PADDING)
        document.drawContents(painter)
        painter.restore()
        self.paint_scores(painter, option.rect, hit, option, index.model().channels)

    def paint_scores(self, painter: QPainter, rect: QRect, hit: object, option: QStyleOptionViewItem,
                     channels: list[str]) -> None:
        """The fused score and a bar per channel the ranking used (a channel left out of the
        fusion, such as the lite model's sparse head, would explain nothing)."""
        painter.save()
        left = rect.right() - BAR_AREA
        line = option.fontMetrics.height()
        top = rect.top() + CARD_PADDING
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        painter.drawText(QRect(left, top, BAR_AREA - 2 * CARD_PADDING, line), Qt.AlignmentFlag.AlignLeft,
                         f"score {hit.score:.3f}")
        for row, (name, value) in enumerate(bars(hit.scores, channels)):
            y = top + (row + 1) * (line + 2)
            painter.setPen(QColor("#555555"))
            painter.drawText(QRect(left, y, 58, line), Qt.AlignmentFlag.AlignLeft, name)
            bar = QRect(left + 60, y + 3, 60, line - 6)
            painter.fillRect(bar, QColor("#eeeeee"))
            fraction = bar_fraction(name, value)
            painter.fillRect(QRect(bar.left(), bar.top(), int(bar.width() * fraction), bar.height()),
                             QColor(CHANNEL_COLOURS.get(name, "#888888")))
            painter.drawText(QRect(left + 124, y, BAR_AREA - 124 - CARD_PADDING, line), Qt.AlignmentFlag.AlignLeft,
                             f"{value:.2f}")
        painter.restore()
