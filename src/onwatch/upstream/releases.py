"""Releases of a package and which of them are due for testing: pure, ``now`` passed in.

A release is *eligible* when it is not yanked and, unless pre-releases are wanted, not a pre- or
dev release (``packaging``'s ``is_prerelease`` covers both). It is *old enough* when ``min_age``
seconds have passed since it was uploaded (or first seen). Versions are compared by PEP 440, so
1.10 > 1.9 and 2.0.post1 > 2.0 > 2.0rc1 > 2.0.dev1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from packaging.version import Version


@dataclass(frozen=True)
class Release:
    """One version of a package on an index, with all its files (sdists and wheels)."""

    version: str  # normalized PEP 440 form, e.g. "1.2rc1" for a file named 1.2-RC1
    files: int
    yanked: bool  # every file of the release is yanked (PEP 592)
    uploaded_at: datetime | None  # earliest upload of its files (PEP 700); None if not given

    @property
    def parsed(self) -> Version:
        """The version, parsed for PEP 440 comparison."""
        return Version(self.version)


def latest(
    releases: Iterable[Release],
    *,
    prereleases: bool,
    min_age: float,
    now: datetime,
    first_seen: Mapping[str, datetime] | None = None,
) -> Release | None:
    """Return the highest eligible release at least ``min_age`` seconds old, or None.

    The age counts from ``uploaded_at``, else from ``first_seen[version]``. A release with
    neither is treated as old enough: a plain HTML index gives no upload times, and holding
    such releases back for ever would silently stop the watch; a caller that remembers when it
    first saw each version passes ``first_seen`` to make ``min_age`` work there too.
    """
    ready = [
        release
        for release in releases
        if _eligible(release, prereleases) and _old_enough(release, min_age, now, first_seen)
    ]
    return max(ready, key=lambda release: release.parsed, default=None)


def newer_than(releases: Iterable[Release], version: str, *, prereleases: bool) -> list[Release]:
    """Return the eligible releases strictly above ``version``, lowest first.

    Testing them in this order, and remembering the last one tested, means a release published
    between two polls is never skipped, even when a later one came out in the same interval.
    """
    floor = Version(version)
    return sorted(
        (r for r in releases if _eligible(r, prereleases) and r.parsed > floor),
        key=lambda release: release.parsed,
    )


def settled(
    releases: Iterable[Release],
    *,
    min_age: float,
    now: datetime,
    first_seen: Mapping[str, datetime] | None = None,
) -> list[Release]:
    """Return the leading releases that are old enough, stopping at the first that is not.

    Meant for the output of ``newer_than``: stopping (rather than leaving the young one out)
    keeps the releases in order, so a caller that advances past the last one it tested never
    jumps over a release that was still waiting. Ages are counted as in ``latest``.
    """
    ready: list[Release] = []
    for release in releases:
        if not _old_enough(release, min_age, now, first_seen):
            break
        ready.append(release)
    return ready


def _eligible(release: Release, prereleases: bool) -> bool:
    if release.yanked:
        return False
    return prereleases or not release.parsed.is_prerelease


def _old_enough(
    release: Release,
    min_age: float,
    now: datetime,
    first_seen: Mapping[str, datetime] | None,
) -> bool:
    # Checked first so that a zero min_age never depends on clocks (an index whose clock runs
    # ahead would otherwise give fresh releases a negative age).
    if min_age <= 0:
        return True
    since = release.uploaded_at
    if since is None and first_seen is not None:
        since = first_seen.get(release.version)
    if since is None:
        return True
    return (now - since).total_seconds() >= min_age


def same_line(version: str, pinned: str) -> bool:
    """Return whether ``version`` shares the major.minor of ``pinned`` (1.26.18 and 1.26.16)."""
    return _line(Version(version)) == _line(Version(pinned))


def line_name(pinned: str) -> str:
    """Return the name of ``pinned``'s line, e.g. ``"1.26"`` for 1.26.16."""
    return ".".join(str(part) for part in _line(Version(pinned)))


def _line(version: Version) -> tuple[int, int]:
    release = version.release + (0,)
    return release[0], release[1]
