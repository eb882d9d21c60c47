"""Every error onwatch raises belongs to the one tree drawn in ``onwatch.errors``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import onwatch
from onwatch import errors
from onwatch.errors import DeliveryError, OnwatchError, SecretError

PACKAGE = Path(onwatch.__file__).parent


def onwatch_modules() -> list[str]:
    """Return the name of every module of the onwatch package, imported."""
    names = ["onwatch"]
    for info in pkgutil.walk_packages(onwatch.__path__, "onwatch."):
        if info.name.endswith(".__main__"):
            continue  # importing it runs the command line
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def exception_classes() -> dict[str, type[BaseException]]:
    """Return every exception class defined in an onwatch module, by qualified name."""
    found = {}
    for name in onwatch_modules():
        for value in vars(importlib.import_module(name)).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found[f"{name}.{value.__qualname__}"] = value
    return found


def tree() -> list[tuple[int, str]]:
    """Return the drawing of the errors module's docstring as (depth, class name), in order."""
    assert errors.__doc__ is not None
    block = errors.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    root = block[0].split()[0]
    drawn = [(0, root)]
    indent = block[1].index("──")
    for line in block[1:]:
        if "──" in line:  # the other lines go on describing the class above
            depth = 1 + (line.index("──") - indent) // 4  # a level is four characters wide
            drawn.append((depth, line.split("── ", 1)[1].split()[0]))
    return drawn


def test_it_walks_every_module_of_every_package() -> None:
    walked = set(onwatch_modules())
    for path in PACKAGE.rglob("*.py"):
        if not (path.parent / "__init__.py").exists() or path.name == "__main__.py":
            continue  # alembic's env.py and the demo suite are run by their tools, not imported
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        assert name in walked


def test_every_exception_class_derives_from_onwatch_error_and_lives_in_errors() -> None:
    found = exception_classes()
    assert "onwatch.errors.OnwatchError" in found
    outside = sorted(name for name, cls in found.items() if cls.__module__ != "onwatch.errors")
    assert outside == []
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, OnwatchError))
    assert strays == []


def test_every_exception_class_is_drawn_in_the_tree() -> None:
    names = {cls.__name__ for cls in exception_classes().values()}
    drawn = {name for _, name in tree()}
    assert sorted(names - drawn) == []
    assert sorted(drawn - names) == []  # nothing drawn that no longer exists


def test_the_tree_draws_each_class_under_its_base() -> None:
    drawn = tree()
    assert drawn[0] == (0, "OnwatchError")
    for at, (depth, name) in enumerate(drawn[1:], start=1):
        parent = next(n for d, n in reversed(drawn[:at]) if d == depth - 1)
        assert getattr(errors, name).__bases__ == (getattr(errors, parent),), name


def test_a_secret_error_names_every_problem() -> None:
    error = SecretError(["secret A: not set", "secret B: not set"])
    assert error.problems == ["secret A: not set", "secret B: not set"]
    assert str(error) == "secret A: not set; secret B: not set"


def test_a_delivery_error_is_temporary_unless_said_permanent() -> None:
    assert DeliveryError("timed out").permanent is False
    assert DeliveryError("404 from the receiver", permanent=True).permanent is True
