"""A real Alertmanager for the whole test session, started from the Debian package's binary."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from needs import free_port, unavailable

ALERTMANAGER = "prometheus-alertmanager"
CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


@pytest.fixture(scope="session")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Yield the base URL of an Alertmanager started for this test session."""
    binary = shutil.which(ALERTMANAGER) or shutil.which("alertmanager")
    if binary is None:
        unavailable(f"{ALERTMANAGER} not found: apt-get install prometheus-alertmanager")
    home = tmp_path_factory.mktemp("alertmanager")
    config = home / "alertmanager.yml"
    config.write_text(CONFIG)
    url = f"http://127.0.0.1:{free_port()}"
    log_path = home / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={home / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--cluster.listen-address=",  # no gossip: a lone instance
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_ready(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"Alertmanager exited ({process.returncode}):\n{log.read_text()}")
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"Alertmanager not ready within 15 s:\n{log.read_text()}")
