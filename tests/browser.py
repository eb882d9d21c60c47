"""Drive Debian's Chromium from the tests with Playwright's sync API, and watch what pages do.

``playwright install`` cannot download browsers here, so the tests launch the system Chromium
(``ONWATCH_CHROMIUM`` or ``/usr/bin/chromium``) headless, with the flags a server needs: no
sandbox (tests may run as root), and none of Chromium's own traffic to outside hosts.
``Watch`` collects what a user would call broken in a page: console errors, content-security
policy violations, failed or refused requests, and dialogs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, Request, Response

from needs import unavailable
from onwatch.runner import CHROMIUM_SERVER_FLAGS

__all__ = [
    "ARGS",
    "CHROMIUM_ENV",
    "Watch",
    "chromium_path",
    "launch",
    "require_chromium_and_driver",
]

CHROMIUM_ENV = "ONWATCH_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARGS = CHROMIUM_SERVER_FLAGS

# Runs before any page script could, and is exempt from the page's own policy: it records each
# violation the browser reports, so a test can tell "blocked by the policy" from "not there".
_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


def chromium_path() -> str:
    """Return the Chromium to launch; skip without one, or fail when CI is set."""
    wanted = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    found = shutil.which(wanted)
    if found is None:
        unavailable(f"no Chromium at {wanted}: apt-get install chromium, or set {CHROMIUM_ENV}")
    return found


def require_chromium_and_driver() -> None:
    """Skip without Debian's Chromium and chromedriver, or fail when CI is set."""
    missing = [p for p in (DEFAULT_CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if not missing:
        return
    unavailable(f"no {' or '.join(missing)}: apt-get install chromium chromium-driver")


def launch(playwright: Playwright, executable: str) -> Browser:
    """Launch ``executable`` headless with the server flags of ``ARGS``."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=list(ARGS))


@dataclass
class Watch:
    """What went wrong in one page, from the moment ``attach`` was called."""

    page: Page
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Page) -> Watch:
        """Start watching ``page``; call before its first navigation."""
        watch = cls(page)
        page.add_init_script(_RECORD_VIOLATIONS)
        page.on("console", watch._on_console)
        page.on("pageerror", lambda error: watch.console.append(f"uncaught: {error}"))
        page.on("requestfailed", watch._on_failed)
        page.on("response", watch._on_response)
        page.on("dialog", watch._on_dialog)
        return watch

    def violations(self) -> list[str]:
        """Return the policy violations of the page shown now."""
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def problems(self) -> list[str]:
        """Return every problem seen so far, the current page's violations included."""
        return [*self.console, *self.requests, *self.dialogs, *self.violations()]

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console.append(f"console: {message.text} at {message.location.get('url')}")

    def _on_failed(self, request: Request) -> None:
        self.requests.append(f"failed: {request.method} {request.url} ({request.failure})")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.requests.append(f"{response.status}: {response.request.method} {response.url}")

    def _on_dialog(self, dialog: Dialog) -> None:
        # Without a dismissal the page would wait for a click that never comes.
        self.dialogs.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()
