"""Real disks for the fault suite: a small tmpfs that tests fill up or turn read-only.

The tmpfs is mounted with the ``mount(2)`` system call itself (what ``mount -t tmpfs`` does),
which needs root, as CI has. Elsewhere the tests that use it are skipped, saying why.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MS_RDONLY = 1
MS_REMOUNT = 32
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


@dataclass
class Tmpfs:
    """A mounted tmpfs of ``size`` bytes at ``path``."""

    path: Path
    size: int
    _filler: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def _options(self) -> bytes:
        return f"size={self.size}".encode()

    def remount(self, *, read_only: bool) -> None:
        """Make the file system read-only (writes fail with EROFS) or writable again."""
        flags = MS_REMOUNT | (MS_RDONLY if read_only else 0)
        target = str(self.path).encode()
        _call(_libc.mount(b"tmpfs", target, b"tmpfs", flags, self._options()), "remount")

    def fill(self) -> Path:
        """Write zeros into ``fill`` until the file system is full (as ``dd`` would)."""
        filler = self.path / "fill"
        chunk = bytes(64 * 1024)
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, chunk)  # a short write first, then ENOSPC
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        return filler

    def keep_full(self) -> None:
        """Fill the disk, and go on taking every byte freed until ``free``, as a runaway log
        writer would: space a process frees by deleting its own files does not end the fault."""
        self.fill()
        self._stop = threading.Event()

        def top_up(stop: threading.Event) -> None:
            while not stop.wait(0.01):
                self.fill()

        self._filler = threading.Thread(target=top_up, args=(self._stop,), daemon=True)
        self._filler.start()

    def free(self) -> None:
        """Stop filling and delete what was written."""
        if self._filler is not None:
            self._stop.set()
            self._filler.join()
            self._filler = None
        (self.path / "fill").unlink(missing_ok=True)


def mount_tmpfs(path: Path, size: int) -> Tmpfs:
    """Mount a tmpfs of ``size`` bytes at ``path``; skip the test where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    disk = Tmpfs(path, size)
    try:
        _call(_libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, disk._options()), "mount")
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            pytest.skip(f"mounting a tmpfs needs root (CI runs as root): {exc}")
        raise
    return disk


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    """A 2 MB tmpfs in the test's folder, unmounted afterwards."""
    disk = mount_tmpfs(tmp_path / "disk", 2 * 1024 * 1024)
    try:
        yield disk
    finally:
        disk.free()
        # Lazily: a process of the test that still holds a file must not keep it mounted.
        _call(_libc.umount2(str(disk.path).encode(), MNT_DETACH), "umount")


def healthz(url: str) -> tuple[int, dict[str, Any]]:
    """Return /healthz's status and body."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
