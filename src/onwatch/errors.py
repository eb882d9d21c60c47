"""The one exception tree of onwatch.

::

    OnwatchError              anything onwatch reports to a user; the CLI exits 2 on these
    ├── ConfigError           the configuration cannot be read or is invalid (carries every problem)
    ├── RunnerError           a check could not be started at all (not a failing test)
    └── StoreError            the database cannot be reached or written; callers spool instead

A failing test, a crashing pytest or a timed-out run is *not* an exception: it is data,
recorded on the run (``Run.status`` and ``Run.error``).
"""

from __future__ import annotations


class OnwatchError(Exception):
    """Base of every error onwatch reports to a user."""


class ConfigError(OnwatchError):
    """The configuration is missing, unreadable or invalid.

    ``problems`` holds one line per problem, each naming the file, the line and the fix.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RunnerError(OnwatchError):
    """A check's pytest process could not be started."""


class StoreError(OnwatchError):
    """The database could not be reached or written."""
