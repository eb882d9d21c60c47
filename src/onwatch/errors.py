"""The one exception tree of onwatch.

::

    OnwatchError              anything onwatch reports to a user; the CLI exits 2 on these
    ├── ConfigError           the configuration cannot be read or is invalid (carries every problem)
    ├── SecretError           secrets cannot be looked up (``problems``: one line per secret)
    ├── SecretTooShort        a secret value too short to mask without hiding ordinary text
    ├── RunnerError           a check could not be started at all (not a failing test)
    │   └── TriggerRefused    a run asked for now cannot start (unknown check, already running)
    ├── StoreError            the database cannot be reached or written; callers spool instead
    ├── IndexProblem          a package index cannot be polled (``kind`` says why: unreachable,
    │                         auth, not-found, garbage, http)
    ├── BuildError            an environment for an upstream release cannot be built (pip's answer)
    ├── WatchBusy             another onwatch process is polling the same watch (``busy_wait``)
    ├── DeliveryError         a notification could not be sent; ``permanent`` says whether trying
    │                         again cannot help (a 4xx answer, a malformed URL) or may (a
    │                         timeout, a 5xx): only temporary failures are retried
    └── PageError             a dashboard page cannot be shown (``status``: 400, 403 or 404)

A failing test, a crashing pytest or a timed-out run is *not* an exception: it is data,
recorded on the run (``Run.status`` and ``Run.error``).
"""

from __future__ import annotations

from typing import Literal, TypeAlias

# How a poll of a package index failed; see ``onwatch.upstream.index``.
ProblemKind: TypeAlias = Literal["unreachable", "auth", "not-found", "garbage", "http"]


class OnwatchError(Exception):
    """Base of every error onwatch reports to a user."""


class ConfigError(OnwatchError):
    """The configuration is missing, unreadable or invalid.

    ``problems`` holds one line per problem, each naming the file, the line and the fix.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SecretError(OnwatchError):
    """Some secrets could not be looked up; ``problems`` has one line per secret."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class SecretTooShort(OnwatchError):
    """A secret too short to mask without hiding ordinary text."""


class RunnerError(OnwatchError):
    """A check's pytest process could not be started."""


class TriggerRefused(RunnerError):
    """A run asked for now cannot start; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class StoreError(OnwatchError):
    """The database could not be reached or written."""


class IndexProblem(OnwatchError):
    """A poll of a package index failed; ``kind`` says how (see ``onwatch.upstream.index``)."""

    def __init__(
        self,
        kind: ProblemKind,
        message: str,
        *,
        index: str | None = None,
        package: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ProblemKind = kind
        self.index = index  # without credentials; None when the URL itself could not be made
        self.package = package
        self.status = status  # the HTTP status, when the index answered with one


class BuildError(OnwatchError):
    """An environment could not be built; the message says what pip answered."""


class WatchBusy(OnwatchError):
    """Another onwatch process polled the same watch for longer than ``busy_wait``."""


class DeliveryError(OnwatchError):
    """A notification could not be delivered.

    ``permanent`` is True when sending it again cannot succeed (the receiver refused it: a 4xx
    answer, a malformed URL); the outbox then stops retrying it. A temporary failure (a
    timeout, a 5xx answer) is retried.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class PageError(OnwatchError):
    """A page cannot be shown: 400 for a bad query, 403 without the right, 404 for no such name."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
