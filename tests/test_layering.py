"""The layering the design asks for, checked on the source: one engine, no Qt in the core, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "desktop_app"


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
        assert not any(name.startswith("desktop_app.core.storage.store") for name in imports_of(path)), path.name


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


def classes_and_bases(path: Path) -> dict[str, set[str]]:
    """Each class ``path`` defines -> the names of its bases as written (``Index``, ``local.Index``)."""
    return {node.name: {ast.unparse(base) for base in node.bases}
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(node, ast.ClassDef)}


def test_the_backends_are_peers_never_one_inheriting_the_other() -> None:
    backends = PACKAGE / "core" / "backends"
    for mine, theirs in (("local", "qdrant"), ("qdrant", "local")):
        their_classes = {name for path in (backends / theirs).rglob("*.py") for name in classes_and_bases(path)}
        for path in (backends / mine).rglob("*.py"):
            imported = {name.rsplit(".", 1)[-1] for name in imports_of(path)
                        if name.startswith(f"desktop_app.core.backends.{theirs}.")}
            for name, bases in classes_and_bases(path).items():
                inherited = {base.rsplit(".", 1)[-1] for base in bases} & their_classes & imported
                assert not inherited, f"{mine}/{path.name}: {name} inherits {theirs}'s {', '.join(inherited)}"


def test_only_the_opener_picks_a_backend() -> None:
    """One factory opens the right index; everything after it sees the protocol, never a backend class."""
    openers = {"backends/opening.py"}
    for path in (PACKAGE / "core").rglob("*.py"):
        relative = path.relative_to(PACKAGE / "core").as_posix()
        if relative.startswith(("backends/local/", "backends/qdrant/")) or relative in openers:
            continue
        named = {name for name in imports_of(path) if name.endswith((".LocalIndex", ".QdrantIndex"))}
        assert not named, f"{relative} imports {', '.join(sorted(named))}: open an index with backends.opening"


def test_the_caches_hold_their_parts_instead_of_inheriting_them() -> None:
    """A backend's classes compose each other (the keyword cache holds a postings structure)."""
    backends = PACKAGE / "core" / "backends"
    ours = {name for path in backends.rglob("*.py") for name in classes_and_bases(path)}
    for path in backends.rglob("*.py"):
        for name, bases in classes_and_bases(path).items():
            inherited = {base.rsplit(".", 1)[-1] for base in bases} & ours
            assert not inherited, f"{path.name}: {name} inherits {', '.join(inherited)}"
