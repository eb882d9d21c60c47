"""The product's own dependency set, which a release environment holds with one release swapped in.

Where it comes from, in order:

- ``requirements`` of the watch: a pinned requirements file (pip-compile or ``uv export``
  output; nested ``-r``/``-c`` files are read too) or a pyproject's dependencies with extras;
- otherwise the distributions installed in the environment onwatch runs in, minus onwatch and
  its *exclusive* dependency closure: every distribution reachable from onwatch's requirements
  (all its extras included) that no other installed distribution requires, directly or not.
  A library that both onwatch and a product use but that nothing installed names (the product
  is seldom installed as a distribution) goes with onwatch: name it in ``requirements``.
  Distributions not installed from an index (editable or local-folder installs) and the
  installers themselves (pip, uv) are left out too.

Whatever names a watched package is dropped, so that the release under test *replaces* the
product's pin instead of being added next to it. Hashes (``--hash=``) are dropped as well: the
release under test has none in the file, and pip refuses a file where only some lines have one.
So are the file's own sources (``--index-url``, ``--extra-index-url``, ``--find-links``): only
the watch's ``index`` and ``extra_indexes`` are installed from.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from onwatch.errors import BuildError

OWN = "onwatch"
INSTALLERS = frozenset({"pip", "uv"})
_HASH = re.compile(r"\s--hash[= ]\S+")
# Where to install from is the watch's to say (index, extra_indexes), not the file's.
_SOURCES = re.compile(r"(-i|--index-url|--extra-index-url|-f|--find-links|--no-index)\b")


def requirement_lines(spec: str | None, base_dir: Path) -> list[str] | None:
    """Return the requirement lines of a watch's ``requirements``; None when none is given."""
    if not spec:
        return None
    match = re.fullmatch(r"(.+?)(?:\[([^\]]*)\])?", spec.strip())
    assert match is not None
    path = base_dir / match.group(1)
    if path.name == "pyproject.toml" or path.suffix == ".toml":
        try:
            project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BuildError(f"cannot read the requirements {path}: {exc}") from exc
        lines = list(project.get("dependencies", []))
        extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            if extra not in optional:
                raise BuildError(f"{path} has no optional-dependencies extra {extra!r}")
            lines += optional[extra]
        return lines
    return _file_lines(path, seen=set())


def _file_lines(path: Path, seen: set[Path]) -> list[str]:
    """Return a requirements file's lines, joined, without comments or hashes, includes inlined."""
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read the requirements {path}: {exc.strerror}") from exc
    lines: list[str] = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = _HASH.sub("", " " + raw.split(" #", 1)[0]).strip()
        if not line or line.startswith("#"):
            continue
        option = re.fullmatch(r"(-r|--requirement|-c|--constraint)[ =]?\s*(\S+)", line)
        if option is not None:
            lines += _file_lines(path.parent / option.group(2), seen)
        elif _SOURCES.match(line) is None:
            lines.append(line)
    return lines


def replace_pins(lines: Iterable[str], packages: Iterable[str]) -> list[str]:
    """Return ``lines`` without any requirement naming one of ``packages``."""
    dropped = {canonicalize_name(name) for name in packages}
    kept = []
    for line in lines:
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement:
            name = None  # an option line (--index-url, -e ., a URL): kept as written
        if name not in dropped:
            kept.append(line)
    return kept


def names(lines: Iterable[str]) -> set[str]:
    """Return the canonical names of the distributions ``lines`` require."""
    found: set[str] = set()
    for line in lines:
        try:
            found.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return found


def installed_set() -> list[str]:
    """Return ``name==version`` for the product's part of the environment onwatch runs in."""
    graph: dict[str, set[str]] = {}
    versions: dict[str, str] = {}
    from_index: set[str] = set()
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if not name or name in graph:
            continue  # the first on sys.path is the one imported
        graph[name] = requirements_of(dist.requires or [])
        versions[name] = dist.version
        if not _local(dist):
            from_index.add(name)
    drop = exclusive_closure(graph, OWN) | INSTALLERS
    return [f"{name}=={versions[name]}" for name in sorted(from_index - drop)]


def requirements_of(requires: Iterable[str]) -> set[str]:
    """Return the names ``requires`` (Requires-Dist lines) name on this interpreter, any extra."""
    found: set[str] = set()
    base: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", str(marker)) if marker else None
        environment = {**base, "extra": extra.group(1) if extra else ""}
        if marker is None or marker.evaluate(environment):
            found.add(canonicalize_name(requirement.name))
    return found


def exclusive_closure(graph: Mapping[str, set[str]], root: str) -> set[str]:
    """Return ``root`` and what it requires that nothing outside that closure requires.

    ``graph`` maps each installed distribution to the installed ones it requires; names it
    mentions that are not installed are ignored.
    """
    closure = _reachable(graph, [root])
    others = [name for name in graph if name not in closure]
    return closure - _reachable(graph, others)


def _reachable(graph: Mapping[str, set[str]], starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = [name for name in starts if name in graph]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [child for child in graph[name] if child in graph and child not in seen]
    return seen


def _local(dist: metadata.Distribution) -> bool:
    """Return whether ``dist`` was installed from a folder or a URL rather than an index."""
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    try:
        return "url" in json.loads(text)
    except ValueError:
        return False


def pinned_version(lines: Iterable[str] | None, package: str) -> str | None:
    """Return the version ``lines`` pin ``package`` at (``name==1.26.16``), or None.

    Only an exact pin counts: a range (``>=1.26``) names no line to follow.
    """
    wanted = canonicalize_name(package)
    for line in lines or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != wanted:
            continue
        specs = list(requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
    return None
