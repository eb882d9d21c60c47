"""Package indexes on 127.0.0.1 for the tests, all reading one folder of wheels.

- ``Shelf``: the folder; ``publish`` writes a wheel into it with a chosen upload time (the
  file's modification time), so every index serving the folder lists it on its next request.
- ``start_pypiserver``: a real pypiserver process. It speaks PEP 503 HTML only: whatever the
  ``Accept`` header, it answers ``text/html`` (pypiserver 2.4), and it gives no upload times.
- ``SimpleIndex``: a small PEP 691 index in a thread. It answers JSON (with PEP 700 upload
  times) to clients that accept it and HTML otherwise, builds both from the folder on each
  request, and can mark files yanked (PEP 592), which pypiserver cannot.
- ``CannedServer``: answers every request with one fixed response, or never answers: for
  indexes that misbehave.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from needs import free_port
from upstream.wheels import build_wheel

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class Shelf:
    """The folder of package files that the tests' indexes serve."""

    folder: Path

    def publish(
        self,
        name: str,
        version: str,
        *,
        uploaded: datetime | None = None,
        modules: dict[str, str] | None = None,
        requires: list[str] | tuple[str, ...] | None = None,
    ) -> Path:
        """Write a wheel of ``name`` ``version``; return its path.

        ``uploaded`` (default: now) becomes the file's modification time, which ``SimpleIndex``
        reports as its PEP 700 upload time. ``requires`` are the wheel's dependencies.
        """
        module = re.sub(r"[-.]+", "_", name)
        wheel = build_wheel(
            self.folder,
            name,
            version,
            modules or {f"{module}/__init__.py": f"VERSION = {version!r}\n"},
            requires=requires,
        )
        if uploaded is not None:
            stamp = uploaded.timestamp()
            os.utime(wheel, (stamp, stamp))
        return wheel

    def add_file(self, filename: str, data: bytes = b"not really an archive") -> Path:
        """Write any file (an sdist, a file with a bad name) into the folder."""
        path = self.folder / filename
        path.write_bytes(data)
        return path


@dataclass
class Pypiserver:
    """A running pypiserver process."""

    url: str  # the simple API's URL, e.g. http://127.0.0.1:PORT/simple
    process: subprocess.Popen[bytes]
    log: Path

    def wait_until_ready(self) -> None:
        """Wait until the server answers its health check; fail the test if it never does."""
        try:
            _wait_until_ready(self.url.removesuffix("/simple") + "/health", self.process, self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class LockedIndex:
    """A pypiserver that wants a user and password for everything."""

    url: str
    user: str
    password: str


@dataclass(frozen=True)
class Pypiservers:
    """Two pypiservers serving one folder: an open one and a locked one."""

    open: str  # the simple API URL
    locked: LockedIndex


def start_pypiserver(
    folder: Path,
    home: Path,
    *,
    htpasswd: Path | None = None,
    authenticate: str = "list,download",
) -> Pypiserver:
    """Start pypiserver on a free port serving ``folder``; call ``wait_until_ready`` next.

    With ``htpasswd``, the ``authenticate`` actions (listing and downloading unless told)
    need a user of that file (401 without credentials, 403 with wrong ones).
    """
    base = f"http://127.0.0.1:{free_port()}"
    command = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        base.rsplit(":", 1)[1],
        # Never send a client to pypi.org for a project it does not have: answer 404.
        "--disable-fallback",
        # The default backend caches listings when watchdog is installed and refreshes them
        # from file events in the background; simple-dir reads the folder on every request, so
        # a wheel published by a test is listed by the very next request.
        "--backend",
        "simple-dir",
    ]
    if htpasswd is not None:
        command += ["--authenticate", authenticate, "--passwords", str(htpasswd)]
    log_path = home / f"pypiserver-{base.rsplit(':', 1)[1]}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, str(folder)], stdout=log, stderr=subprocess.STDOUT)
    return Pypiserver(f"{base}/simple", process, log_path)


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"pypiserver exited ({process.returncode}):\n{log.read_text()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"pypiserver not ready within 15 s:\n{log.read_text()}")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class SimpleIndex:
    """A PEP 691 (JSON) and PEP 503 (HTML) index of ``folder`` at ``url``."""

    folder: Path
    yanked: dict[str, str] = field(default_factory=dict)  # file name -> reason
    json: bool = True  # False: answer HTML even to clients that accept JSON
    accepts: list[str] = field(default_factory=list)  # each request's Accept header

    def __post_init__(self) -> None:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server naming
                index._answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The simple API's URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/simple"

    def start(self) -> SimpleIndex:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        accept = handler.headers.get("Accept", "")
        self.accepts.append(accept)
        match = re.fullmatch(r"/simple/([a-z0-9-]+)/", handler.path)
        if match is None:
            handler.send_error(404)
            return
        project = match.group(1)
        files = self._files(project)
        if not files:
            handler.send_error(404)
            return
        if self.json and JSON_TYPE in accept:
            body = json.dumps(self._json(project, files)).encode()
            content_type = JSON_TYPE
        else:
            body = self._html(project, files).encode()
            content_type = "text/html; charset=utf-8"
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _files(self, project: str) -> list[Path]:
        # A file belongs to a project when its name starts with the project's name and a dash,
        # compared the PEP 503 way; test projects are named so that none is a prefix of another.
        return sorted(
            path
            for path in self.folder.iterdir()
            if path.is_file()
            and not path.name.startswith(".")
            and re.sub(r"[-_.]+", "-", path.name.lower()).startswith(project + "-")
        )

    def _json(self, project: str, files: list[Path]) -> dict[str, Any]:
        entries = []
        for path in files:
            data = path.read_bytes()
            uploaded = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            entries.append(
                {
                    "filename": path.name,
                    "url": f"/files/{path.name}",
                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                    "size": len(data),
                    "upload-time": uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "yanked": self.yanked.get(path.name, False),
                }
            )
        return {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": entries,
            "versions": sorted({_version_of(path.name) for path in files}),
        }

    def _html(self, project: str, files: list[Path]) -> str:
        links = []
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            yanked = ""
            if path.name in self.yanked:
                yanked = f' data-yanked="{html.escape(self.yanked[path.name])}"'
            links.append(
                f'<a href="/files/{path.name}#sha256={digest}"{yanked}>{path.name}</a><br>'
            )
        return (
            "<!DOCTYPE html><html><head>"
            '<meta name="pypi:repository-version" content="1.0">'
            f"<title>Links for {project}</title></head><body>"
            f"<h1>Links for {project}</h1>{''.join(links)}</body></html>"
        )


def _version_of(filename: str) -> str:
    # Good enough for the names the tests use: "name-version-..." with "_" inside the name.
    return filename.split("-")[1].removesuffix(".tar.gz")


@dataclass
class Canned:
    """One fixed answer."""

    status: int = 200
    content_type: str = "text/html"
    body: bytes = b""
    hang: bool = False  # never answer, until the server stops


@contextmanager
def canned_server(answer: Canned) -> Iterator[str]:
    """Run a server answering every GET with ``answer``; yield its base URL."""
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server naming
            if answer.hang:
                stopping.wait()
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def watch_check(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run ``onwatch watch check libs --json`` on ``config``; return its exit code and report."""
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "watch", "check", "libs", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)
