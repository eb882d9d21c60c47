"""The configuration: one definition of every key, read once and handed on as plain records.

``models`` defines every key once (type, default, doc) as pydantic models; ``records`` holds
the frozen records the rest of onwatch reads (``Config``, ``Check``…), filled from what the
models validated; ``load`` finds and reads a file (cached by content); ``schema`` validates it
and reports every problem with its file, line and fix (``locate``); ``files`` checks what the
file names on disk at every load, cached or not. ``[notify.NAME]`` tables are validated by the
channels' own models, reached through ``channels.registry``. Nothing in this package
imports the package itself, so it has no import circle.
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
