"""MemoryArtifactIndex: which stored files the results of given checks list, in a memory store."""

from __future__ import annotations

from collections.abc import Sequence

from onwatch.store.memory.data import Data

__all__ = ["MemoryArtifactIndex"]


def _digest(sha256: str) -> bytes | None:
    try:
        return bytes.fromhex(sha256) if sha256 else None
    except ValueError:
        return None


class MemoryArtifactIndex:
    """The ``ArtifactIndex`` of a memory store: it reads the results on every question."""

    def __init__(self, data: Data) -> None:
        self._d = data

    def lists(self, checks: Sequence[str], sha256: str) -> bool:
        """Tell whether any result of one of ``checks`` lists the file ``sha256``."""
        wanted = _digest(sha256)
        if not checks or wanted is None:
            return False
        with self._d.use("cannot read the files of sensitive checks"):
            return any(
                _digest(artifact.sha256) == wanted
                for run in self._d.runs.values()
                if run.check in checks
                for result in run.results
                for artifact in result.artifacts
            )
