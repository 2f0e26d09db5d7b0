"""The command-line front-end (``desktop-search COMMAND``): the grammar (:mod:`.arguments`), one small
function per command (:mod:`.commands`) and what they print (:mod:`.output`). It calls the core
through ``desktop_app.core`` and turns its errors into one-line messages."""

from desktop_app.cli.commands import main

__all__ = ["main"]
