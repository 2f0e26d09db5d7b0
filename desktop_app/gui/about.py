"""What the About box says: versions a bug report needs, without importing torch to get them."""

from __future__ import annotations

import html
import platform
from importlib import metadata

from desktop_app import __version__


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html(engine: object | None, index_dir: str, settings_file: str, log_file: str = "") -> str:
    """Rich text for the About box: app, model (name, device, folder), torch, FlagEmbedding, Qt, Python."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    if engine is not None:
        spec = engine.spec
        model = f"{html.escape(engine.describe())}<br><small>{html.escape(str(spec.path))}</small>"
    else:
        model = "not loaded yet"
    rows = [
        ("Model", model),
        ("torch", package_version("torch")),
        ("FlagEmbedding", package_version("FlagEmbedding")),
        ("Qt", f"{qVersion()} (PySide6 {pyside_version})"),
        ("Python", platform.python_version()),
        ("Index", html.escape(index_dir)),
        ("Settings", html.escape(settings_file)),
        ("Log", html.escape(log_file)),
    ]
    table = "".join(f"<tr><td><b>{name}</b>&nbsp;&nbsp;</td><td>{value}</td></tr>" for name, value in rows)
    return (f"<h3>Desktop Search {__version__}</h3><p>Search your own documents by meaning, fully offline, "
            f"with BGE-M3 hybrid retrieval.</p><table>{table}</table>")
