"""Virtual environments that hold one release of a watched package, built once and reused.

An environment is made of the watch's requirements plus ``package==version``, installed by
pip from the watch's index into a fresh venv. It is keyed by everything that decides what it
holds (Python version, index, requirement lines, the pinned release), so two checks of one
watch share it and a second poll of the same release reuses it.

The checks then run in it with onwatch's own runner: after pip is done, a ``.pth`` file adds
onwatch's environment *behind* the venv's own packages. The tests import the pinned release
(and anything the requirements installed) from the venv, and pytest, onwatch's plugin and
whatever else the suite finds in onwatch's environment from there. pip runs before that file
exists, so it never sees, and never uninstalls, a package of onwatch's environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from onwatch.errors import BuildError

PIP_TIMEOUT = 900.0
KEEP_ENVIRONMENTS = 8
READY = "onwatch-environment.json"
LAYER = "onwatch-runner.pth"
_FREEZE = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({(d.metadata['Name'] or '?', d.version) for d in m.distributions()})))"
)


@dataclass(frozen=True, slots=True)
class Environment:
    """A ready virtual environment."""

    path: Path
    key: str
    reused: bool

    @property
    def python(self) -> str:
        """Return the environment's interpreter."""
        return str(self.path / "bin" / "python")

    def dependencies(self) -> dict[str, str]:
        """Return every distribution its interpreter can import, name -> version."""
        done = subprocess.run(
            [self.python, "-c", _FREEZE], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            return {}
        found: dict[str, str] = {}
        for name, version in json.loads(done.stdout):
            found.setdefault(name, version)  # the venv's own copy comes first on sys.path
        return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def requirement_lines(spec: str | None, base_dir: Path) -> list[str]:
    """Return pip arguments for a watch's ``requirements``: a file, or a pyproject's extras."""
    if not spec:
        return []
    match = re.fullmatch(r"(.+?)(?:\[([^\]]*)\])?", spec.strip())
    assert match is not None
    path = base_dir / match.group(1)
    if path.name == "pyproject.toml" or path.suffix == ".toml":
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
        lines = list(project.get("dependencies", []))
        extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            if extra not in optional:
                raise BuildError(f"{path} has no optional-dependencies extra {extra!r}")
            lines += optional[extra]
        return lines
    return ["-r", str(path)]


class Environments:
    """The folder of cached environments, one per dependency set."""

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python

    def key(self, index: str, requirements: list[str], pins: list[str]) -> str:
        """Return the cache key of an environment."""
        text = json.dumps([sys.version, index, requirements, sorted(pins)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def ensure(self, index: str, requirements: list[str], pins: list[str]) -> Environment:
        """Return the environment for this dependency set, building it if needed."""
        key = self.key(index, requirements, pins)
        target = self.root / key
        if (target / READY).is_file():
            os.utime(target / READY)  # used: young again
            return Environment(target, key, reused=True)
        self.root.mkdir(parents=True, exist_ok=True)
        building = self.root / f".building-{key}-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        try:
            self._build(building, index, requirements, pins)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        self._prune(keep=key)
        return Environment(target, key, reused=False)

    def _build(self, folder: Path, index: str, requirements: list[str], pins: list[str]) -> None:
        _run([self.python, "-m", "venv", "--without-pip", str(folder)], "create a venv", 120)
        python = str(folder / "bin" / "python")
        _run(
            [
                self.python,
                "-m",
                "pip",
                "--python",
                python,
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "--index-url",
                index,
                *requirements,
                *pins,
            ],
            "install " + " ".join(pins),
            PIP_TIMEOUT,
        )
        purelib = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # addsitedir, not a plain path line: it also reads that folder's .pth files, which is
        # how an editable install of onwatch (or of the suite) is found.
        lines = [f"import site; site.addsitedir({path!r})" for path in _own_site_dirs()]
        Path(purelib, LAYER).write_text("\n".join(lines) + "\n")
        (folder / READY).write_text(json.dumps({"index": _without_password(index), "pins": pins}))

    def _prune(self, keep: str) -> None:
        """Delete the least recently used environments beyond ``KEEP_ENVIRONMENTS``."""
        ready = [p for p in self.root.iterdir() if (p / READY).is_file() and p.name != keep]
        ready.sort(key=lambda p: (p / READY).stat().st_mtime, reverse=True)
        for stale in ready[KEEP_ENVIRONMENTS - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)


def _own_site_dirs() -> list[str]:
    """Return the site-packages folders of the environment onwatch runs in."""
    found = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    return [path for path in dict.fromkeys(found) if os.path.isdir(path)]


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _run(command: list[str], what: str, timeout: float) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"cannot {what}: no answer within {timeout:g} s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        errors = [line for line in said if "ERROR" in line] or said[-3:]
        elapsed = time.monotonic() - started
        raise BuildError(
            f"cannot {what} (exit status {done.returncode} after {elapsed:.0f} s): "
            + _without_password(" / ".join(errors)[:1000])
        )
