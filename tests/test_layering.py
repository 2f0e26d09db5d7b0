"""The layering the design asks for, checked on the source: one engine, no Qt in the core, no cycles, no module
or class too long to read."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "desktop_app"
# Small enough for a newcomer to read: no module over this many lines, no class over that many.
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 400
# Known offenders, being split in issue 22: an entry goes once its split lands ("path" for a
# module, "path:Class" for a class).
TOO_BIG_FOR_NOW: set[str] = set()  # "path" or "path:Class" while a split is under way


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` that can run: ``if TYPE_CHECKING:`` blocks only name types for checkers."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs, at the top or inside functions."""
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
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


FRONT_ENDS = [*(PACKAGE / "gui").glob("*.py"), *(PACKAGE / "api").glob("*.py"), *(PACKAGE / "cli").glob("*.py"),
              PACKAGE / "__main__.py"]
# What a front-end may import from this project: the core's face, the package's version, its own modules.
FRONT_END_ALLOWED = ("desktop_app.core", "desktop_app.__version__", "desktop_app.gui", "desktop_app.api",
                     "desktop_app.cli", "desktop_app")


def project_imports_of(path: Path) -> set[str]:
    """The modules of this project ``path`` imports (``from M import N`` gives M only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module if node.level == 0 else "desktop_app")
    return {name for name in found if name.split(".")[0] == "desktop_app"}


def allowed_for_a_front_end(name: str) -> bool:
    if name == "desktop_app.core":
        return True
    return name in FRONT_END_ALLOWED or name.startswith(("desktop_app.gui.", "desktop_app.api.", "desktop_app.cli."))


def test_front_ends_import_the_core_through_its_face_only() -> None:
    reaching = {f"{path.relative_to(PACKAGE)}: {name}" for path in FRONT_ENDS if path.exists()
                for name in project_imports_of(path) if not allowed_for_a_front_end(name)}
    assert not reaching, sorted(reaching)


def test_front_ends_never_reach_through_the_engine() -> None:
    """The engine is the door, not a hallway: a front-end asks it, never its index, model or searcher."""
    for path in FRONT_ENDS:
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = ast.unparse(node.value)
                assert "engine" not in owner.lower(), f"{path.relative_to(PACKAGE)}: {owner}.{node.attr}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                inner = node.value
                assert not ("engine" in ast.unparse(inner.value).lower()
                            and inner.attr in {"index", "encoder", "choice", "reader", "searcher"}), \
                    f"{path.relative_to(PACKAGE)}: {ast.unparse(node)}"


def test_the_allow_list_catches_a_reach_below_the_face(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from desktop_app.core.storage.store import Store\nimport desktop_app.core.engine\n")
    assert sorted(n for n in project_imports_of(sneaky) if not allowed_for_a_front_end(n)) == [
        "desktop_app.core.engine", "desktop_app.core.storage.store"]


def test_the_core_face_names_resolve_to_their_homes() -> None:
    import desktop_app.core as core

    for name in core.__all__:
        value = getattr(core, name)
        if isinstance(value, type) or inspect.isfunction(value):
            assert value.__module__.startswith("desktop_app.core."), name
    assert "Engine" in dir(core)


def test_every_face_tells_type_checkers_what_it_loads() -> None:
    """A lazy face's ``if TYPE_CHECKING:`` imports name exactly its ``__all__`` (editors see what runs)."""
    for init in (PACKAGE / "core").rglob("__init__.py"):
        module = importlib.import_module(module_name(init))
        if "__getattr__" not in vars(module):
            continue
        typed = {alias.asname or alias.name for node in ast.walk(ast.parse(init.read_text(encoding="utf-8")))
                 if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
                 for inner in ast.walk(node) if isinstance(inner, ast.ImportFrom) for alias in inner.names}
        assert typed == set(module.__all__), (module.__name__, typed ^ set(module.__all__))


def test_core_modules_import_submodules_never_names_from_the_face() -> None:
    """Inside the core, ``from desktop_app.core import X`` may only name a module: the face's names
    load lazily for the front-ends, and a core module leaning on them would hide an import cycle."""
    core = PACKAGE / "core"
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "desktop_app.core" and path != core / "__init__.py":
                for alias in node.names:
                    assert (core / f"{alias.name}.py").exists() or (core / alias.name).is_dir(), (path.name, alias.name)


def test_core_modules_import_each_other_without_cycles() -> None:
    # The face (desktop_app.core itself) imports nothing when it runs: its names load on first use.
    modules = {module_name(p): p for p in (PACKAGE / "core").rglob("*.py") if p != PACKAGE / "core" / "__init__.py"}
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
    for package in ("storage", "ingest", "search", "model", "backends"):
        module = importlib.import_module(f"desktop_app.core.{package}")
        assert module.__doc__, package
        for name in module.__all__:
            assert getattr(module, name).__module__.startswith(module.__name__ + "."), (package, name)


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


def test_the_backends_share_code_through_the_core_never_each_other() -> None:
    backends = PACKAGE / "core" / "backends"
    for mine, theirs in (("local", "qdrant"), ("qdrant", "local")):
        for path in (backends / mine).rglob("*.py"):
            reaching = {name for name in imports_of(path) if name.startswith(f"desktop_app.core.backends.{theirs}")}
            assert not reaching, f"{mine}/{path.name} imports {sorted(reaching)}"


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
