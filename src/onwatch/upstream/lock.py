"""One poll of a watch at a time across every onwatch process sharing a state folder.

``onwatch run`` and ``onwatch watch check`` take an exclusive ``flock`` on
``STATE_DIR/watch-locks/NAME.lock`` for the whole poll, so the same release of the same watch
is never installed, tested and recorded twice at the same moment. The kernel drops the lock
when its holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from onwatch.errors import WatchBusy

PAUSE = 0.1  # seconds between two tries while another process holds the lock


class WatchLock:
    """The lock of the watch ``name``; waits up to ``wait`` seconds for another holder."""

    def __init__(
        self,
        folder: Path,
        name: str,
        wait: float,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = folder / f"{name}.lock"
        self.name = name
        self.wait = wait
        self.clock = clock
        self.pause = pause
        self._fd: int | None = None

    def __enter__(self) -> WatchLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = self.clock() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self.clock() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise WatchBusy(
                        f"watch {self.name} is being tested by another onwatch process "
                        f"(pid {holder}); waited {self.wait:g} s (busy_wait) for it to finish"
                    ) from None
                self.pause(PAUSE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
