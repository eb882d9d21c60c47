"""Where files captured from tests are kept: a folder of files named by their SHA-256.

A file is stored once however many results refer to it (a page that fails the same way every
five minutes keeps one screenshot), under ``ROOT/ab/abcdef…``. Storing writes to a temporary
name and renames, so a crash never leaves half a file under a real name. A file's modification
time is when it was last stored: pruning by age keeps what tests still produce.

Pruning deletes files only. The results that list them keep their entries, and the dashboard
says the file was pruned: the history of outcomes and errors is never thinned out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onwatch.masking import Masker

__all__ = ["ArtifactStore", "Pruned", "mask_file"]
# Pictures cannot be masked: a secret shown on a page stays in its screenshot (docs/secrets.md).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pruning pass deleted."""

    files: int
    bytes: int


def mask_file(path: Path, kind: str, masker: Masker) -> None:
    """Mask secrets in a captured file in place: text as it is, zip archives member by member."""
    if not masker or kind == "screenshot" or path.suffix.lower() in IMAGE_SUFFIXES:
        return
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04":
        masked = _masked_zip(data, masker)
    else:
        masked = masker.mask_bytes(data)
    if masked != data:
        temporary = path.with_name(path.name + ".masking")
        temporary.write_bytes(masked)
        os.replace(temporary, path)


def _masked_zip(data: bytes, masker: Masker) -> bytes:
    """Return a zip archive (a Playwright trace) with each member's text masked."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as reading, zipfile.ZipFile(out, "w") as writing:
        for info in reading.infolist():
            content = reading.read(info)
            if not info.filename.lower().endswith(IMAGE_SUFFIXES):
                content = masker.mask_bytes(content)
            writing.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def iter_texts(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(where, bytes)`` of a stored file: itself, or each member of a zip archive."""
    import zipfile

    data = path.read_bytes()
    yield str(path), data
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    yield f"{path}!{info.filename}", archive.read(info)
        except (zipfile.BadZipFile, OSError):
            return


class ArtifactStore:
    """A content-addressed folder of artifact files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, source: Path) -> tuple[str, int]:
        """Store a copy of ``source``; return its SHA-256 and size."""
        digest = hashlib.sha256()
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / f".incoming-{os.getpid()}-{time.monotonic_ns()}"
        size = 0
        try:
            with source.open("rb") as reading, temporary.open("wb") as writing:
                while chunk := reading.read(_CHUNK):
                    digest.update(chunk)
                    writing.write(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            target = self._path(sha)
            if target.exists():
                os.utime(target)  # seen again: young again
            else:
                target.parent.mkdir(exist_ok=True)
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return sha, size

    def path_of(self, sha256: str) -> Path | None:
        """Return the stored file of a digest, or None if it is unknown or was pruned."""
        if not _SHA256.fullmatch(sha256):
            return None
        path = self._path(sha256)
        return path if path.is_file() else None

    def prune(self, keep_seconds: float, max_bytes: int, now: float | None = None) -> Pruned:
        """Delete files older than ``keep_seconds``, then the oldest until under ``max_bytes``."""
        now = time.time() if now is None else now
        files: list[tuple[float, int, Path]] = []
        for path in self._files():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        files.sort()
        total = sum(size for _, size, _ in files)
        deleted = freed = 0
        for mtime, size, path in files:
            if mtime >= now - keep_seconds and total <= max_bytes:
                break  # oldest first: everything after this one is younger and within the cap
            path.unlink(missing_ok=True)
            deleted += 1
            freed += size
            total -= size
        return Pruned(deleted, freed)

    def size(self) -> int:
        """Return the bytes stored."""
        return sum(path.stat().st_size for path in self._files())

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir() and len(folder.name) == 2:
                for path in folder.iterdir():
                    if _SHA256.fullmatch(path.name):
                        yield path


def remove_tree(path: Path) -> None:
    """Delete a folder of captured files left by a run, if there is one."""
    shutil.rmtree(path, ignore_errors=True)
