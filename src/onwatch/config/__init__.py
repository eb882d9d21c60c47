"""The configuration: one definition of every key, read once and handed on as plain records.

``records`` holds the frozen records the rest of onwatch reads (``Config``, ``Check``…);
``load`` finds and reads a file (cached by content); ``schema`` validates with the pydantic
models of ``models`` and reports every problem with its file, line and fix (``locate``).
Nothing in this package imports the package itself, so it has no import circle.
"""

from __future__ import annotations

from onwatch.config.load import find_config, load_config
from onwatch.config.records import (
    BROWSER_FIX,
    CONFIG_FILE,
    PYPROJECT_FILE,
    Check,
    Config,
    Settings,
    Silence,
    Watch,
    find_browser,
    resolve_database_url,
)

__all__ = [
    "BROWSER_FIX",
    "CONFIG_FILE",
    "PYPROJECT_FILE",
    "Check",
    "Config",
    "Settings",
    "Silence",
    "Watch",
    "find_browser",
    "find_config",
    "load_config",
    "resolve_database_url",
]
