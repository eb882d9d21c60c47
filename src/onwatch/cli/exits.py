"""The exit statuses of the ``onwatch`` command, defined once for every command."""

from __future__ import annotations

EXIT_OK = 0  # every check passed, or the command did what it was asked
EXIT_FAILED = 1  # a check failed or errored, a notification or a poll failed, a secret leaked
EXIT_USAGE = 2  # an ``OnwatchError``: bad usage or configuration, said on stderr in one line each
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a process ended by SIGINT
