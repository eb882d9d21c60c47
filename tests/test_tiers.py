"""The unit tier starts no process: every test that does is marked ``e2e``.

``make test-unit`` (``pytest -m "not e2e"``) is the tier a contributor runs after each change:
pure logic, SQLite files, servers on threads of the test process. A test that starts a process
(pytest, ``onwatch run``, PostgreSQL, Chromium, a package index...) belongs to the end-to-end
tier, marked by ``pytestmark = pytest.mark.e2e`` in its module or ``@pytest.mark.e2e`` on it.

This reads the tests' source: a test is taken to start a process when it calls ``subprocess``,
``Popen``, ``Daemon(``, ``os.system``... or Playwright, directly, through a function or fixture
of its module, through a fixture of a conftest, or through a name it imports from a helper
module. Helper modules that start processes are listed in ``HELPERS``, each with what it starts.
A parametrized fixture (one that reads ``request.param``) is not followed: its variants that
start a server carry the mark themselves, ``pytest.param("postgresql", marks=pytest.mark.e2e)``.
A process started inside onwatch (the runner's pytest) is out of its sight.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).parent

# The modules of tests/ other than test modules that may start processes, and what they start.
HELPERS = {
    "conftest.py": "a PostgreSQL server for the session and one per test",
    "daemon.py": "onwatch run",
    "pgserver.py": "PostgreSQL (initdb, pg_ctl, createdb)",
    "channels/conftest.py": "Alertmanager",
    "store/contract/conftest.py": "a PostgreSQL database, through pgserver.py",
    "upstream/indexes.py": "pypiserver, onwatch watch check",
    "upstream/conftest.py": "pypiserver, through upstream/indexes.py",
    "upstream/registry.py": "pip download (real wheels, cached)",
    "web/conftest.py": "Chromium, through Playwright",
}

# Calls that start a process: module attributes, and bare names.
STARTERS = {
    "subprocess": {"run", "Popen", "call", "check_call", "check_output", "getoutput"},
    "os": {"system", "popen", "fork", "posix_spawn", "posix_spawnp", "execv", "execvp"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
}
STARTER_NAMES = {"Popen", "Daemon", "sync_playwright"}


def starts_here(node: ast.AST) -> bool:
    """Tell whether ``node`` itself names a call that starts a process."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr in STARTERS.get(node.value.id, ())
    return isinstance(node, ast.Name) and node.id in STARTER_NAMES


def is_e2e_mark(node: ast.AST) -> bool:
    """Tell whether ``node`` is ``pytest.mark.e2e``, or a list or tuple holding it."""
    if isinstance(node, ast.List | ast.Tuple):
        return any(is_e2e_mark(element) for element in node.elts)
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "e2e"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "pytest"
    )


@dataclass(frozen=True)
class Code:
    """What one function or class of a module does, as far as starting processes goes."""

    starts: bool  # it calls something that starts a process itself
    names: frozenset[str]  # the names it reads
    fixtures: frozenset[str]  # its parameters: for a fixture or a test, the fixtures it uses
    parametrized: bool  # a fixture that reads request.param

    @classmethod
    def read(cls, node: ast.AST) -> Code:
        """Read ``node``, leaving out annotations: a type starts nothing."""
        starts, parametrized, names = False, False, set[str]()
        stack = [node]
        while stack:
            current = stack.pop()
            for child in ast.iter_child_nodes(current):
                if isinstance(child, ast.arg) or _is_annotation(current, child):
                    continue
                starts = starts or starts_here(child)
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                    names.add(child.id)
                elif isinstance(child, ast.Attribute) and child.attr == "param":
                    value = child.value
                    parametrized |= isinstance(value, ast.Name) and value.id == "request"
                stack.append(child)
        fixtures: set[str] = set()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            fixtures = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        return cls(starts, frozenset(names), frozenset(fixtures), parametrized)

    def runs_a_starter(self, starting: set[str], fixtures: set[str]) -> bool:
        """Tell whether it starts a process, given the names and fixtures known to start one."""
        if self.parametrized:
            return False
        return self.starts or bool(self.names & starting or self.fixtures & (starting | fixtures))


def _is_annotation(parent: ast.AST, child: ast.AST) -> bool:
    if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef) and child is parent.returns:
        return True
    return isinstance(parent, ast.AnnAssign) and child is parent.annotation


@dataclass
class Module:
    """One Python file of tests/: its functions, classes and tests, and what it imports."""

    path: Path
    definitions: dict[str, Code] = field(default_factory=dict)
    tests: list[tuple[str, Code]] = field(default_factory=list)  # the unmarked ones
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (file, name)
    marked_whole: bool = False

    @classmethod
    def parse(cls, path: Path, source: str) -> Module:
        """Read ``source``, the text of ``path``."""
        module = cls(path)
        tree = ast.parse(source, str(path))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                origin = _helper_path(path, node.module, node.level)
                for alias in node.names:
                    module.imported[alias.asname or alias.name] = (origin, alias.name)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                module.definitions[node.name] = Code.read(node)
            elif isinstance(node, ast.Assign) and is_e2e_mark(node.value):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                module.marked_whole |= "pytestmark" in names
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name.startswith("test")
                and not any(map(is_e2e_mark, node.decorator_list))
            ):
                known = module.definitions.get(node.name) if node in tree.body else None
                module.tests.append((node.name, known or Code.read(node)))
        return module


