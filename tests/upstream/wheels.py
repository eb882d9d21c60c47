"""Pure-Python wheels written by hand, so tests can publish releases without a build backend.

A wheel is a zip file with the package's modules and a ``NAME-VERSION.dist-info`` folder holding
``METADATA``, ``WHEEL`` and ``RECORD`` (every file's sha256 and size). That is all pip needs.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

# A fixed date keeps the archives byte-for-byte reproducible (zip cannot store times before 1980).
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def build_wheel(
    folder: Path,
    name: str,
    version: str,
    modules: dict[str, str],
    *,
    requires: list[str] | tuple[str, ...] | None = None,
) -> Path:
    """Write a py3-none-any wheel of ``name`` ``version`` into ``folder``; return its path.

    ``modules`` maps paths inside the wheel (``"demo_lib/__init__.py"``) to their source;
    ``requires`` are its dependencies (``Requires-Dist`` lines, e.g. ``"demo-base>=2"``).
    """
    # The wheel spec spells the distribution name in file names with "_" for runs of "-_.".
    distribution = re.sub(r"[-_.]+", "_", canonicalize_name(name))
    normalized = str(Version(version))
    dist_info = f"{distribution}-{normalized}.dist-info"
    files: dict[str, bytes] = {path: source.encode() for path, source in modules.items()}
    depends = "".join(f"Requires-Dist: {line}\n" for line in requires or [])
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {normalized}\n{depends}".encode()
    )
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: onwatch-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")  # RECORD cannot hold its own hash
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()

    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{distribution}-{normalized}-py3-none-any.whl"
    # Written under a hidden temporary name and renamed, so an index reading the folder
    # meanwhile never lists a half-written file (indexes skip dot files).
    partial = wheel.with_name(f".{wheel.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    partial.replace(wheel)
    return wheel


def _digest(data: bytes) -> str:
    # RECORD wants urlsafe base64 without padding (PEP 376 / the wheel spec).
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
