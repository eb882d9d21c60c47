"""``onwatch doctor``: look for current secret values in everything onwatch has kept.

Masking (``onwatch.masking``) hides secrets before anything is written; the doctor checks that
nothing got through. It looks every secret of the configuration up again and searches, in every
form the masker knows (raw, URL, base64, JSON, HTML...):

- every text and JSON column of every table of the database, in batches of rows;
- for SQLite, the raw bytes of the database file and its ``-wal`` and ``-journal`` files:
  freed pages and old WAL frames keep text that no query returns any more;
- every file of the artifacts folder, and each member of a zip archive (a Playwright trace);
- the spool of runs waiting for the database (``state_dir/spool``).

The database is only read, by ``onwatch.store.scan`` (SQLite through a ``mode=ro`` URI,
PostgreSQL in a read-only transaction, never migrated); this module searches what it returns
and reports. A hit says where, which secret and which encoding, never the text matched;
names shown from the data (primary keys, file names) are masked too. docs/doctor.md is the
user's side of this module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onwatch.cli.exits import EXIT_FAILED, EXIT_OK
from onwatch.errors import OnwatchError
from onwatch.masking import Hit, Masker

if TYPE_CHECKING:
    from onwatch.config import Config

__all__ = ["Finding", "Report", "Scan", "SecretState", "look_up", "render", "run_doctor", "scan"]

BATCH_ROWS = 1000
CHUNK_BYTES = 1 << 20
# Suffixes of the files SQLite keeps next to a database, each holding copies of its pages.
SQLITE_FILES = ("", "-wal", "-journal")


@dataclass(frozen=True, slots=True)
class SecretState:
    """Whether one secret of the configuration could be looked up, and if not why."""

    name: str
    ok: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON object of this secret."""
        return {"name": self.name, "ok": self.ok, "error": self.error}


@dataclass(frozen=True, slots=True)
class Finding:
    """One place a secret was found.

    ``table``, ``column`` and ``row`` (the primary key) are set for ``database`` hits, ``file``
    and ``offset`` (in bytes, within the file or zip member) for the others.
    """

    where: str
    secret: str
    encoding: str
    table: str | None = None
    column: str | None = None
    row: dict[str, Any] | None = None
    file: str | None = None
    offset: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON object of this hit."""
        return {
            "where": self.where,
            "table": self.table,
            "column": self.column,
            "row": self.row,
            "file": self.file,
            "offset": self.offset,
            "secret": self.secret,
            "encoding": self.encoding,
        }

    def describe(self) -> str:
        """Return the hit as one line of text."""
        if self.where == "database":
            key = " ".join(f"{k}={v}" for k, v in (self.row or {}).items()) or "without a key"
            place = f"{self.table}.{self.column} row {key}"
        else:
            place = f"{self.file} at byte {self.offset}"
        return f"{self.where}: {place}: {self.secret} ({self.encoding})"


@dataclass(slots=True)
class Scan:
    """What one scan found and how much it read."""

    hits: list[Finding] = field(default_factory=list)
    rows: int = 0
    files: int = 0
    bytes: int = 0
    database_found: bool = True

    def count(self, *where: str) -> int:
        """Return the number of hits in the given places."""
        return sum(hit.where in where for hit in self.hits)


@dataclass(frozen=True, slots=True)
class Report:
    """The secrets looked up and what the scan found."""

    secrets: list[SecretState]
    scan: Scan

    @property
    def exit_code(self) -> int:
        """Return 0 when every secret was looked up and none was found, else 1."""
        return EXIT_FAILED if self.scan.hits or not all(s.ok for s in self.secrets) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON object of ``onwatch doctor --json``."""
        return {
            "secrets": [state.to_json() for state in self.secrets],
            "hits": [hit.to_json() for hit in self.scan.hits],
            "scanned": {
                "rows": self.scan.rows,
                "files": self.scan.files,
                "bytes": self.scan.bytes,
            },
        }


def look_up(
    references: Iterable[tuple[str, str]], base_dir: Path, environ: Mapping[str, str] | None = None
) -> tuple[list[SecretState], list[tuple[str, str]]]:
    """Look each ``(name, reference)`` up; return every secret's state and the values found."""
    from onwatch.errors import SecretError
    from onwatch.secrets import resolve

    states: list[SecretState] = []
    values: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    for name, reference in references:
        try:
            value = resolve({name: reference}, base_dir, environ)[name]
        except SecretError as exc:
            problems.append((name, "; ".join(exc.problems)))
            continue
        values.append((name, value))
        states.append(SecretState(name, True))
    # A failing command may print another secret in its error: mask with the ones found.
    masker = Masker(values)
    states += [SecretState(name, False, masker.mask(error)) for name, error in problems]
    return states, values


