"""Actions with a keyboard shortcut that their menu, tooltip and status tip all show.

A platform's standard key is used where it has one (Ctrl+F to find, F1 for help); some standard keys
are empty on a platform (Preferences and Quit on most Linux desktops), so each action names the key
it falls back to, and every action of the window can be reached from the keyboard.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton

Key = QKeySequence.StandardKey | str


def keyed_action(parent: QObject, label: str, key: Key, slot: Callable[[], object] | None, fallback: str = "",
                 tip: str = "") -> QAction:
    """A menu action bound to ``key`` (or ``fallback`` where the platform leaves a standard key empty);
    its tooltip and status tip say what it does and which key does it. With no ``slot``, its owner
    connects it."""
    action = QAction(label, parent)
    sequences = QKeySequence.keyBindings(key) if isinstance(key, QKeySequence.StandardKey) else [QKeySequence(key)]
    sequences = [s for s in sequences if not s.isEmpty()] or [QKeySequence(fallback)]
    action.setShortcuts(sequences)
    described = with_key(tip or label.replace("&", "").rstrip("…"), action)
    action.setToolTip(described)
    action.setStatusTip(described)
    if slot is not None:
        action.triggered.connect(lambda _checked=False: slot())
    return action


def key_text(action: QAction) -> str:
    """The action's first shortcut as this platform writes it ("Ctrl+Shift+A", "⌘⇧A")."""
    return action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)


def with_key(text: str, action: QAction) -> str:
    return f"{text} ({key_text(action)})" if key_text(action) else text


def explain_button(button: QAbstractButton, action: QAction) -> None:
    """A button that does what ``action`` does says the action's key in its tooltip."""
    button.setToolTip(action.toolTip())
