"""Alertmanager: post notifications as alerts to its v2 API, where routing and silences live.

An incident's opened, reminder and resolved notifications carry identical labels, so
Alertmanager sees one alert that fires and later resolves. Firing alerts are posted with an
``endsAt`` far ahead (``hold``): without it Alertmanager resolves them by itself after its
``resolve_timeout``, while the check may still be failing between two reminders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

import onwatch.channels.render as render
from onwatch.channels.notification import Event, Notification
from onwatch.channels.webhook import HttpSettings, post_json
from onwatch.durations import Duration
from onwatch.model import as_utc

ALERT_NAMES: dict[Event, str] = {
    Event.INCIDENT_OPENED: "OnwatchIncident",
    Event.INCIDENT_REMINDER: "OnwatchIncident",
    Event.INCIDENT_RESOLVED: "OnwatchIncident",
    Event.CHECK_OVERDUE: "OnwatchCheckOverdue",
    Event.CHANNEL_FAILING: "OnwatchChannelFailing",
    Event.MONITOR_DEGRADED: "OnwatchDegraded",
    Event.MONITOR_RECOVERED: "OnwatchDegraded",
    Event.TEST: "OnwatchTest",
    Event.UPSTREAM_BREAKS: "OnwatchUpstreamBreaks",
    Event.UPSTREAM_POLL_FAILING: "OnwatchUpstreamPollFailing",
    Event.UPSTREAM_POLL_RECOVERED: "OnwatchUpstreamPollFailing",
    Event.UPSTREAM_INSTALL_FAILED: "OnwatchUpstreamInstallFailing",
    Event.UPSTREAM_INSTALL_RECOVERED: "OnwatchUpstreamInstallFailing",
    Event.UPSTREAM_BASELINE_FAILED: "OnwatchUpstreamBaselineFailing",
    Event.UPSTREAM_BASELINE_RECOVERED: "OnwatchUpstreamBaselineFailing",
}
# Events that end the alert their series opened.
_UPSTREAM_RECOVERIES = frozenset(
    {
        Event.UPSTREAM_POLL_RECOVERED,
        Event.UPSTREAM_INSTALL_RECOVERED,
        Event.UPSTREAM_BASELINE_RECOVERED,
    }
)
_RECOVERIES = _UPSTREAM_RECOVERIES | {Event.MONITOR_RECOVERED}


class AlertmanagerSettings(HttpSettings):
    """A ``[notify.NAME]`` table with ``type = "alertmanager"``; its url is the base URL."""

    type: Literal["alertmanager"] = Field(
        default="alertmanager", description="alertmanager: alerts to its /api/v2/alerts."
    )
    hold: Duration = Field(
        default=86400.0,
        description="How long a firing alert stays active unless refreshed or resolved.",
    )


class Alertmanager:
    """Post one alert per notification to ``{url}/api/v2/alerts``."""

    grouped = False

    def __init__(
        self,
        name: str,
        settings: AlertmanagerSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.url = settings.url.rstrip("/") + "/api/v2/alerts"
        self.timeout = settings.timeout
        self.hold = settings.hold
        self.headers = dict(settings.headers)
        self.clock = clock

    def send(self, notifications: list[Notification]) -> None:
        """Post the notifications as alerts, or raise DeliveryError."""
        now = as_utc(self.clock())
        alerts = [alert for n in notifications for alert in self.alerts(n, now)]
        post_json(
            f"alertmanager '{self.name}'",
            self.url,
            alerts,
            headers=self.headers,
            timeout=self.timeout,
        )

    def alerts(self, n: Notification, now: datetime) -> list[dict[str, Any]]:
        """Return the alerts that ``n`` fires or ends.

        A ``monitor.recovered`` ends every alert its episode fired: one per problem told, at
        whichever severity each was sent (a full disk is critical, a spool a warning).
        """
        alert = self.alert(n, now)
        if n.event is not Event.MONITOR_RECOVERED:
            return [alert]
        told = n.details.get("problems") or [n.details.get("problem")]
        problems = [p for p in told if isinstance(p, str)] or [""]
        ended = []
        for problem in problems:
            for severity in ("warning", "critical"):
                labels = {**alert["labels"], "severity": severity}
                if problem:
                    labels["problem"] = problem
                ended.append({**alert, "labels": labels})
        return ended

    def alert(self, n: Notification, now: datetime) -> dict[str, Any]:
        """Return the Alertmanager alert for ``n``."""
        starts = as_utc(n.opened_at) if n.opened_at else now
        if n.event is Event.INCIDENT_RESOLVED:
            ends = as_utc(n.resolved_at) if n.resolved_at else now
        elif n.event in _RECOVERIES:
            ends = now
        else:
            ends = now + timedelta(seconds=self.hold)
        # Alertmanager rejects an alert that ends before it starts (clock skew, missing times).
        starts = min(starts, ends)
        annotations = {"summary": n.summary, "description": render.text(n)[1]}
        alert: dict[str, Any] = {
            "labels": labels(n),
            "annotations": annotations,
            "startsAt": _rfc3339(starts),
            "endsAt": _rfc3339(ends),
        }
        if n.run_url:
            annotations["run_url"] = n.run_url
            # Alertmanager validates generatorURL as a URI; a relative link stays an annotation.
            if n.run_url.startswith(("http://", "https://")):
                alert["generatorURL"] = n.run_url
        return alert


def labels(n: Notification) -> dict[str, str]:
    """Return the alert's labels: the same for every notification of one incident."""
    result = {
        "alertname": ALERT_NAMES[n.event],
        "check": n.check or "onwatch",
        # An upstream recovery (severity info) must carry the labels of the warning it ends.
        "severity": "warning" if n.event in _UPSTREAM_RECOVERIES else n.severity,
        "category": n.category or "unknown",
    }
    channel = n.details.get("channel")
    if n.event is Event.CHANNEL_FAILING and isinstance(channel, str):
        # Two failing channels are two alerts, not one that flaps between them.
        result["channel"] = channel
    # One alert per watched package (and per release that breaks something); poll alerts are
    # one per index, whatever packages each of them names.
    keys: tuple[str, ...] = ("watch", "package", "version")
    if n.event in (Event.UPSTREAM_POLL_FAILING, Event.UPSTREAM_POLL_RECOVERED):
        keys = ("watch", "index")
    elif n.event in (Event.UPSTREAM_BASELINE_FAILED, Event.UPSTREAM_BASELINE_RECOVERED):
        keys = ("watch", "package")  # the baseline that recovers may be another release
    if n.event in (Event.MONITOR_DEGRADED, Event.MONITOR_RECOVERED):
        # One alert per problem and episode, so that its recovery can end it.
        keys = ("problem", "since")
    for key in keys:
        value = n.details.get(key)
        if isinstance(value, str) and value:
            result[key] = value
    return result


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
