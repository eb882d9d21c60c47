"""Virtual environments that hold the product's dependency set with one release swapped in.

An environment is a fresh venv holding the product's own dependency set (``product``) in which
the watched package's pin is replaced by ``package==version``, installed from the watch's index
and the ``extra_indexes`` it names, and nothing else: pip runs ``--isolated`` with
``PIP_CONFIG_FILE`` set to the null device and no ``PIP_*`` variable of the host (uv runs with
``--no-config`` and no ``UV_*`` variable), so no user, system or site configuration adds an index.

Nothing of onwatch's own environment is visible inside. When the product's set does not name
pytest, onwatch copies its own pytest and what pytest requires (each only where the set does not
hold that distribution already) into the venv, so an index that does not mirror pytest works;
then it makes its pytest plugin importable through a folder that holds only the ``onwatch``
package and an entry point: the plugin needs the standard library and pytest, nothing else.

Environments are keyed by everything that decides what they hold (Python, installer, indexes,
the product's lines, the pins, pytest's version), so two checks of one watch share one and a
second poll of the same release reuses it. uv keeps one download cache for all of them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

import onwatch
from onwatch.errors import BuildError
from onwatch.upstream.product import installed_set, names, replace_pins, requirements_of

INSTALL_TIMEOUT = 900.0
KEEP_ENVIRONMENTS = 8
READY = "onwatch-environment.json"
PLUGIN_DIR = "onwatch-plugin"
LAYER = "onwatch-plugin.pth"
UV_CACHE = ".uv-cache"
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
        """Return every distribution its interpreter can import, name -> version (not onwatch)."""
        done = subprocess.run(
            [self.python, "-c", _FREEZE], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            return {}
        found: dict[str, str] = {}
        for name, version in json.loads(done.stdout):
            if canonicalize_name(name) != "onwatch":
                found.setdefault(name, version)  # the venv's own copy comes first on sys.path
        return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def find_uv() -> str | None:
    """Return the ``uv`` on PATH, or the one installed next to onwatch's interpreter."""
    beside = Path(sys.executable).parent / "uv"
    return shutil.which("uv") or (str(beside) if os.access(beside, os.X_OK) else None)


def choose_installer(choice: str) -> str:
    """Return ``"pip"`` or the path of uv for a watch's ``installer`` setting."""
    if choice == "pip":
        return "pip"
    uv = find_uv()
    if uv is not None:
        return uv
    if choice == "uv":
        raise BuildError('installer = "uv" but no uv is on PATH: install uv or set "pip"')
    return "pip"


