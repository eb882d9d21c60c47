"""Real releases of real packages, downloaded once from the registry into a cache folder.

``pip download`` runs with the machine's own pip configuration (this is the one place the tests
reach the registry); the wheels stay in ``~/.cache/onwatch-tests/wheels`` (or
``ONWATCH_TEST_WHEELS``), which CI keeps between runs, so a warm cache needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from needs import unavailable

CACHE = Path(os.environ.get("ONWATCH_TEST_WHEELS", "~/.cache/onwatch-tests/wheels")).expanduser()


def real_wheels(*pins: str) -> list[Path]:
    """Return cached wheels for ``pins`` (``"packaging==21.3"``), downloading the missing ones."""
    wanted = {canonicalize_name(pin.split("==")[0]): pin.split("==")[1] for pin in pins}
    missing = [
        f"{name}=={version}" for name, version in wanted.items() if not _cached(name, version)
    ]
    if missing:
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
            + ["--only-binary=:all:", "--no-deps", "--dest", str(CACHE), *missing],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            unavailable(f"cannot download {' '.join(missing)}: {done.stderr.strip()[-300:]}")
    return [_cached(name, version) or CACHE for name, version in wanted.items()]


def copy_into(folder: Path, *pins: str) -> None:
    """Put the real wheels of ``pins`` into an index's folder."""
    for wheel in real_wheels(*pins):
        shutil.copy2(wheel, folder / wheel.name)


def _cached(name: str, version: str) -> Path | None:
    for wheel in CACHE.glob("*.whl"):
        found, found_version, _, _ = parse_wheel_filename(wheel.name)
        if found == name and str(found_version) == version:
            return wheel
    return None
