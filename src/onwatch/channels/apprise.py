"""Apprise: mail, chat and push services through one Apprise URL (mailto://, slack://, ntfy://…).

Messages are handed over as plain text; Apprise converts and escapes them for services that
show HTML or Markdown. Several notifications due together go out as one message. Apprise is
imported where it is used: validating a configuration imports every kind's module.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

import onwatch.channels.render as render
from onwatch.channels.base import ChannelSettings, with_stand_ins
from onwatch.channels.notification import Event
from onwatch.channels.render import clean
from onwatch.durations import Duration
from onwatch.errors import DeliveryError

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

    from onwatch.channels.notification import Notification

WIKI = "https://github.com/caronc/apprise/wiki"
# Apprise colours and icons follow the notify type on the services that have them.
_FAILING = frozenset(
    {Event.INCIDENT_OPENED, Event.INCIDENT_REMINDER, Event.CHECK_OVERDUE, Event.CHANNEL_FAILING}
)


class AppriseSettings(ChannelSettings):
    """A ``[notify.NAME]`` table with ``type = "apprise"`` (the default): one Apprise URL."""

    type: Literal["apprise"] = Field(
        default="apprise", description="apprise: mail, chat, paging… through one Apprise URL."
    )
    group_window: Duration = Field(
        default=60.0,
        description="Notifications within this window after one is sent go out together as "
        "one message.",
    )

    @field_validator("url")
    @classmethod
    def _understood(cls, url: str) -> str:
        _service(with_stand_ins(url))
        return url


class Apprise:
    """Send notifications, grouped into one message, to one Apprise URL."""

    grouped = True

    def __init__(self, name: str, settings: AppriseSettings) -> None:
        self.name = name
        url = settings.url
        try:
            service = _service(url)
        except ValueError as exc:
            raise ValueError(f"channel '{name}': {exc}") from None
        self.timeout = settings.timeout
        # Apprise's own defaults wait up to 15 s to connect; the channel's timeout wins.
        service.socket_connect_timeout = self.timeout
        service.socket_read_timeout = self.timeout
        private: str = service.url(privacy=True)  # type: ignore[no-untyped-call]
        self._secrets = _secrets(url, private)
        # The privacy form masks passwords and tokens but not every query parameter (custom
        # headers such as json://…?-X-Token=…), so errors show it without its query.
        self.where = private.split("?", 1)[0]
        import apprise

        self._apprise = apprise.Apprise()
        self._apprise.add(service)

    def send(self, notifications: list[Notification]) -> None:
        """Send the notifications as one message, or raise DeliveryError."""
        import apprise

        if not notifications:
            return
        if len(notifications) == 1:
            title, body = render.text(notifications[0])
        else:
            title, body = render.batch_text(notifications)
        failing = any(n.event in _FAILING for n in notifications)
        resolved = all(n.event is Event.INCIDENT_RESOLVED for n in notifications)
        notify_type = (
            apprise.NotifyType.FAILURE
            if failing
            else apprise.NotifyType.SUCCESS
            if resolved
            else apprise.NotifyType.INFO
        )
        # The result carries this call's own log lines, unlike a LogCapture on Apprise's
        # process-wide logger, which would mix the logs of channels sending at the same time.
        with self._apprise.notify(
            body=body,
            title=title,
            notify_type=notify_type,
            body_format=apprise.NotifyFormat.TEXT,
            # A backstop over the whole call: a slow service must not hold the outbox.
            timeout=self.timeout * 3,
        ) as result:
            if result:
                return
            problems = [
                clean(entry.message, one_line=True, limit=200)
                for entry in result.logs()
                if entry.level in ("WARNING", "ERROR", "CRITICAL")
            ]
            status = result.status.name.lower()
        reason = "; ".join(dict.fromkeys(problems)) or f"Apprise reported {status}"
        for secret in self._secrets:
            reason = reason.replace(secret, "****")
        # Apprise cannot tell a refused message from an unreachable server: always retry.
        raise DeliveryError(f"apprise '{self.name}': {reason} ({self.where})")


def _service(url: str) -> NotifyBase:
    """Return the Apprise service of ``url``, or raise ValueError saying what is wrong with it."""
    import apprise
    from apprise.exception import AppriseException

    # Apprise logs its own complaint about a bad URL; ours below says it once, with the fix.
    apprise_log = logging.getLogger("apprise")
    level = apprise_log.level
    apprise_log.setLevel(logging.CRITICAL)
    try:
        service = apprise.Apprise.instantiate(url, suppress_exceptions=False)
        why = "unknown service"
    except (AppriseException, TypeError, ValueError) as exc:
        service, why = None, _scrub(clean(str(exc), one_line=True, limit=200), url)
    finally:
        apprise_log.setLevel(level)
    if service is None:
        scheme = url.split("://", 1)[0][:20] if "://" in url else "?"
        raise ValueError(f"'{scheme}://…' is not a URL Apprise understands ({why}); see {WIKI}")
    return service


def _scrub(text: str, url: str) -> str:
    """Return ``text`` without the URL's password or anything that looks like a token."""
    # Without a privacy form to compare with (the URL is invalid), hide what is long enough to
    # be a credential and the userinfo password.
    password = urlsplit(url).password if "://" in url else None
    for part in sorted(set(re.split(r"[/:@?&=.#,]+", url)), key=len, reverse=True):
        if len(part) >= 12 or (password and part == password):
            text = text.replace(part, "****").replace(unquote(part), "****")
    return text


def _secrets(url: str, private: str) -> list[str]:
    """Return the parts of ``url`` that its privacy form hides (passwords, tokens)."""
    # Apprise logs messages of each service's own making; a service that quotes its own
    # URL must not leak it into an error that is stored and shown on pages.
    shown = set(re.split(r"[/:@?&=.#,]+", private + "/" + unquote(private)))
    found: set[str] = set()
    for part in re.split(r"[/:@?&=.#,]+", url):
        if len(part) >= 4 and part not in shown:
            found.update({part, unquote(part)})
    return sorted(found, key=len, reverse=True)
