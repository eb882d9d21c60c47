"""What some tests need from the machine: a program, a free port; and what to do without it.

A developer without PostgreSQL, Prometheus or Chromium may skip the tests that need them; CI
installs them all (`make test`), so there a missing one fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def program(name: str, package: str) -> str:
    """Return the path of a program (on PATH or in /usr/bin), or skip/fail naming its package."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
    )
    if found is None:
        unavailable(f"{name} not found: apt-get install {package}")
    return found


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
