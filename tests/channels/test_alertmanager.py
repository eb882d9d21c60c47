"""The Alertmanager channel against a real Alertmanager (see conftest.py)."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from onwatch.channels import build_channel
from onwatch.channels.alertmanager import Alertmanager, AlertmanagerSettings
from onwatch.channels.notification import Event, FailingTest, Notification
from onwatch.errors import DeliveryError
from waiting import wait_until


def incident(check: str, event: Event, **changes: Any) -> Notification:
    opened_at = datetime.now(UTC) - timedelta(minutes=12)
    fields: dict[str, Any] = {
        "event": event,
        "key": f"{check}:{event.value}",
        "summary": f"{check} is failing: 1 test failed",
        "check": check,
        "category": "product",
        "failing_tests": (FailingTest("tests/test_pay.py::test_card", "AssertionError: 500"),),
        "run_url": "https://onwatch.example/runs/42",
        "opened_at": opened_at,
        "failing_runs": 3,
    }
    fields.update(changes)
    return Notification(**fields)


def alerts(url: str, check: str) -> list[dict[str, Any]]:
    """Return the active alerts Alertmanager holds for ``check``."""
    response = httpx.get(
        f"{url}/api/v2/alerts",
        params={"active": "true", "filter": f'check="{check}"'},
        timeout=5,
    )
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


@pytest.mark.e2e
def test_it_fires_an_alert_with_the_incident_labels(alertmanager_url: str) -> None:
    check = f"checkout-{uuid.uuid4().hex[:8]}"
    channel = build_channel("am", {"type": "alertmanager", "url": alertmanager_url})
    channel.send([incident(check, Event.INCIDENT_OPENED)])
    [alert] = alerts(alertmanager_url, check)
    assert alert["labels"] == {
        "alertname": "OnwatchIncident",
        "check": check,
        "severity": "critical",
        "category": "product",
    }
    assert alert["annotations"]["summary"] == f"{check} is failing: 1 test failed"
    assert (
        "tests/test_pay.py::test_card: AssertionError: 500" in alert["annotations"]["description"]
    )
    assert alert["annotations"]["run_url"] == "https://onwatch.example/runs/42"
    assert alert["generatorURL"] == "https://onwatch.example/runs/42"
    assert alert["status"]["state"] == "active"
    # Held far ahead, so Alertmanager does not resolve it on its own between reminders.
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert ends > datetime.now(UTC) + timedelta(hours=23)


@pytest.mark.e2e
def test_it_resolves_the_alert_when_the_incident_resolves(alertmanager_url: str) -> None:
    check = f"search-{uuid.uuid4().hex[:8]}"
    channel = Alertmanager("am", AlertmanagerSettings(url=alertmanager_url))
    opened = incident(check, Event.INCIDENT_OPENED)
    channel.send([opened])
    channel.send([incident(check, Event.INCIDENT_REMINDER)])
    assert len(alerts(alertmanager_url, check)) == 1  # the reminder is the same alert
    channel.send(
        [
            incident(
                check,
                Event.INCIDENT_RESOLVED,
                summary=f"{check} recovered",
                failing_tests=(),
                resolved_at=datetime.now(UTC),
            )
        ]
    )
    wait_until(lambda: not alerts(alertmanager_url, check), "the alert is resolved", timeout=5)


@pytest.mark.e2e
def test_it_posts_onwatch_s_own_troubles_under_their_own_names(alertmanager_url: str) -> None:
    channel_name = f"mail-{uuid.uuid4().hex[:8]}"
    failing = Notification(
        Event.CHANNEL_FAILING,
        f"{channel_name}:failing",
        f"channel {channel_name} is failing",
        severity="warning",
        details={"channel": channel_name},
    )
    Alertmanager("am", AlertmanagerSettings(url=alertmanager_url)).send([failing])
    [alert] = [
        a for a in alerts(alertmanager_url, "onwatch") if a["labels"].get("channel") == channel_name
    ]
    assert alert["labels"]["alertname"] == "OnwatchChannelFailing"
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["category"] == "unknown"


def test_it_retries_when_alertmanager_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(DeliveryError) as caught:
            Alertmanager("am", AlertmanagerSettings(url=f"http://127.0.0.1:{port}")).send(
                [incident("checkout", Event.INCIDENT_OPENED)]
            )
    assert caught.value.permanent is False
    assert str(caught.value).startswith(
        f"alertmanager 'am': cannot reach http://127.0.0.1:{port}/api/v2/alerts"
    )


@pytest.mark.e2e
def test_it_gives_up_on_alerts_alertmanager_rejects(alertmanager_url: str) -> None:
    # A URL that misses the API (a wrong route prefix) is answered 404: retrying cannot help.
    channel = Alertmanager("am", AlertmanagerSettings(url=alertmanager_url + "/no-such-prefix"))
    with pytest.raises(DeliveryError) as caught:
        channel.send([incident("checkout", Event.INCIDENT_OPENED)])
    assert caught.value.permanent is True
    assert "HTTP 404" in str(caught.value)


@pytest.mark.e2e
def test_a_monitor_recovery_ends_every_alert_its_episode_fired(alertmanager_url: str) -> None:
    """Spooling (a warning) then a full disk (critical): monitor.recovered ends both alerts."""
    since = (datetime.now(UTC) - timedelta(microseconds=uuid.uuid4().int % 10**6)).isoformat()
    channel = Alertmanager("am", AlertmanagerSettings(url=alertmanager_url))

    def degraded(problem: str, severity: str) -> Notification:
        details = {"problem": problem, "since": since}
        key = f"monitor.{problem}|{since}"
        return Notification(
            Event.MONITOR_DEGRADED, key, problem, severity=severity, details=details
        )

    def episode() -> list[dict[str, Any]]:
        found = alerts(alertmanager_url, "onwatch")
        return [a for a in found if a["labels"].get("since") == since]

    channel.send([degraded("database", "warning"), degraded("disk_full", "critical")])
    fired = {(a["labels"]["problem"], a["labels"]["severity"]) for a in episode()}
    assert fired == {("database", "warning"), ("disk_full", "critical")}
    recovered = Notification(
        Event.MONITOR_RECOVERED,
        f"monitor.recording.ended|{since}",
        "onwatch's runs reach the database again",
        severity="info",
        details={"problem": "database", "problems": ["database", "disk_full"], "since": since},
    )
    channel.send([recovered])
    wait_until(lambda: not episode(), "the episode's alerts are resolved", timeout=5)
