"""The tray icon, where the desktop shows one: quick search, the window, pausing indexing, quitting.

With "Keep running in the tray" on, closing the window only hides it: indexing and live sync go on,
and the quick search box stays a key away until Quit in this menu.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class Tray:
    """The icon and its menu; a click on the icon shows the window.

    ``paused_of`` says whether indexing is paused, or None when no run is in progress (nothing to pause).
    """

    def __init__(self, window: QWidget, icon: QIcon, quick: Callable[[], None], show_window: Callable[[], None],
                 toggle_pause: Callable[[], None], paused_of: Callable[[], bool | None],
                 quit_app: Callable[[], None]) -> None:
        self._paused_of = paused_of
        self.menu = QMenu(window)
        self.quick_action = self.menu.addAction("Quick search", quick)
        self.window_action = self.menu.addAction("Show window", show_window)
        self.pause_action = self.menu.addAction("Pause indexing", toggle_pause)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit", quit_app)
        self.menu.aboutToShow.connect(self.refresh)
        self.icon = QSystemTrayIcon(icon, window)
        self.icon.setToolTip("Desktop Search")
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(
            lambda reason: reason == QSystemTrayIcon.ActivationReason.Trigger and show_window())
        self.refresh()
        self.icon.show()

    def refresh(self) -> None:
        """Pause or Resume, as indexing stands now; neither while nothing is being indexed."""
        paused = self._paused_of()
        self.pause_action.setText("Resume indexing" if paused else "Pause indexing")
        self.pause_action.setEnabled(paused is not None)

    def hide(self) -> None:
        self.icon.hide()
