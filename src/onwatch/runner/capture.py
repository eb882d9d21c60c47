"""Save what a person needs to debug a browser test: screenshot, page HTML, console log, trace.

The plugin imports this module only when a test holds a browser object (a Playwright sync
``Page`` or a Selenium ``WebDriver``), never at start-up. Neither library is imported here: the
objects come from the test, so their code is loaded already, and this module only calls their
methods. Every capture is bounded in time, and a capture that fails becomes a line of text in
``BrowserRecorder.errors``: capturing must never change a test's outcome, nor crash the
plugin.

Files go to ``ROOT/<slug of the node id>-a<attempt>/<name>``, a folder created on the first
write, so that a test that keeps nothing leaves nothing behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT_MS = 5_000
MAX_CONSOLE_MESSAGES = 10_000
MAX_CONSOLE_TEXT = 4_000
MAX_ERROR_TEXT = 500
MAX_SLUG = 100

PLAYWRIGHT = "playwright"

# Runs in the page: the doctype and the live DOM, which a test's clicks and scripts changed.
# Through a locator, because ``Page.content`` has no timeout and hangs on a busy page.
_SERIALIZE = """(root) => {
  const doctype = document.doctype;
  return (doctype ? new XMLSerializer().serializeToString(doctype) + "\\n" : "") + root.outerHTML;
}"""


@dataclass(frozen=True)
class CapturedFile:
    """One file captured for a test."""

    kind: str  # screenshot, html, console or trace
    name: str
    path: Path
    size: int

    def as_event(self) -> dict[str, Any]:
        """Return the artifact as the ``result`` event carries it."""
        return {"kind": self.kind, "name": self.name, "path": str(self.path), "size": self.size}


class Folder:
    """The folder of one test's artifacts, created on the first write."""

    def __init__(self, root: Path, nodeid: str, attempt: int) -> None:
        self.base = root / f"{slug(nodeid)}-a{attempt}"
        self.path: Path | None = None

    def write(self, kind: str, name: str, data: bytes) -> CapturedFile:
        """Write ``data`` as ``name`` and return it as an artifact."""
        target = self.reserve(name)
        target.write_bytes(data)
        return self.found(kind, name)

    def reserve(self, name: str) -> Path:
        """Return where ``name`` goes, creating the folder if needed."""
        if self.path is None:
            self.path = _claim(self.base)
        return self.path / name

    def found(self, kind: str, name: str) -> CapturedFile:
        """Return the artifact for a file something else wrote into the folder."""
        path = self.reserve(name)
        return CapturedFile(kind, name, path, path.stat().st_size)


def _claim(base: Path) -> Path:
    # A test run twice by one process (a rerun plugin) must not overwrite its first files.
    candidate, number = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}-{number}")


def slug(nodeid: str) -> str:
    """Return a file name made from a node id: safe characters only, and not too long."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("._-")
    return text[:MAX_SLUG] or "test"


def describe(what: str, exc: BaseException) -> str:
    """Describe a failed capture in one line: ``what: ExceptionType: first line``."""
    lines = str(exc).strip().splitlines()
    text = f"{what}: {type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text[:MAX_ERROR_TEXT]


class Console:
    """The console messages and uncaught errors of one Playwright page, one entry per message."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0

    def add(self, kind: str, text: str) -> None:
        """Record one message; continuation lines are indented so each entry starts with ``[``."""
        if len(self.lines) >= MAX_CONSOLE_MESSAGES:
            self.dropped += 1
            return
        text = text[:MAX_CONSOLE_TEXT].replace("\n", "\n  ")
        self.lines.append(f"[{kind}] {text}")

    def on_console(self, message: Any) -> None:
        """Take a Playwright ``ConsoleMessage``."""
        self.add(str(message.type), str(message.text))

    def on_pageerror(self, error: Any) -> None:
        """Take an uncaught error of the page (its stack names the error and the message)."""
        stack = getattr(error, "stack", None)
        text = stack or f"{getattr(error, 'name', 'Error')}: {getattr(error, 'message', error)}"
        self.add("pageerror", str(text))

    def text(self) -> str:
        """Return the log as text."""
        lines = list(self.lines)
        if self.dropped:
            lines.append(f"[onwatch] {self.dropped} more messages dropped")
        return "".join(f"{line}\n" for line in lines)


