"""The local HTTP API and search page (``desktop-search serve``, or the window's "Allow other apps to search").

A front-end like the CLI and the window: it calls ``core.engine`` and nothing below it.
"""