def scan(
    config: Config,
    values: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    batch_rows: int = BATCH_ROWS,
    chunk_bytes: int = CHUNK_BYTES,
) -> Scan:
    """Search the database, the artifacts and the spool of ``config`` for ``values``."""
    masker = Masker(values)
    found = Scan()
    if not masker:
        return found
    seen: set[Path] = set()
    sqlite_file = _scan_database(config.database_url, masker, found, batch_rows)
    if sqlite_file is not None:
        for suffix in SQLITE_FILES:
            path = sqlite_file.with_name(sqlite_file.name + suffix)
            if path.is_file():
                seen.add(path.resolve())
                _scan_file(path, "database-file", masker, found, chunk_bytes)
    for where, root in (("artifact", config.artifacts_dir), ("spool", config.state_dir / "spool")):
        for path in _files_under(root):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                _scan_texts(path, where, masker, found)
    return found


def render(report: Report) -> str:
    """Return the text output: one line per problem and per hit, then a summary."""
    lines = [f"cannot look up: {s.error}" for s in report.secrets if not s.ok]
    lines += [hit.describe() for hit in report.scan.hits]
    found = report.scan
    checked = sum(s.ok for s in report.secrets)
    if not checked:
        summary = "0 secrets checked: nothing to look for"
    else:
        if not found.database_found:
            lines.append("no database yet: nothing stored to scan there")
        summary = (
            f"{checked} secret{'s' * (checked != 1)} checked, "
            f"{_hits(found.count('database', 'database-file'))} in the database, "
            f"{found.count('artifact')} in artifacts, {found.count('spool')} in the spool "
            f"({found.rows} rows, {found.files} files, {found.bytes} bytes scanned)"
        )
    failed = len(report.secrets) - checked
    if failed:
        summary += f"; {failed} could not be looked up"
    return "\n".join([*lines, summary])


def run_doctor(config: Config, *, json_output: bool) -> int:
    """Look the configuration's secrets up, scan for them, print the report; 1 on any finding."""
    states, values = look_up(config.all_secrets(), config.base_dir)
    report = Report(states, scan(config, values))
    if json_output:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(report))
    return report.exit_code


def _hits(count: int) -> str:
    return f"{count} hit{'s' * (count != 1)}"


# -- the database ----------------------------------------------------------------------------


def _scan_database(url: str, masker: Masker, found: Scan, batch_rows: int) -> Path | None:
    """Scan every table; return the SQLite file to read raw, if there is one."""
    from onwatch.store.scan import scan_rows, sqlite_file

    path = sqlite_file(url)
    if path is not None and not path.is_file():
        found.database_found = False  # opening it would create it
        return None
    for row in scan_rows(url, batch_rows=batch_rows):
        found.rows += 1
        for column, value in row.cells:
            hits = _find(value, masker)
            # One line per secret and form in a cell: its offsets would add nothing.
            for name, encoding in dict.fromkeys((h.name, h.encoding) for h in hits):
                primary = {k: _shown(v, masker) for k, v in row.key.items()}
                found.hits.append(
                    Finding(
                        "database",
                        name,
                        encoding,
                        table=row.table,
                        column=column,
                        row=primary or None,
                    )
                )
    return path


def _find(value: object, masker: Masker) -> list[Hit]:
    if isinstance(value, str):
        return masker.find(value)
    if isinstance(value, bytes | memoryview):
        return masker.find_bytes(bytes(value))
    return []


def _shown(value: object, masker: Masker) -> object:
    """Return a primary key value fit for JSON, with any secret in it masked."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    return masker.mask(str(value))


# -- files -----------------------------------------------------------------------------------


def _files_under(root: Path) -> Iterator[Path]:
    if root.is_dir():
        yield from sorted(path for path in root.rglob("*") if path.is_file())


def _scan_file(path: Path, where: str, masker: Masker, found: Scan, chunk_bytes: int) -> None:
    """Search a file of any size in chunks; each chunk starts with the end of the one before."""
    overlap = masker.longest()
    start = 0  # offset in the file of window[0]
    tail = b""
    reported: set[int] = set()
    try:
        reading = path.open("rb")
    except FileNotFoundError:
        return
    found.files += 1
    with reading, _readable(path):
        while block := reading.read(chunk_bytes):
            found.bytes += len(block)
            window = tail + block
            now: set[int] = set()
            for hit in masker.find_bytes(window):
                offset = start + hit.start
                # Wholly inside the tail: already found in the window before.
                if hit.end > len(tail) and offset not in reported:
                    found.hits.append(
                        Finding(where, hit.name, hit.encoding, file=str(path), offset=offset)
                    )
                now.add(offset)
            reported = now
            keep = min(overlap, len(window))
            start += len(window) - keep
            tail = window[len(window) - keep :]


def _scan_texts(path: Path, where: str, masker: Masker, found: Scan) -> None:
    """Search a stored file, and each member of it when it is a zip archive."""
    from onwatch.artifacts import iter_texts

    try:
        with _readable(path):
            found.bytes += path.stat().st_size
            for name, data in iter_texts(path):
                for hit in masker.find_bytes(data):
                    shown = masker.mask(name)
                    found.hits.append(
                        Finding(where, hit.name, hit.encoding, file=shown, offset=hit.start)
                    )
    except FileNotFoundError:
        return  # pruned or replayed while the scan ran
    found.files += 1


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn a file that cannot be read into an error naming it; let a vanished one through."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        # A scan that skipped it would report a clean bill of health it cannot give.
        raise OnwatchError(f"cannot read {path}: {exc.strerror or exc}") from exc