def _helper_path(path: Path, module: str, level: int) -> str:
    """Return the tests/-relative file an import names (it may not exist: a library)."""
    base = path.parent if level else TESTS
    for _ in range(max(level - 1, 0)):
        base = base.parent
    return (base / (module.replace(".", "/") + ".py")).relative_to(TESTS).as_posix()


class Starters:
    """Which names of which modules start a process, worked out module by module on demand."""

    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}
        self.found: dict[str, set[str]] = {}

    def module(self, relative: str) -> Module | None:
        """Return the module of tests/ at ``relative``, or None when there is none."""
        if relative not in self.modules:
            path = TESTS / relative
            if not path.is_file():
                return None
            self.modules[relative] = Module.parse(path, path.read_text())
        return self.modules[relative]

    def of(self, relative: str) -> set[str]:
        """Return the names of ``relative``'s functions, classes and fixtures that start one."""
        if relative in self.found:
            return self.found[relative]
        self.found[relative] = set()  # an import cycle finds nothing more
        module = self.module(relative)
        if module is None:
            return set()
        known = self.imported(module)
        fixtures = self.conftest_fixtures(Path(relative).parent)
        starting: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, code in module.definitions.items():
                if name not in starting and code.runs_a_starter(known | starting, fixtures):
                    starting.add(name)
                    changed = True
        self.found[relative] = starting
        return starting

    def imported(self, module: Module) -> set[str]:
        """Return the names ``module`` imports from tests/ that start a process."""
        return {
            name
            for name, (origin, original) in module.imported.items()
            if original in self.of(origin)
        }

    def conftest_fixtures(self, folder: Path) -> set[str]:
        """Return the fixtures that start a process in the conftests of ``folder`` and above."""
        names: set[str] = set()
        while True:
            conftest = (folder / "conftest.py").as_posix().removeprefix("./")
            if (TESTS / conftest).is_file():
                names |= self.of(conftest)
            if folder == Path("."):
                return names
            folder = folder.parent


def unmarked_starters(relative: str, starters: Starters | None = None) -> list[str]:
    """Return the tests of the test module ``relative`` that start a process unmarked."""
    starters = starters or Starters()
    module = starters.module(relative)
    assert module is not None, relative
    if module.marked_whole:
        return []
    starting = starters.of(relative) | starters.imported(module)
    fixtures = starters.conftest_fixtures(Path(relative).parent)
    return [
        f"{relative}::{name}"
        for name, code in module.tests
        if code.runs_a_starter(starting, fixtures)
    ]


def python_files() -> list[str]:
    """Return the tests/-relative paths of the Python files of the test suite (not fixtures)."""
    return sorted(
        p.relative_to(TESTS).as_posix()
        for p in TESTS.rglob("*.py")
        if "fixtures" not in p.relative_to(TESTS).parts
    )


def test_every_test_that_starts_a_process_is_marked_e2e() -> None:
    starters = Starters()
    unmarked = [
        test
        for relative in python_files()
        if Path(relative).name.startswith("test_")
        for test in unmarked_starters(relative, starters)
    ]
    assert unmarked == [], "mark these @pytest.mark.e2e (or the module): " + ", ".join(unmarked)


def test_only_the_listed_helpers_start_processes() -> None:
    starters = Starters()
    starting = {
        relative
        for relative in python_files()
        if not Path(relative).name.startswith("test_") and starters.of(relative)
    }
    assert starting == set(HELPERS), "list a new helper in HELPERS, with what it starts"


SAMPLE = """
import subprocess
import pytest
from daemon import Daemon

def helper():
    return subprocess.run(["true"])

@pytest.fixture
def started():
    return helper()

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)])
def database(request):
    return helper() if request.param == "postgresql" else None

def test_direct():
    subprocess.run(["true"])

def test_through_a_fixture(started):
    pass

def test_through_an_imported_helper(tmp_path):
    Daemon(tmp_path)

def test_through_a_conftest_fixture(postgres_url):
    pass

@pytest.mark.e2e
def test_marked():
    helper()

def test_on_a_parametrized_fixture_whose_variant_is_marked(database):
    pass

def test_with_an_annotation(done: subprocess.CompletedProcess[str]) -> subprocess.Popen[str]:
    pass
"""


def unmarked_in_sample(source: str) -> list[str]:
    """Return the unmarked tests that start a process in ``source``, read as a test module."""
    starters = Starters()
    starters.modules["test_sample.py"] = Module.parse(TESTS / "test_sample.py", source)
    return [name.split("::")[1] for name in unmarked_starters("test_sample.py", starters)]


def test_it_finds_a_test_that_starts_a_process_directly_or_through_a_helper() -> None:
    assert unmarked_in_sample(SAMPLE) == [
        "test_direct",
        "test_through_a_fixture",
        "test_through_an_imported_helper",
        "test_through_a_conftest_fixture",
    ]


def test_a_module_marked_whole_has_no_unmarked_test() -> None:
    assert unmarked_in_sample(SAMPLE + "\npytestmark = [pytest.mark.e2e]\n") == []
