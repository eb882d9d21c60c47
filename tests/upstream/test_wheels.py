"""The hand-made wheels are real: pip installs one from a real index, and it imports."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from upstream.indexes import Shelf
from upstream.wheels import build_wheel


def test_it_writes_a_record_of_every_file(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "Demo.Lib", "1.0.0-RC1", {"demo_lib/__init__.py": "X = 1\n"})

    assert wheel.name == "demo_lib-1.0.0rc1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record = archive.read("demo_lib-1.0.0rc1.dist-info/RECORD").decode().splitlines()
        metadata = archive.read("demo_lib-1.0.0rc1.dist-info/METADATA").decode()
    assert {line.split(",")[0] for line in record} == names
    assert "demo_lib-1.0.0rc1.dist-info/RECORD,," in record
    assert "Name: Demo.Lib\nVersion: 1.0.0rc1\n" in metadata


@pytest.mark.e2e
def test_pip_installs_a_published_wheel_into_a_fresh_venv(
    shelf: Shelf, pypiserver_url: str, tmp_path: Path
) -> None:
    shelf.publish(
        "venv-lib",
        "1.0",
        modules={"venv_lib/__init__.py": "def greet(name):\n    return f'hello {name}'\n"},
    )
    venv = tmp_path / "venv"
    # No pip inside the venv (ensurepip costs seconds); this interpreter's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "--isolated",  # only our index: no pip.conf, no PIP_* variables
            "--disable-pip-version-check",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--index-url",
            pypiserver_url,
            "venv-lib==1.0",
        ],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr

    greeting = subprocess.run(
        [python, "-c", "import venv_lib; print(venv_lib.greet('onwatch'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert greeting.stdout == "hello onwatch\n"
