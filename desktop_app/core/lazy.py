"""Package faces whose names load from their modules on first use (PEP 562).

Importing any module of a package runs its ``__init__`` first, so an eager face would load
everything the package holds (numpy, SQLite, the readers, the model's encoder) for a caller that
needs one small module, and where two packages read each other (the backends read
``search.query``, the searcher reads the backends) it would be an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def face(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps each public name to the module
    that defines it (a module of the package by its last name, or a full dotted name)."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook Python looks for
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(home if "." in home else f"{package}.{home}")
        return getattr(module, name)

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(homes)

    return __getattr__, __dir__
