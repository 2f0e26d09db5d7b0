"""The layering the design asks for, checked on the source: one engine, no Qt in the core, no cycles, no module
or class too long to read."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "desktop_app"
# Small enough for a newcomer to read: no module over this many lines, no class over that many.
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 400
# Known offenders, being split in issue 22: an entry goes once its split lands ("path" for a
# module, "path:Class" for a class).
TOO_BIG_FOR_NOW = {"desktop_app/cli.py", "desktop_app/gui/app.py", "desktop_app/gui/app.py:MainWindow"}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_core_never_imports_qt() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        assert not any(name.startswith("PySide6") for name in imports_of(path)), path.name


def test_the_core_never_imports_the_web_stack() -> None:
    web = ("fastapi", "starlette", "uvicorn")
    for path in (PACKAGE / "core").rglob("*.py"):
        assert not any(name.split(".")[0] in web for name in imports_of(path)), path.name


def test_the_http_api_never_imports_qt() -> None:
    for path in (PACKAGE / "api").rglob("*.py"):
        assert not any(name.startswith("PySide6") for name in imports_of(path)), path.name


def test_front_ends_never_reach_into_the_store() -> None:
    for path in [*(PACKAGE / "gui").glob("*.py"), *(PACKAGE / "api").glob("*.py"), PACKAGE / "cli.py"]:
        assert not any(name.startswith("desktop_app.core.storage") for name in imports_of(path)), path.name


def test_core_modules_import_each_other_without_cycles() -> None:
    modules = {module_name(p): p for p in (PACKAGE / "core").rglob("*.py")}
    graph = {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, " -> ".join(visiting[visiting.index(name):] + [name])
        if name in done:
            return
        visiting.append(name)
        for other in graph[name]:
            visit(other)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_no_module_or_class_is_too_long_to_read() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE.parent).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES and name not in TOO_BIG_FOR_NOW:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES and f"{name}:{node.name}" not in TOO_BIG_FOR_NOW:
                    too_long.append(f"{name}: class {node.name}, {lines} lines")
    limits = f"at most {MAX_MODULE_LINES} lines a module, {MAX_CLASS_LINES} a class"
    assert not too_long, f"split by concern ({limits}): {too_long}"


def test_core_packages_say_what_they_are_for_and_offer_their_face() -> None:
    for package in ("storage", "ingest", "search"):
        module = importlib.import_module(f"desktop_app.core.{package}")
        assert module.__doc__, package
        for name in module.__all__:
            assert getattr(module, name).__module__.startswith(module.__name__ + "."), (package, name)
