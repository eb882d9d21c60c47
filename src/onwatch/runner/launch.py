"""The pytest plugin that makes pytest-playwright launch the Chromium onwatch found.

``plugin`` registers this module only when onwatch runs the pytest process, ``ONWATCH_BROWSER``
names an executable and pytest-playwright is loaded. pytest-playwright has no option for an
executable path: its session fixture ``browser_type_launch_args`` is the documented way in.
This override requests pytest-playwright's own value (its ``--headed``, ``--browser-channel``
and ``--slowmo`` options) and adds the executable and the flags a server needs.

A conftest that overrides ``browser_type_launch_args`` again wins: pytest prefers conftest
fixtures to plugin ones. If it requests ``browser_type_launch_args`` it receives this value and
keeps the executable; if it returns a value of its own, Playwright looks for its own download.
"""

from __future__ import annotations

from typing import Any

import pytest

from onwatch.runner import CHROMIUM_SERVER_FLAGS

EXECUTABLE = pytest.StashKey[str]()
SERVER_FLAGS = CHROMIUM_SERVER_FLAGS


@pytest.fixture(scope="session", name="browser_type_launch_args")
def server_launch_args(
    browser_type_launch_args: dict[str, Any], pytestconfig: pytest.Config
) -> dict[str, Any]:
    """Return pytest-playwright's launch options with onwatch's Chromium and flags added."""
    return with_server_launch(browser_type_launch_args, pytestconfig.stash[EXECUTABLE])


def with_server_launch(options: dict[str, Any], executable: str) -> dict[str, Any]:
    """Return ``options`` plus ``executable_path`` (unless set) and the server flags in ``args``."""
    args = list(options.get("args") or [])
    args += [flag for flag in SERVER_FLAGS if flag not in args]
    return {
        **options,
        "executable_path": options.get("executable_path") or executable,
        "args": args,
    }
