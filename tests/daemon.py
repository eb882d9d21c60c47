"""Start ``onwatch run`` as a real process, read its log lines, stop it with a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class Daemon:
    """A running ``onwatch run`` with JSON logs."""

    def __init__(self, config: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.log_path = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "onwatch",
                "-c",
                str(config),
                "run",
                "--log-format",
                "json",
                *extra,
            ],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def lines(self) -> list[dict[str, Any]]:
        """Return the log lines written so far."""
        found = []
        for line in self.log_path.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"message": line})
        return found

    def served_url(self) -> str:
        """Return the address of the dashboard and /metrics, once the daemon logged it."""
        self.wait_for(lambda d: any("url" in line for line in d.lines()))
        return next(line["url"] for line in self.lines() if "url" in line)

    def runs(self) -> list[dict[str, Any]]:
        """Return the 'run finished' log lines."""
        return [line for line in self.lines() if line.get("message") == "run finished"]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        """Wait until ``predicate(self)`` holds, or fail with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"condition not met; daemon log:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the process to end; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.log.close()
        return code

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
