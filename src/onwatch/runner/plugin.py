"""The pytest plugin that streams one JSON line per event while a check runs.

Registered through the ``pytest11`` entry point, so it loads in every pytest process of the
environment, and stays inert unless ``ONWATCH_EVENTS`` names a file: a team's own pytest runs
are untouched. It imports nothing beyond the standard library and pytest, and writes each line
with one ``write`` call so that a process killed at any moment leaves every finished test on disk
(at worst a truncated last line, which the reader ignores). Should the file refuse a write (the
disk filled up during the run), that line and every later one go to ``ONWATCH_EVENTS_SPARE``, a
memory file of onwatch's, so that a full disk costs the run none of its results.

Events, in order: ``start`` (rootdir, attempt), ``collect_error`` (per broken module),
``collected`` (count), then per test ``begin`` and ``result``, then ``finished`` (exit status).

Browser tests: when a test holds a Playwright sync ``Page`` or a Selenium ``WebDriver``, the
``capture`` module (imported only then) saves its screenshot, HTML, console log and trace into
``ONWATCH_ARTIFACTS_DIR`` when the test fails (``ONWATCH_ARTIFACTS``: ``on-failure``, ``always``
or ``off``); the ``result`` event lists them in ``artifacts``, and the captures that failed in
``artifact_errors``.

Secrets: ``ONWATCH_SECRETS`` names the environment variables that hold the check's secrets. Every
event is masked (``onwatch.masking``) before it is written, so no secret value reaches the disk.

pytest-playwright suites run unchanged against the Chromium onwatch found (``ONWATCH_BROWSER``):
the ``launch`` module overrides its ``browser_type_launch_args`` session fixture to add the
executable and the flags a server needs. A conftest that overrides the fixture again wins, as
plugin fixtures always lose to conftest ones; if it requests ``browser_type_launch_args``, it
receives onwatch's value and keeps the executable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from onwatch.runner import (
    ARTIFACTS_DIR_ENV,
    ARTIFACTS_MODE_ENV,
    ATTEMPT_ENV,
    BROWSER_ENV,
    EVENTS_ENV,
    EVENTS_SPARE_ENV,
    SCREENSHOTS_ENV,
    SECRETS_ENV,
    TRACING_ENV,
)

if TYPE_CHECKING:
    from onwatch.masking import Masker
    from onwatch.runner.capture import BrowserRecorder

MAX_MESSAGE = 2_000
MAX_TRACEBACK = 32_000
MAX_OUTPUT = 32_000
CAPTURE_MODES = ("on-failure", "always", "off")
# The name pytest-playwright's ``pytest11`` entry point registers its plugin under.
PYTEST_PLAYWRIGHT = "playwright"

# The test running now, for ``onwatch.steps``: a pytest process runs one test at a time, and only
# a process that onwatch started sets it.
current_item: pytest.Item | None = None

_RECORDER = pytest.StashKey["BrowserRecorder"]()


def pytest_configure(config: pytest.Config) -> None:
    """Start recording when onwatch runs this pytest process."""
    path = os.environ.get(EVENTS_ENV)
    # Under pytest-xdist only the controller records, or each test would be written twice.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(EventWriter(path), "onwatch-event-writer")
        executable = os.environ.get(BROWSER_ENV)
        if executable and config.pluginmanager.has_plugin(PYTEST_PLAYWRIGHT):
            from onwatch.runner import launch

            config.stash[launch.EXECUTABLE] = executable
            config.pluginmanager.register(launch, "onwatch-chromium-launch")


def bounded(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, keeping its head and its tail."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[... {dropped} characters cut ...]\n{text[-tail:]}"


def _json_safe(value: object) -> object:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


class EventWriter:
    """Writes the event stream of one pytest process to a file."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.spare = os.environ.get(EVENTS_SPARE_ENV) or None
        self.spare_fd: int | None = None
        self.attempt = int(os.environ.get(ATTEMPT_ENV, "1"))
        self.reports: dict[str, list[pytest.TestReport]] = {}
        root = os.environ.get(ARTIFACTS_DIR_ENV, "")
        self.artifacts_root = Path(os.path.abspath(root)) if root else None
        mode = os.environ.get(ARTIFACTS_MODE_ENV) or "on-failure"
        self.capture_mode = mode if mode in CAPTURE_MODES else "on-failure"
        if self.artifacts_root is None:  # nowhere to write to
            self.capture_mode = "off"
        self.tracing = os.environ.get(TRACING_ENV) == "1"
        self.screenshots = os.environ.get(SCREENSHOTS_ENV) != "0"
        self.masker = _masker()

    def mask(self, text: str) -> str:
        """Return ``text`` with the secrets masked: before it is cut, so no half is left."""
        return text if self.masker is None else self.masker.mask(text)

    def emit(self, event: dict[str, Any]) -> None:
        """Append one event as a JSON line, secrets masked."""
        if self.masker is not None:
            event = self.masker.mask_value(json.loads(json.dumps(event, default=repr)))
        line = json.dumps(event, separators=(",", ":"), default=repr) + "\n"
        self._write(line.encode("utf-8", "replace"))

    def _write(self, data: bytes) -> None:
        if self.spare_fd is None:
            try:
                if os.write(self.fd, data) == len(data):
                    return
            except OSError:
                if self.spare is None:
                    raise
            if self.spare is None:
                raise OSError(f"short write of an event to {os.environ.get(EVENTS_ENV)}")
            # The disk filled up: the rest of the stream goes to the parent's memory file, from
            # this whole line on (the parent ignores the unfinished one left in the file).
            self.spare_fd = os.open(self.spare, os.O_WRONLY | os.O_APPEND)
        os.write(self.spare_fd, data)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.emit(
            {
                "event": "start",
                "pid": os.getpid(),
                "attempt": self.attempt,
                "rootdir": str(session.config.rootpath),
            }
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = self.mask(str(report.longrepr))
            self.emit(
                {
                    "event": "collect_error",
                    "nodeid": report.nodeid,
                    "message": bounded(_last_error_line(text), MAX_MESSAGE),
                    "traceback": bounded(text, MAX_TRACEBACK),
                }
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.emit({"event": "collected", "count": len(session.items)})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.emit({"event": "begin", "nodeid": nodeid})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        global current_item
        current_item = item

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        global current_item
        try:
            return (yield)
        finally:
            current_item = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        # Listen to the console and start the trace before the test's first step.
        recorder = self._recorder(item)
        if recorder is not None:
            item.stash[_RECORDER] = recorder
            try:
                recorder.start()
            except Exception as exc:  # noqa: BLE001 - a capture never fails a test
                recorder.errors.append(_describe_capture_error(exc))
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # The exception type is not on the report itself; keep it for the result event.
        if call.excinfo is not None:
            report.onwatch_exception = call.excinfo.typename  # type: ignore[attr-defined]
        if report.when == "call" or (report.when == "setup" and report.failed):
            self._capture(item, report)
        return report

    def _recorder(self, item: pytest.Item) -> BrowserRecorder | None:
        if self.capture_mode == "off" or self.artifacts_root is None:
            return None
        targets = browser_targets(item)
        if not targets:
            return None
        from onwatch.runner.capture import BrowserRecorder, Folder

        folder = Folder(self.artifacts_root, item.nodeid, self.attempt)
        return BrowserRecorder(targets, folder, self.tracing, self.screenshots)

    def _capture(self, item: pytest.Item, report: pytest.TestReport) -> None:
        if report.when == "call":
            recorder = item.stash.get(_RECORDER, None)
            if recorder is not None:
                del item.stash[_RECORDER]
        else:  # a failed setup: the page may show why, its console was not watched yet
            recorder = self._recorder(item)
        if recorder is None:
            return
        keep = self.capture_mode == "always" or report.failed
        try:
            artifacts = recorder.finish(keep)
        except Exception as exc:  # noqa: BLE001 - a capture never fails a test
            artifacts = recorder.artifacts
            recorder.errors.append(_describe_capture_error(exc))
        if self.masker is not None:
            # Masked where they are written: a run in flight never leaves page HTML or a console
            # log with a secret on disk (onwatch masks them again as it stores them).
            from dataclasses import replace

            from onwatch.artifacts import mask_file

            masked = []
            for artifact in artifacts:
                try:
                    mask_file(artifact.path, artifact.kind, self.masker)
                    artifact = replace(artifact, size=artifact.path.stat().st_size)
                except OSError as exc:
                    recorder.errors.append(f"cannot mask {artifact.name}: {exc}")
                masked.append(artifact)
            artifacts = masked
        report.onwatch_artifacts = [a.as_event() for a in artifacts]  # type: ignore[attr-defined]
        report.onwatch_artifact_errors = list(recorder.errors)  # type: ignore[attr-defined]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        reports = self.reports.pop(nodeid, [])
        if reports:
            self.emit(_result(nodeid, reports, self.attempt, self.mask))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.emit({"event": "finished", "exitstatus": int(exitstatus)})

    def pytest_unconfigure(self) -> None:
        os.close(self.fd)
        if self.spare_fd is not None:
            os.close(self.spare_fd)


def _masker() -> Masker | None:
    """Return a masker of the secrets onwatch passed in, or None when there are none."""
    names = [n for n in os.environ.get(SECRETS_ENV, "").split(",") if n in os.environ]
    if not names:
        return None
    from onwatch.errors import SecretTooShort
    from onwatch.masking import Masker

    try:
        return Masker({name: os.environ[name] for name in names})
    except SecretTooShort:  # onwatch refuses these before a run starts
        return None


def _describe_capture_error(exc: Exception) -> str:
    from onwatch.runner.capture import describe

    return describe("capture", exc)


def browser_targets(item: pytest.Item) -> list[tuple[str, object]]:
    """Return the Playwright pages and Selenium drivers a test uses, without importing either."""
    values = list(getattr(item, "funcargs", {}).values())
    # A fixture that failed in setup leaves the fixtures it used out of ``funcargs``; they are
    # among the resolved definitions, which pytest keeps on the (private) request.
    definitions = getattr(getattr(item, "_request", None), "_fixture_defs", None)
    if isinstance(definitions, dict):
        for definition in definitions.values():
            cached = getattr(definition, "cached_result", None)
            if isinstance(cached, tuple) and cached:
                values.append(cached[0])
    targets: list[tuple[str, object]] = []
    for value in values:
        kind = _browser_kind(value)
        if kind is not None and not any(value is seen for _, seen in targets):
            targets.append((kind, value))
    return targets


def _browser_kind(value: object) -> str | None:
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    # The sync API only: an async page's methods would return coroutines nobody awaits.
    if cls.__name__ == "Page" and module.startswith("playwright.sync_api"):
        return "playwright"
    # Looked up on the class: reading ``page_source`` on the driver asks the browser.
    if (
        module.startswith("selenium.webdriver")
        and hasattr(cls, "get_screenshot_as_png")
        and hasattr(cls, "page_source")
    ):
        return "selenium"
    return None


def _result(
    nodeid: str,
    reports: list[pytest.TestReport],
    attempt: int,
    mask: Callable[[str], str] = str,
) -> dict[str, Any]:
    outcome, phase, deciding = "passed", "call", None
    for report in reports:
        xfail = hasattr(report, "wasxfail")
        if report.when == "teardown":
            if report.failed and outcome in ("passed", "skipped", "xfailed", "xpassed"):
                outcome, phase, deciding = "error", "teardown", report
        elif report.failed:
            outcome = "error" if report.when == "setup" else "failed"
            phase, deciding = report.when, report
        elif report.skipped:
            outcome, phase, deciding = ("xfailed" if xfail else "skipped"), report.when, report
        elif report.when == "call" and xfail:
            outcome, phase, deciding = "xpassed", "call", report
    message = traceback = output = exception = None
    if deciding is not None:
        exception = getattr(deciding, "onwatch_exception", None)
        message, traceback = _describe(deciding, mask)
    if outcome in ("failed", "error", "xpassed"):
        # A later phase's report repeats the sections of the phases before it: keep each once.
        seen = dict.fromkeys((title, content) for r in reports for title, content in r.sections)
        sections = [f"--- {title} ---\n{content}" for title, content in seen]
        output = bounded(mask("\n".join(sections)), MAX_OUTPUT) if sections else None
    event = {
        "event": "result",
        "nodeid": nodeid,
        "outcome": outcome,
        "phase": phase,
        "duration": sum(r.duration for r in reports),
        "attempt": attempt,
        "exception": exception,
        "message": message,
        "traceback": traceback,
        "output": output,
        "properties": [[str(k), _json_safe(v)] for k, v in reports[-1].user_properties],
        "artifacts": [a for r in reports for a in getattr(r, "onwatch_artifacts", ())],
    }
    errors = [e for r in reports for e in getattr(r, "onwatch_artifact_errors", ())]
    if errors:
        event["artifact_errors"] = errors
    return event


def _describe(
    report: pytest.TestReport, mask: Callable[[str], str] = str
) -> tuple[str | None, str | None]:
    if report.skipped:
        reason = getattr(report, "wasxfail", None)
        if not reason and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2])
        return (bounded(mask(reason), MAX_MESSAGE) if reason else None), None
    if report.passed:  # xpassed
        reason = getattr(report, "wasxfail", "")
        return (f"unexpectedly passed: {reason}" if reason else "unexpectedly passed"), None
    longrepr = report.longrepr
    text = mask(str(longrepr)) if longrepr is not None else ""
    crash = getattr(longrepr, "reprcrash", None)
    message = mask(getattr(crash, "message", None) or "") or _last_error_line(text)
    return bounded(message, MAX_MESSAGE), bounded(text, MAX_TRACEBACK) or None


def _last_error_line(text: str) -> str:
    lines = [line[2:].strip() for line in text.splitlines() if line.startswith("E ")]
    if lines:
        return "\n".join(lines[:10])
    stripped = [line for line in text.splitlines() if line.strip()]
    return stripped[-1].strip() if stripped else text
