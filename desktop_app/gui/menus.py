"""The window's menus: every action in them has a key, shown beside it and in its tooltip.

Searching is kept at the keyboard: Ctrl+F goes to the query, Ctrl+Down and Ctrl+Up move through the
hits while the query keeps the focus, Ctrl+O opens the hit and Ctrl+Enter shows it in its folder (as
Enter and Ctrl+Enter do in the quick search box).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence

from desktop_app.gui.keys import explain_button, keyed_action

if TYPE_CHECKING:
    from desktop_app.gui.app import MainWindow

Standard = QKeySequence.StandardKey


def build_menus(window: MainWindow) -> None:
    """File, Search, Indexing and Help; the buttons that do the same as an action say its key too."""
    searching, indexing = window.searching, window.indexing
    add_folder = keyed_action(window, "&Add folder…", "Ctrl+Shift+A", window.choose_folder,
                              tip="Add a folder to index")
    files = keyed_action(window, "Indexed &files…", "Ctrl+L", window.show_files, tip="List the indexed files")
    settings = keyed_action(window, "&Settings…", Standard.Preferences, window.edit_settings, "Ctrl+,")
    quit_app = keyed_action(window, "&Quit", Standard.Quit, window.quit_app, "Ctrl+Q")
    _menu(window, "&File", add_folder, files, None, window.rebuild_action, settings, None, quit_app)

    focus = keyed_action(window, "&Focus search", Standard.Find, window.focus_search, "Ctrl+F",
                         tip="Go to the search box")
    filters = keyed_action(window, "Fi&lters", "Ctrl+Shift+F", window.focus_filters,
                           tip="Go to the filters: type, folder, dates")
    next_hit = keyed_action(window, "&Next hit", "Ctrl+Down", lambda: searching.move_selection(1))
    previous_hit = keyed_action(window, "&Previous hit", "Ctrl+Up", lambda: searching.move_selection(-1))
    open_hit = keyed_action(window, "&Open", Standard.Open, searching.open_current, "Ctrl+O",
                            tip="Open the selected hit")
    reveal = keyed_action(window, "Show in fol&der", "Ctrl+Return", searching.reveal_current,
                          tip="Show the selected hit in its folder")
    preview = keyed_action(window, "P&review", "Ctrl+P", window.focus_preview,
                           tip="Go to the preview of the selected hit, to read it with the keyboard")
    like = keyed_action(window, "&More like this", "Ctrl+M", searching.more_like_current,
                        tip="Find passages like the selected hit")
    copies = keyed_action(window, "Show &copies", "Ctrl+Shift+C", searching.toggle_copies_current,
                          tip="List (or fold away) where else the selected document is")
    _menu(window, "&Search", focus, filters, None, next_hit, previous_hit, open_hit, reveal, preview, like, copies)

    pause = keyed_action(window, "&Pause or resume", "Ctrl+Shift+P", indexing.pause_or_resume,
                         tip="Pause or resume indexing")
    cancel = keyed_action(window, "&Cancel", "Ctrl+Shift+X", indexing.cancel_running, tip="Cancel indexing")
    _menu(window, "&Indexing", pause, cancel)

    syntax = keyed_action(window, "Search &syntax", Standard.HelpContents, searching.show_syntax_help, "F1")
    about = keyed_action(window, "&About Desktop Search", "Ctrl+F1", window.show_about)
    _menu(window, "&Help", syntax, about)

    for button, action in ((window.folders_pane.add_button, add_folder), (window.preview_pane.open_button, open_hit),
                           (window.preview_pane.reveal_button, reveal), (window.progress_pane.pause_button, pause),
                           (window.progress_pane.cancel_button, cancel)):
        explain_button(button, action)
    window.search_bar.query.setToolTip(focus.toolTip())


def _menu(window: MainWindow, title: str, *actions: object) -> None:
    """A menu of ``actions`` (None: a separator) whose tooltips show, keys included."""
    menu = window.menuBar().addMenu(title)
    menu.setToolTipsVisible(True)
    for action in actions:
        if action is None:
            menu.addSeparator()
        else:
            menu.addAction(action)
