"""The package rules of docs/architecture.md, checked on the source itself.

Imports are read with ``ast``, so an import inside a function or under ``TYPE_CHECKING`` counts
as much as one at the top of a module, and a package's ``__init__`` is a module of its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import onwatch

ROOT = Path(onwatch.__file__).resolve().parent
MAX_ROOT_MODULES = 12
# Pure core: no I/O, no clock of its own, nothing of the adapters.
PURE = (
    "onwatch.model",
    "onwatch.schedule",
    "onwatch.analysis.categorize",
    "onwatch.analysis.drift",
    "onwatch.analysis.fingerprint",
    "onwatch.alerting.rules",
    "onwatch.channels.render",
    "onwatch.web.charts",
    "onwatch.runner.parse",
    "onwatch.runner.storable",
)
ADAPTERS = ("onwatch.store", "onwatch.web", "onwatch.daemon", "onwatch.cli", "onwatch.upstream")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts)  # a package's __init__ keeps its own name: onwatch.store.__init__


@cache
def modules() -> dict[str, Path]:
    """Return every module of onwatch by dotted name (demo suite files excepted)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts or "suite" in path.parts:
            continue
        found[_module_name(path)] = path
    return found


def _imported(path: Path, name: str) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[: -node.level + (1 if is_package else 0) or None]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _resolve(target: str) -> str | None:
    known = modules()
    while target:
        if target in known:
            return target
        if f"{target}.__init__" in known:
            return f"{target}.__init__"
        target = target.rpartition(".")[0]
    return None


@cache
def graph() -> dict[str, frozenset[str]]:
    """Return, per module, the onwatch modules it imports anywhere in its text."""
    edges = {}
    for name, path in modules().items():
        found = {_resolve(t) for t in _imported(path, name) if t.startswith("onwatch")}
        edges[name] = frozenset(m for m in found if m is not None and m != name)
    return edges


@cache
def external_imports() -> dict[str, frozenset[str]]:
    """Return, per module, the top-level names of the other packages it imports."""
    return {
        name: frozenset(t.split(".")[0] for t in _imported(path, name) if t and t[0] != ".")
        for name, path in modules().items()
    }


def _cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    """Return the top-level part of onwatch a module belongs to: a subpackage or a root module."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()):
        return ".".join(parts[:2])
    return module


def test_no_module_imports_itself_back() -> None:
    assert _cycles(dict(graph())) == []


def test_no_package_imports_itself_back() -> None:
    between: dict[str, set[str]] = {}
    for module, targets in graph().items():
        for target in targets:
            if _package(module) != _package(target):
                between.setdefault(_package(module), set()).add(_package(target))
    assert _cycles({k: frozenset(v) for k, v in between.items()}) == []


def test_only_the_store_speaks_sql() -> None:
    speakers = sorted(
        name
        for name, packages in external_imports().items()
        if {"sqlalchemy", "alembic", "psycopg"} & packages
    )
    assert [name for name in speakers if not name.startswith("onwatch.store")] == []


def test_at_most_twelve_modules_stay_at_the_package_root() -> None:
    at_root = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(at_root) <= MAX_ROOT_MODULES, at_root


def _imports_of(prefix: str) -> set[str]:
    return {t for name, targets in graph().items() if name.startswith(prefix) for t in targets}


def test_the_web_imports_nothing_from_the_command_line() -> None:
    assert sorted(t for t in _imports_of("onwatch.web") if t.startswith("onwatch.cli")) == []


def test_the_daemon_reaches_the_web_only_through_its_app_and_server() -> None:
    reached = _imports_of("onwatch.daemon")
    assert sorted(t for t in reached if t.startswith("onwatch.cli")) == []
    allowed = {"onwatch.web.app", "onwatch.web.server", "onwatch.web.__init__"}
    assert sorted(t for t in reached if t.startswith("onwatch.web") and t not in allowed) == []


@pytest.mark.parametrize("module", PURE)
def test_the_pure_core_imports_no_adapter(module: str) -> None:
    reached = graph()[module]
    assert sorted(t for t in reached if t.startswith(ADAPTERS)) == []


def test_the_store_imports_nothing_of_alerting_or_the_surfaces() -> None:
    reached = _imports_of("onwatch.store")
    outside = ("onwatch.alerting", "onwatch.web", "onwatch.cli", "onwatch.daemon", "onwatch.state")
    assert sorted(t for t in reached if t.startswith(outside)) == []


# Calls that read a clock or touch files: the pure core is handed ``now`` and data instead.
IMPURE_CALLS = {"utcnow", "now", "time", "monotonic", "open", "read_text", "read_bytes", "sleep"}


@pytest.mark.parametrize("module", PURE)
def test_the_pure_core_reads_no_clock_and_no_file(module: str) -> None:
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    # model.utcnow is the real clock that adapters pass in as a default: it is the exception.
    body = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == "utcnow")]
    called = set()
    for node in (inner for top in body for inner in ast.walk(top)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in IMPURE_CALLS:
                called.add(f"{name}() line {node.lineno}")
    assert sorted(called) == []
