"""The ``onwatch`` command line.

Exit codes: 0 all passed, 1 some check failed or errored, 2 usage or configuration error (one
clear line per problem on stderr, no traceback). Imports are lazy: ``onwatch once`` should cost
little more than the pytest run it starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from onwatch import __version__
from onwatch.cli.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from onwatch.errors import OnwatchError

if TYPE_CHECKING:
    from onwatch.config import Config


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="onwatch",
        description="Run a selection of your pytest suite as production monitoring.",
    )
    parser.add_argument("--version", action="version", version=f"onwatch {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="config file (default: ./onwatch.toml, else [tool.onwatch] in ./pyproject.toml)",
    )
    # -c also works after the command (onwatch once -c prod.toml), as people type it.
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument("-c", "--config", metavar="PATH", default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser(
        "validate",
        parents=[config_option],
        help="check the config and count what each check collects",
    )

    once = commands.add_parser(
        "once", parents=[config_option], help="run checks now (all when none is named)"
    )
    once.add_argument("checks", nargs="*", metavar="CHECK")
    output = once.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the run records as JSON")
    output.add_argument("--quiet", "-q", action="store_true", help="print only failures")

    run = commands.add_parser(
        "run", parents=[config_option], help="run the checks on their schedules until stopped"
    )
    _add_log_options(run)

    serve = commands.add_parser(
        "serve",
        parents=[config_option],
        help="serve the dashboard and API from the database, without running checks",
    )
    serve.add_argument("--listen", help="HOST:PORT (default: [onwatch] listen)")
    _add_log_options(serve)

    token = commands.add_parser("token", help="make a new access token for the web and API")
    token.add_argument("--role", choices=["read", "admin"], default="read")

    status = commands.add_parser(
        "status", parents=[config_option], help="show the state of every check"
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    doctor = commands.add_parser(
        "doctor",
        parents=[config_option],
        help="look for secret values in the database, artifacts and spool",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")

    silence = commands.add_parser(
        "silence", parents=[config_option], help="hold a check's alerts for a while"
    )
    target = silence.add_mutually_exclusive_group(required=True)
    target.add_argument("check", nargs="?", metavar="CHECK")
    target.add_argument("--all", action="store_true", help="silence every check")
    silence.add_argument("--for", dest="duration", required=True, help='how long, e.g. "2h"')
    silence.add_argument("--reason", default="", help="why (shown in status and logs)")

    notify = commands.add_parser("notify", parents=[config_option], help="notification channels")
    notify_commands = notify.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    notify_test = notify_commands.add_parser(
        "test", parents=[config_option], help="send a test message to a channel"
    )
    notify_test.add_argument("channel", metavar="CHANNEL")

    watch = commands.add_parser(
        "watch", parents=[config_option], help="upstream releases of the packages you depend on"
    )
    watch_commands = watch.add_subparsers(dest="watch_command", metavar="ACTION", required=True)
    watch_check = watch_commands.add_parser(
        "check",
        parents=[config_option],
        help="poll a watch's index now and test each new release",
    )
    watch_check.add_argument("watch_name", metavar="NAME")
    watch_check.add_argument("--json", action="store_true", help="print JSON")

    demo = commands.add_parser("demo", help="start a demo app and monitor it with a demo suite")
    demo.add_argument(
        "--dir", default="onwatch-demo", help="folder for the demo's config and database"
    )
    demo.add_argument("--port", type=int, default=0, help="demo app port (default: a free one)")
    demo.add_argument(
        "--faults", default="", help="break features from the start, e.g. chat=broken,deposit=slow"
    )
    demo.add_argument("--once", action="store_true", help="run the demo checks once and exit")
    demo.add_argument(
        "--listen",
        default="127.0.0.1:8787",
        help="where onwatch serves its dashboard, API and /metrics (default: 127.0.0.1:8787)",
    )
    _add_log_options(demo)
    return parser


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"])


def run() -> None:
    """Run the command line as the ``onwatch`` program, and exit."""
    take_stop_signals()
    code = main()
    # Everything is closed, flushed or fsynced by now; skipping the interpreter's teardown of
    # SQLAlchemy and friends saves tens of milliseconds on every run from cron.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def take_stop_signals() -> None:
    """Make SIGINT and SIGTERM stop this process, whatever it inherited.

    A shell's background job or ``nohup`` starts a program with SIGINT ignored, and Python then
    never raises KeyboardInterrupt: Ctrl-C and ``kill -INT`` would do nothing. Both signals
    raise KeyboardInterrupt instead, so each command stops the way Ctrl-C stops it (runs
    killed and recorded); ``onwatch run`` replaces them with its own drain.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from onwatch.cli.demo import run_demo

            return run_demo(args)
        if args.command == "token":
            from onwatch.cli.web import token

            return token(args.role)
        config = _load(args.config)
        if args.command == "serve":
            from onwatch.cli.web import serve

            return serve(config, args.listen, log_level=args.log_level, log_format=args.log_format)
        if args.command == "validate":
            from onwatch.cli.checks import validate

            return validate(config)
        if args.command == "once":
            from onwatch.cli.checks import once

            return once(config, args.checks, json_output=args.json, quiet=args.quiet)
        if args.command == "status":
            from onwatch.cli.checks import status

            return status(config, json_output=args.json)
        if args.command == "watch":
            from onwatch.cli.upstream import watch_check

            return watch_check(config, args.watch_name, json_output=args.json)
        if args.command == "doctor":
            from onwatch.cli.doctor import run_doctor

            return run_doctor(config, json_output=args.json)
        if args.command == "silence":
            from onwatch.cli.alerting import silence

            return silence(config, None if args.all else args.check, args.duration, args.reason)
        if args.command == "notify":
            from onwatch.cli.alerting import notify_test

            return notify_test(config, args.channel)
        if args.command == "run":
            from onwatch.daemon.wiring import run_daemon

            run_daemon(config, log_level=args.log_level, log_format=args.log_format)
            return EXIT_OK
    except OnwatchError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"onwatch: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    raise AssertionError(f"unknown command {args.command}")  # argparse makes this unreachable


def _load(explicit: str | None) -> Config:
    from onwatch.config import find_config, load_config

    return load_config(find_config(explicit))
