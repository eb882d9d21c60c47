"""The one exception tree of onwatch.

::

    OnwatchError              anything onwatch reports to a user; the CLI exits 2 on these
    ├── ConfigError           the configuration cannot be read or is invalid (carries every problem)
    ├── RunnerError           a check could not be started at all (not a failing test)
    │   └── TriggerRefused    a run asked for now cannot start (unknown check, already running)
    ├── StoreError            the database cannot be reached or written; callers spool instead
    ├── IndexProblem          a package index cannot be polled (upstream.index; ``kind`` says
    │                         why: unreachable, auth, not-found, garbage, http)
    └── DeliveryError         a notification could not be sent; ``permanent`` says whether
                              trying again can help (a 4xx answer) or not (a timeout, a 5xx)

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


class TriggerRefused(RunnerError):
    """A run asked for now cannot start; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class StoreError(OnwatchError):
    """The database could not be reached or written."""


class DeliveryError(OnwatchError):
    """A notification could not be delivered.

    ``permanent`` is True when sending it again cannot succeed (the receiver refused it: a 4xx
    answer, a malformed URL); the outbox then stops retrying it.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