def isolated_environ() -> dict[str, str]:
    """Return the host's environment without any pip or uv setting, config files switched off."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    environ["PIP_CONFIG_FILE"] = os.devnull
    return environ


class Environments:
    """The folder of cached environments, one per dependency set."""

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python

    def ensure(
        self,
        index: str,
        requirements: list[str] | None,
        pins: list[str],
        *,
        extra_indexes: tuple[str, ...] | list[str] = (),
        installer: str = "auto",
    ) -> Environment:
        """Return the environment for this dependency set, building it if needed.

        ``requirements`` are the product's lines (None: the set installed next to onwatch);
        every line naming a pinned package is replaced by its pin.
        """
        tool = choose_installer(installer)
        product = installed_set() if requirements is None else requirements
        lines = replace_pins(product, names(pins))
        indexes = [index, *extra_indexes]
        key = self.key(indexes, lines, pins, tool)
        target = self.root / key
        if (target / READY).is_file():
            os.utime(target / READY)  # used: young again
            return Environment(target, key, reused=True)
        self.root.mkdir(parents=True, exist_ok=True)
        building = self.root / f".building-{key}-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        try:
            self._build(building, target, indexes, lines, pins, tool)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        self._prune(keep=key)
        return Environment(target, key, reused=False)

    def key(self, indexes: list[str], lines: list[str], pins: list[str], tool: str) -> str:
        """Return the cache key of an environment."""
        installer = "pip" if tool == "pip" else "uv"
        text = json.dumps(
            [sys.version, installer, indexes, lines, sorted(pins), _version("pytest")]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _build(
        self,
        folder: Path,
        final: Path,
        indexes: list[str],
        lines: list[str],
        pins: list[str],
        tool: str,
    ) -> None:
        """Build in ``folder`` an environment that will be moved to ``final``."""
        _run([self.python, "-m", "venv", "--without-pip", str(folder)], "create a venv", 120)
        python = str(folder / "bin" / "python")
        wanted = folder / "product-requirements.txt"
        wanted.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        sources = [f"--index-url={indexes[0]}", *(f"--extra-index-url={u}" for u in indexes[1:])]
        if tool == "pip":
            command = [self.python, "-m", "pip", "--isolated", "--python", python, "install"]
            command += ["--disable-pip-version-check", "--no-input", "--quiet"]
        else:
            command = [tool, "pip", "install", "--no-config", "--quiet", "--python", python]
            command += ["--cache-dir", str(self.root / UV_CACHE)]
        _run(
            [*command, *sources, "-r", str(wanted), *pins],
            "install " + " ".join(pins),
            INSTALL_TIMEOUT,
            env=isolated_environ(),
        )
        purelib = Path(
            subprocess.run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        if "pytest" not in _installed(purelib):
            _copy_pytest(purelib)
        _add_plugin(folder / PLUGIN_DIR, purelib, final / PLUGIN_DIR)
        ready = {"indexes": [_without_password(u) for u in indexes], "pins": pins, "lines": lines}
        (folder / READY).write_text(json.dumps(ready))

    def _prune(self, keep: str) -> None:
        """Delete the least recently used environments beyond ``KEEP_ENVIRONMENTS``."""
        ready = [p for p in self.root.iterdir() if (p / READY).is_file() and p.name != keep]
        ready.sort(key=lambda p: (p / READY).stat().st_mtime, reverse=True)
        for stale in ready[KEEP_ENVIRONMENTS - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)


def _installed(purelib: Path) -> set[str]:
    """Return the canonical names of the distributions installed in ``purelib``."""
    found: set[str] = set()
    for info in purelib.glob("*.dist-info"):
        found.add(canonicalize_name(info.name[: -len(".dist-info")].rsplit("-", 1)[0]))
    return found


def _copy_pytest(purelib: Path) -> None:
    """Copy onwatch's pytest and what it requires into ``purelib``, where not there already."""
    present = _installed(purelib)
    todo, done = ["pytest"], set()
    while todo:
        name = todo.pop()
        if name in done or name in present:
            continue
        done.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement of pytest that does not apply here
        requires = [line for line in dist.requires or [] if "extra" not in line]
        todo += sorted(requirements_of(requires))
        for file in dist.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # scripts live outside site-packages; caches get rebuilt
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                destination = purelib / file
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)


def _add_plugin(folder: Path, purelib: Path, final: Path) -> None:
    """Make ``onwatch.runner.plugin`` importable and registered, without onwatch's dependencies."""
    folder.mkdir()
    (folder / "onwatch").symlink_to(Path(onwatch.__file__).parent, target_is_directory=True)
    info = folder / f"onwatch-{onwatch.__version__}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: onwatch\nVersion: {onwatch.__version__}\n"
    )
    (info / "entry_points.txt").write_text("[pytest11]\nonwatch = onwatch.runner.plugin\n")
    (purelib / LAYER).write_text(f"{final}\n")  # where the folder is once the venv is moved


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _run(command: list[str], what: str, timeout: float, env: dict[str, str] | None = None) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"cannot {what}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise BuildError(f"cannot {what}: {command[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in said if "ERROR" in line]  # pip's
        if not errors:
            # uv's error starts with a mark and wraps its explanation over several lines.
            start = next((n for n, line in enumerate(said) if line.startswith(("×", "error:"))), -3)
            errors = said[start:]
        elapsed = time.monotonic() - started
        raise BuildError(
            f"cannot {what} (exit status {done.returncode} after {elapsed:.0f} s): "
            + _without_password(" / ".join(errors)[:1000])
        )
