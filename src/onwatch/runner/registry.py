"""The check kinds onwatch knows: one line per kind, its ``kind = "NAME"`` and its class."""

from __future__ import annotations

from onwatch.runner.kinds import Kind, Kinds
from onwatch.runner.pytest_kind import Pytest

KINDS: dict[str, type[Kind]] = {
    "pytest": Pytest,
}


def builtin() -> Kinds:
    """Return onwatch's own kinds, one fresh instance of each."""
    return Kinds({name: kind() for name, kind in KINDS.items()})
