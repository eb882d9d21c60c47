"""Spool: runs kept on disk while the database cannot be reached.

One file per run, ``<run id>.json``, holding ``Run.to_json()``. Each file appears whole or not at
all (written to a temporary file, fsynced, renamed, directory fsynced), so a crash or power loss
never leaves half a run behind. Replaying is idempotent by run id, so a run that is both stored
and still spooled (a crash between the two) is harmless.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from onwatch.model import Run

_SUFFIX = ".json"
_BAD_SUFFIX = ".bad"


def _logger() -> logging.Logger:
    return logging.getLogger("onwatch.store")


class Spool:
    """A durable on-disk queue of runs waiting for the database."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, run_id: str) -> Path:
        # Run ids become file names: refuse anything that could leave the directory.
        if not run_id or run_id.startswith(".") or "/" in run_id or os.sep in run_id:
            raise ValueError(f"run id {run_id!r} cannot name a spool file")
        return self.directory / f"{run_id}{_SUFFIX}"

    def put(self, run: Run) -> Path:
        """Write a run to the spool durably and return its file."""
        target = self._path(run.id)
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps(run.to_json(), default=str).encode()
        # A dot-prefixed name that does not end in .json: pending() never sees it half-written.
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{run.id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._sync_directory()
        return target

    def _sync_directory(self) -> None:
        # The rename is only durable once the directory entry itself reaches the disk.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [
            path
            for path in self.directory.iterdir()
            if path.name.endswith(_SUFFIX) and not path.name.startswith(".")
        ]

    def pending(self) -> list[Run]:
        """Return the spooled runs, oldest first; set aside (as *.bad) files that do not parse."""
        found: list[Run] = []
        for path in self._files():
            try:
                found.append(Run.from_json(json.loads(path.read_bytes())))
            except FileNotFoundError:
                continue  # replayed and removed by another process meanwhile
            except (ValueError, KeyError, TypeError, AttributeError, AssertionError) as exc:
                self._set_aside(path, exc)
        found.sort(key=lambda run: (run.started_at, run.id))
        return found

    def _set_aside(self, path: Path, exc: Exception) -> None:
        # Kept, not deleted: it may be the only copy of a run someone wants to recover by hand.
        bad = path.with_name(path.name + _BAD_SUFFIX)
        try:
            os.replace(path, bad)
        except OSError as error:
            _logger().error("spooled run %s unreadable (%s), not set aside: %s", path, exc, error)
            return
        _logger().error("spooled run %s cannot be read (%s); moved to %s", path, exc, bad.name)

    def remove(self, run_id: str) -> None:
        """Delete a run from the spool, if it is there."""
        self._path(run_id).unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._files())