class BrowserRecorder:
    """Watches the browsers of one test and saves what they show when asked to."""

    def __init__(
        self,
        targets: Sequence[tuple[str, Any]],
        folder: Folder,
        tracing: bool,
        screenshots: bool = True,
    ) -> None:
        self.targets = list(targets)
        self.folder = folder
        self.tracing = tracing
        self.screenshots = screenshots  # False: pictures of the page, which cannot be masked
        self.consoles: dict[int, Console] = {}
        self.traces: list[tuple[Any, str]] = []  # (context, name) of the traces we started
        self.artifacts: list[CapturedFile] = []
        self.errors: list[str] = []

    def start(self) -> None:
        """Listen to the pages' consoles and start their traces; call before the test runs."""
        contexts: list[Any] = []
        for index, (kind, target) in enumerate(self.targets):
            if kind != PLAYWRIGHT:
                continue
            console = Console()
            try:
                target.on("console", console.on_console)
                target.on("pageerror", console.on_pageerror)
            except Exception as exc:
                self.errors.append(describe(_named("console", index), exc))
                continue
            self.consoles[index] = console
            if self.tracing:
                context = target.context
                if not any(context is seen for seen in contexts):
                    contexts.append(context)
                    self._start_trace(context, _suffixed("trace", len(contexts), ".zip"))

    def _start_trace(self, context: Any, name: str) -> None:
        try:
            context.tracing.start(screenshots=self.screenshots, snapshots=True, sources=False)
        except Exception as exc:
            # Whoever started it (the test, or pytest-playwright) also saves it.
            if "already started" not in str(exc):
                self.errors.append(describe(name.removesuffix(".zip"), exc))
            return
        self.traces.append((context, name))

    def finish(self, keep: bool) -> list[CapturedFile]:
        """Stop listening and tracing; when ``keep``, save every artifact. Return them."""
        # Traces first, so that the capture's own screenshot is not the trace's last step.
        for context, name in self.traces:
            self._stop_trace(context, name, keep)
        self.traces = []
        for index, console in self.consoles.items():
            target = self.targets[index][1]
            try:
                target.remove_listener("console", console.on_console)
                target.remove_listener("pageerror", console.on_pageerror)
            except Exception:  # noqa: BLE001 - a page that is gone keeps no listeners
                pass
        if keep:
            for index, (kind, target) in enumerate(self.targets):
                if kind == PLAYWRIGHT:
                    self._save_page(index, target)
                else:
                    self._save_driver(index, target)
        return self.artifacts

    def _stop_trace(self, context: Any, name: str, keep: bool) -> None:
        what = name.removesuffix(".zip")
        try:
            if keep:
                context.tracing.stop(path=str(self.folder.reserve(name)))
                self.artifacts.append(self.folder.found("trace", name))
            else:
                context.tracing.stop()
        except Exception as exc:
            self.errors.append(describe(what, exc))

    def _save_page(self, index: int, page: Any) -> None:
        if self.screenshots:
            self._save(
                index,
                "screenshot",
                ".png",
                lambda: page.screenshot(full_page=True, timeout=TIMEOUT_MS),
            )
        self._save(
            index,
            "html",
            ".html",
            lambda: page.locator(":root").evaluate(_SERIALIZE, timeout=TIMEOUT_MS).encode(),
        )
        console = self.consoles.get(index)
        if console is not None:  # not watched when the test failed in its setup
            self._save(index, "console", ".log", lambda: console.text().encode())

    def _save_driver(self, index: int, driver: Any) -> None:
        with _bounded(driver):
            if self.screenshots:
                self._save(index, "screenshot", ".png", driver.get_screenshot_as_png)
            self._save(index, "html", ".html", lambda: str(driver.page_source).encode())
            entries = self._driver_log(index, driver)
            if entries is not None:
                text = "".join(f"[{e.get('level')}] {e.get('message')}\n" for e in entries)
                self._save(index, "console", ".log", text.encode)

    def _driver_log(self, index: int, driver: Any) -> list[dict[str, Any]] | None:
        get_log = getattr(driver, "get_log", None)
        if get_log is None:
            return None
        try:
            entries = get_log("browser")
        except Exception as exc:
            # Only Chromium's driver has logs; other drivers answer that they know no such thing.
            text = f"{type(exc).__name__} {exc}".lower()
            if not any(hint in text for hint in _UNSUPPORTED):
                self.errors.append(describe(_named("console", index), exc))
            return None
        return [e for e in entries or () if isinstance(e, dict)]

    def _save(self, index: int, kind: str, extension: str, take: Callable[[], bytes]) -> None:
        name = _named(_FILE_STEMS[kind], index) + extension
        try:
            self.artifacts.append(self.folder.write(kind, name, take()))
        except Exception as exc:
            self.errors.append(describe(_named(kind, index), exc))


_FILE_STEMS = {"screenshot": "screenshot", "html": "page", "console": "console"}
_UNSUPPORTED = ("unknownmethod", "unknown command", "not implemented", "unsupported")


def _named(stem: str, index: int) -> str:
    return _suffixed(stem, index + 1, "")


def _suffixed(stem: str, number: int, extension: str) -> str:
    return f"{stem}{'' if number == 1 else f'-{number}'}{extension}"


@contextmanager
def _bounded(driver: Any) -> Iterator[None]:
    """Bound each WebDriver command by ``TIMEOUT_MS``: Selenium waits forever by default."""
    config = getattr(getattr(driver, "command_executor", None), "client_config", None)
    if config is None or not hasattr(config, "timeout"):
        yield
        return
    before = config.timeout
    config.timeout = TIMEOUT_MS / 1000
    try:
        yield
    finally:
        config.timeout = before
