"""Text that may hold file names, shown as typed: a file named ``<img src=x>.txt`` stays those characters.

Qt renders a label or tooltip as rich text when the text merely looks like HTML, so every
label that shows a path or a message quoting one is fixed to plain text, and tooltips (which
have no such switch) carry the text escaped inside a paragraph.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_tooltip(text: str) -> str:
    return "<p style='white-space:pre-wrap'>" + html.escape(text) + "</p>"
