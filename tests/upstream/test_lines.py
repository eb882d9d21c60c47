"""Version lines: the product's pinned line is followed as well as the newest.

The product pins ``lines-lib==1.26.16``. 1.26.17 is a fix on that line, 2.0.0 changes the API
(``greet`` wants a greeting), and 1.26.18, published after 2.0.0, backports that change to the
pinned line. A real pypiserver serves built wheels; ``watch check`` runs the checks for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from receivers import HttpReceiver
from upstream.indexes import Shelf
from upstream.test_watch import project, watch_check

pytestmark = pytest.mark.e2e

PACKAGE = "lines-lib"
KEEPS = "def greet(name):\n    return 'hello ' + name\n"
BREAKS = "def greet(name, greeting):\n    return greeting + ' ' + name\n"


def publish(shelf: Shelf, version: str, code: str) -> None:
    shelf.publish(PACKAGE, version, modules={"lines_lib/__init__.py": code})


def runs_of(report: dict[str, object]) -> list[tuple[str, str | None, str | None]]:
    """Return (version, line, previous) of each run of a report."""
    runs = report["runs"]
    assert isinstance(runs, list)
    return [
        (
            run["upstream"]["version"],
            run["upstream"].get("line"),
            run["trigger_detail"]["previous"],
        )
        for run in runs
    ]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def test_a_backport_is_tested_on_the_pinned_line_against_its_baseline(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    """Fault: a breaking backport on the pinned line published after a newer major release."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "requirements.txt").write_text(f"{PACKAGE}==1.26.16\n")
    config = project(root, PACKAGE, pypiserver_url, receiver.url, requirements="requirements.txt")

    # The pinned version is the first release: one run is the baseline of both lines.
    publish(shelf, "1.26.16", KEEPS)
    code, report = watch_check(config)
    assert code == 0
    assert runs_of(report) == [("1.26.16", "1.26", None)]
    assert report["packages"][0]["baseline"] == "1.26.16"

    # 1.26.17 is on both lines and is tested once; 2.0.0 only on the latest, against 1.26.17.
    publish(shelf, "1.26.17", KEEPS)
    publish(shelf, "2.0.0", BREAKS)
    code, report = watch_check(config)
    assert code == 1
    assert runs_of(report) == [("1.26.17", "1.26", "1.26.16"), ("2.0.0", "latest", "1.26.17")]
    [broken] = report["breakages"]
    assert broken["summary"] == "lines-lib 2.0.0 breaks on the latest line: 1 test (greeting)"
    assert report["packages"][0]["baseline"] == "2.0.0"
    first = receiver.wait_for(1)[0].json()
    assert first["summary"] == broken["summary"]

    # The backport: newer than nothing on the latest line, so only the pinned line tests it,
    # against 1.26.17 (2.0.0 fails the same test, and would have hidden the breakage).
    publish(shelf, "1.26.18", BREAKS)
    code, report = watch_check(config)
    assert code == 1
    assert runs_of(report) == [("1.26.18", "1.26", "1.26.17")]
    [broken] = report["breakages"]
    assert broken["summary"] == "lines-lib 1.26.18 breaks on the 1.26 line: 1 test (greeting)"
    assert (broken["line"], broken["previous"]) == ("1.26", "1.26.17")
    assert report["packages"][0]["baseline"] == "2.0.0"  # the latest line keeps its own
    alerts = [r.json() for r in receiver.wait_for(2)]
    assert [a["summary"] for a in alerts] == [first["summary"], broken["summary"]]

    # Nothing new on either line: nothing runs, nothing more is sent.
    code, report = watch_check(config)
    assert code == 0 and report["runs"] == []
    assert len(receiver.received) == 2


def test_with_only_the_latest_line_a_backport_is_not_tested(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    """Fault: a backport published while the watch follows only the latest line."""
    package = "latest-only-lib"
    root = tmp_path / "project"
    root.mkdir()
    (root / "requirements.txt").write_text(f"{package}==1.0.0\n")
    config = project(
        root,
        package,
        pypiserver_url,
        receiver.url,
        requirements="requirements.txt",
        lines=["latest"],
    )
    module = {"latest_only_lib/__init__.py": KEEPS}
    shelf.publish(package, "1.0.0", modules=module)
    shelf.publish(package, "2.0.0", modules=module)
    code, report = watch_check(config)
    assert code == 0
    assert [run["upstream"]["version"] for run in report["runs"]] == ["2.0.0"]
    shelf.publish(package, "1.0.1", modules=module)
    code, report = watch_check(config)
    assert code == 0 and report["runs"] == []


def test_a_backport_that_cannot_be_installed_is_retried_after_a_newer_major_is_tested(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    """Fault: a backport on the pinned line needs a dependency the index does not have yet,
    while a newer major release installs and is tested."""
    package, missing = "retry-line-lib", "retry-line-dependency"
    root = tmp_path / "project"
    root.mkdir()
    (root / "requirements.txt").write_text(f"{package}==1.0.0\n")
    config = project(root, package, pypiserver_url, receiver.url, requirements="requirements.txt")
    module = {"retry_line_lib/__init__.py": KEEPS}
    shelf.publish(package, "1.0.0", modules=module)
    code, report = watch_check(config)
    assert code == 0 and [run["upstream"]["version"] for run in report["runs"]] == ["1.0.0"]

    shelf.publish(package, "1.0.1", modules=module, requires=[missing])
    shelf.publish(package, "2.0.0", modules=module)
    code, report = watch_check(config)
    assert code == 1
    assert [(p["version"], p["kind"]) for p in report["problems"]] == [("1.0.1", "install")]
    assert [run["upstream"]["version"] for run in report["runs"]] == ["2.0.0"]
    assert [r.json()["event"] for r in receiver.wait_for(1)] == ["upstream.install_failed"]

    # 2.0.0 is newer, but not on the pinned line: the backport is still tried.
    code, report = watch_check(config)
    assert code == 1 and [p["version"] for p in report["problems"]] == ["1.0.1"]
    assert report["runs"] == []

    shelf.publish(missing, "1.0")
    code, report = watch_check(config)
    assert code == 0 and report["problems"] == []
    assert runs_of(report) == [("1.0.1", "1.0", "1.0.0")]
    assert [r.json()["event"] for r in receiver.wait_for(2)] == [
        "upstream.install_failed",
        "upstream.install_recovered",
    ]
    code, report = watch_check(config)
    assert code == 0 and report["runs"] == []
