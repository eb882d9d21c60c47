"""``onwatch demo``: start the demo app, write a config for the demo suite, and monitor it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from onwatch.config import CONFIG_FILE
from onwatch.errors import ConfigError

SUITE_DIR = Path(__file__).resolve().parents[1] / "demo" / "suite"

CONFIG_TEMPLATE = """\
# Written by `onwatch demo`; it is rewritten each time the demo starts.
# The demo app listens on {url}; its admin page breaks features on purpose: {url}/admin

[onwatch]
database = "sqlite:///onwatch.db"
listen = "{listen}"
notify = ["inbox"]
# Ctrl-C gives runs in flight this long to finish, then kills them: the demo stops quickly.
drain_timeout = "5s"

# Alerts go to the demo app's inbox (shown on {url}/admin and in this log). Point a channel
# at your own mail or chat instead: any Apprise URL works, e.g.
# url = "mailtos://user:app-password@smtp.example.com?to=you@example.com"
[notify.inbox]
type = "webhook"
url = "{url}/admin/inbox"

# Every API test of the demo suite, twice a minute. A failed test is retried once:
# a test that passes on retry is recorded as flaky, not failed.
[checks.api]
tests = ["{suite}"]
markers = "monitor and not journey"
every = "30s"
timeout = "1m"
retries = 1
env = {{ BASE_URL = "{url}" }}

# The money path on its own, more often: the check a team would page on.
[checks.money]
tests = ["{suite}"]
markers = "money"
every = "10s"
timeout = "30s"
env = {{ BASE_URL = "{url}" }}

# A customer's paths through the pages in a real browser (Chromium, driven by Playwright): log
# in, change settings, follow someone, chat, deposit. A failing journey keeps a screenshot, the
# page's HTML and its console log; the run's page on the dashboard shows the screenshot.
{journeys_note}[checks.journeys]
tests = ["{suite}"]
markers = "journey"
every = "30s"
timeout = "1m"
artifacts = "on-failure"
enabled = {journeys_enabled}
env = {{ BASE_URL = "{url}" }}
"""


def write_demo_config(
    folder: Path, url: str, listen: str = "127.0.0.1:8787", *, journeys_missing: str | None = None
) -> Path:
    """Write the demo's onwatch.toml into ``folder`` for an app at ``url``; return its path.

    ``journeys_missing`` names what the browser journeys lack here; their check is then
    written disabled, with the reason, rather than failing every run.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    note = (
        f"# Disabled: this machine lacks {journeys_missing}.\n"
        "# Install what is missing, then start the demo again.\n"
        if journeys_missing
        else ""
    )
    path.write_text(
        CONFIG_TEMPLATE.format(
            url=url,
            suite=SUITE_DIR.as_posix(),
            listen=listen,
            journeys_note=note,
            journeys_enabled="false" if journeys_missing else "true",
        )
    )
    return path


def missing_for_journeys() -> str | None:
    """Name what the browser journeys need and this machine lacks, or return None."""
    import importlib.util

    from onwatch.config import find_browser

    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("Playwright (pip install playwright)")
    if find_browser() is None:
        missing.append("Chromium (apt-get install chromium)")
    return " and ".join(missing) or None


def run_demo(args: argparse.Namespace) -> int:
    """Start the demo app and run onwatch on the demo suite against it."""
    from onwatch.config import load_config
    from onwatch.demo.app import Faults, serve

    try:
        faults = Faults.parse(args.faults) if args.faults else None
    except ValueError as exc:
        raise ConfigError([f"--faults: {exc}"]) from None
    folder = Path(args.dir).resolve()
    missing = missing_for_journeys()
    with serve(port=args.port, faults=faults) as server:
        config_path = write_demo_config(folder, server.url, args.listen, journeys_missing=missing)
        config = load_config(config_path)
        _banner(server.url, config_path, once=args.once, listen=args.listen, missing=missing)
        if args.once:
            from onwatch.cli.checks import once

            # `once` runs every check it is given: leave out the journeys if they are disabled.
            enabled = [name for name, check in config.checks.items() if check.enabled]
            return once(config, enabled, json_output=False, quiet=False)
        from onwatch.cli.exits import EXIT_OK
        from onwatch.daemon.wiring import run_daemon

        run_daemon(config, log_level=args.log_level, log_format=args.log_format)
        return EXIT_OK


def _banner(url: str, config_path: Path, *, once: bool, listen: str, missing: str | None) -> None:
    lines = [
        f"onwatch demo: the demo app is up at {url} (log in as alice / wonderland)",
        f"  its monitoring config: {config_path}",
        "  checks: api (every API test), money (deposits, more often)"
        + (", journeys (the pages, in Chromium)" if missing is None else ""),
        f"  break a feature on purpose: open {url}/admin, or",
        f"    curl -X PUT {url}/admin/faults -H 'content-type: application/json' "
        '-d \'{"deposit": "broken"}\'',
        f"  in another terminal: {_program()} -c {config_path} status",
        "  alerts show on the admin page and in the log below; an incident opens after two",
        "  failing runs in a row and closes after one passing run",
    ]
    if missing is not None:
        lines.append(f"  the browser journeys are off: this machine lacks {missing}")
    elif once:
        lines.append(
            "  a failing journey keeps its screenshot: see it on the run's page, served by "
            f"{_program()} -c {config_path} serve"
        )
    else:
        lines.append("  a failing journey keeps its screenshot: the run's page shows it")
    if not once:
        lines.append(f"  the dashboard: http://{listen}/  (JSON API under /api/v1, /metrics)")
        lines.append("  Ctrl-C stops it. Each finished run logs one line below.")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _program() -> str:
    """Return how to call onwatch from another terminal (it may live in a virtualenv)."""
    beside = Path(sys.executable).parent / "onwatch"
    return str(beside) if beside.exists() else "onwatch"
