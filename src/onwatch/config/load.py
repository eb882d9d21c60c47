"""Where the configuration is found, and how it is read into records.

A configuration is ``onwatch.toml`` (``[onwatch]`` settings, ``[checks.NAME]`` tables) or the
``[tool.onwatch]`` table of ``pyproject.toml`` (the settings at its top, checks under
``[tool.onwatch.checks.NAME]``). ``schema`` validates it with pydantic; what it returns is
cached, keyed by the file's content, onwatch's version and the shape of the records, so an
unchanged file is read without loading pydantic (``onwatch once`` from cron should cost little
more than pytest). What the file names on disk (test paths, the browser, requirements files)
is checked at every load, cached or not (``files``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from onwatch import __version__
from onwatch.config.files import missing_files
from onwatch.config.records import (
    CACHE_ENV,
    CONFIG_FILE,
    PYPROJECT_FILE,
    Check,
    Config,
    Settings,
    Silence,
    Watch,
)
from onwatch.errors import ConfigError

_HERE = Path(__file__).parent
# What decides whether a file is valid: read (not imported) to key the cache, which must not
# cost pydantic's import.
VALIDATION_SOURCES = (
    _HERE / "models.py",
    _HERE / "schema.py",
    _HERE / "locate.py",
    _HERE.parent / "durations.py",
)


def find_config(explicit: str | None, cwd: Path | None = None) -> Path:
    """Return the config file to use: ``explicit``, else ./onwatch.toml, else ./pyproject.toml."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError([f"{path}: no such config file; check the -c/--config path"])
        return path
    here = cwd or Path.cwd()
    if (here / CONFIG_FILE).is_file():
        return here / CONFIG_FILE
    pyproject = here / PYPROJECT_FILE
    if pyproject.is_file():
        import tomllib

        try:
            content = pyproject.read_bytes()
        except OSError:
            content = b""
        if b"[tool.onwatch" in content:
            decode(pyproject, content)  # a broken file meant for onwatch: say so, not "none"
        try:
            tool = tomllib.loads(content.decode("utf-8")).get("tool", {})
        except ValueError:
            tool = {}
        if isinstance(tool, dict) and "onwatch" in tool:
            return pyproject
    raise ConfigError(
        [
            f"{here}: no {CONFIG_FILE} here and no [tool.onwatch] in {PYPROJECT_FILE}; "
            f"create {CONFIG_FILE} (see docs/configuration.md) or pass -c PATH"
        ]
    )


def decode(path: Path, content: bytes) -> str:
    """Return ``content`` as text; bytes that are not UTF-8 are a ConfigError naming where."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = content[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            [
                f"{path}:{line}: not UTF-8 text ({exc.reason}): byte 0x{content[exc.start]:02x} "
                f"at offset {exc.start}, line {line}, column {column}; save the file as UTF-8 "
                "(e.g. iconv -f latin1 -t utf-8)"
            ]
        ) from None


def load_config(path: Path) -> Config:
    """Read and validate the config at ``path``, reporting every problem at once."""
    path = path.resolve()
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    text = decode(path, content)
    cache = _cache_file(path)
    key = _cache_key(content)
    data = _read_cache(cache, key)
    if data is None:
        from onwatch.config.schema import validate

        data = validate(path, text)  # includes the files' checks
        _write_cache(cache, key, data)
    else:
        problems = missing_files(data, path, text)
        if problems:
            raise ConfigError(problems)
    return Config(
        path=path,
        base_dir=path.parent,
        settings=Settings(**data["settings"]),
        checks={name: Check(**check) for name, check in data["checks"].items()},
        channels=data["channels"],
        silences=[_silence(raw) for raw in data["silences"]],
        browser=data["browser"]["executable"],
        watches={name: Watch(**watch) for name, watch in data["watches"].items()},
    )


def _silence(raw: dict[str, Any]) -> Silence:
    times = {k: datetime.fromisoformat(raw[k]) for k in ("start", "end") if raw.get(k)}
    return Silence(**{**raw, **times})


def _cache_key(content: bytes) -> str:
    import hashlib
    from dataclasses import fields

    # The records' fields: a cache written before a key was added is not read into them. The
    # CPU count: the default of max_parallel. The source of the validation: a file cached as
    # valid before a rule was added (a bound, a new check) is validated again.
    shape = [f.name for record in (Settings, Check, Silence, Watch) for f in fields(record)]
    digest = hashlib.sha256(content + json.dumps(shape).encode())
    for rules in VALIDATION_SOURCES:
        try:
            digest.update(rules.read_bytes())
        except OSError:
            digest.update(str(rules).encode())
    return f"{__version__}:{os.cpu_count()}:{digest.hexdigest()}"


def _cache_file(path: Path) -> Path | None:
    import hashlib

    folder = os.environ.get(CACHE_ENV) or os.environ.get("XDG_CACHE_HOME")
    root = Path(folder) if folder else Path.home() / ".cache"
    if not folder and not os.environ.get("HOME"):
        return None
    name = hashlib.sha256(str(path).encode()).hexdigest()[:24]
    return root / "onwatch" / "configs" / f"{name}.json"


def _read_cache(cache: Path | None, key: str) -> dict[str, Any] | None:
    if cache is None:
        return None
    try:
        stored = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    data = stored.get("data")
    return data if isinstance(data, dict) else None


def _write_cache(cache: Path | None, key: str, data: dict[str, Any]) -> None:
    # A cache that cannot be written only costs speed: never fail a command for it.
    if cache is None:
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"key": key, "data": data}))
        os.chmod(temporary, 0o600)
        os.replace(temporary, cache)
    except OSError:
        pass
