"""The outbound heartbeat against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from onwatch.daemon.heartbeat import Heartbeat
from onwatch.state.health import Health
from receivers import Behaviour, HttpReceiver
from recording import Records, logged

EVERY = 60.0
STATUS = {"status": "ok", "checks": {"api": "passed"}}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health() -> Health:
    return Health(["api"])


@pytest.fixture
def logs() -> Iterator[Records]:
    with logged("onwatch.heartbeat") as records:
        yield records


@pytest.fixture
def beat(receiver: HttpReceiver, health: Health, clock: Clock) -> Iterator[Heartbeat]:
    heartbeat = Heartbeat(receiver.url + "/ping/abc123", "POST", EVERY, health, monotonic=clock)
    yield heartbeat
    heartbeat.close()


def ping(heartbeat: Heartbeat) -> None:
    """Ask for a ping and wait until it has been answered, if one was sent."""
    heartbeat.maybe_ping(STATUS)
    assert heartbeat.wait(10)


def test_it_pings_at_once_then_at_most_every_interval(
    beat: Heartbeat, receiver: HttpReceiver, clock: Clock
) -> None:
    ping(beat)
    assert len(receiver.received) == 1
    for elapsed in (1.0, 30.0, EVERY - 0.1):
        clock.now = 500.0 + elapsed
        ping(beat)
    assert len(receiver.received) == 1
    clock.now = 500.0 + EVERY
    ping(beat)
    clock.now += 1
    ping(beat)
    assert len(receiver.wait_for(2)) == 2


def test_a_post_carries_the_status_as_json(beat: Heartbeat, receiver: HttpReceiver) -> None:
    ping(beat)
    [request] = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/ping/abc123"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("onwatch/")
    assert request.json() == STATUS


def test_a_get_carries_no_body(receiver: HttpReceiver, health: Health) -> None:
    heartbeat = Heartbeat(receiver.url + "/ping", "get", EVERY, health)
    try:
        ping(heartbeat)
    finally:
        heartbeat.close()
    [request] = receiver.wait_for(1)
    assert (request.method, request.path, request.body) == ("GET", "/ping", b"")


def test_a_500_is_counted_and_warned_once_per_failure_streak(
    beat: Heartbeat, receiver: HttpReceiver, health: Health, clock: Clock, logs: Records
) -> None:
    receiver.behaviour = Behaviour(status=500)
    for _ in range(3):
        ping(beat)
        clock.now += EVERY
    assert health.snapshot().heartbeat_failures_total == 3
    [warning] = logs.at(logging.WARNING)
    assert "heartbeat ping failed" in warning

    receiver.behaviour = Behaviour(status=204)
    ping(beat)
    clock.now += EVERY
    assert health.snapshot().heartbeat_last_ok_at is not None
    assert logs.at(logging.INFO) == ["heartbeat answered again"]

    receiver.behaviour = Behaviour(status=503)
    ping(beat)
    assert health.snapshot().heartbeat_failures_total == 4
    assert len(logs.at(logging.WARNING)) == 2


def test_the_warning_names_the_host_but_not_the_secret_path(
    beat: Heartbeat, receiver: HttpReceiver, logs: Records
) -> None:
    receiver.behaviour = Behaviour(status=404)
    ping(beat)
    [record] = [r for r in logs.records if r.levelno == logging.WARNING]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields == {"to": receiver.url, "error": "HTTP 404 Not Found"}


def test_a_refused_connection_is_counted(health: Health, logs: Records) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        host, port = sock.getsockname()
        heartbeat = Heartbeat(f"http://{host}:{port}/ping", "POST", EVERY, health)
        try:
            ping(heartbeat)
        finally:
            heartbeat.close()
    assert health.snapshot().heartbeat_failures_total == 1
    assert len(logs.at(logging.WARNING)) == 1


def test_a_hanging_endpoint_never_blocks_the_caller_and_gets_one_ping_at_a_time(
    receiver: HttpReceiver, health: Health, clock: Clock
) -> None:
    receiver.behaviour = Behaviour(hang=True)
    heartbeat = Heartbeat(receiver.url, "POST", 1.0, health, timeout=0.5, monotonic=clock)
    try:
        started = time.monotonic()
        heartbeat.maybe_ping(STATUS)
        receiver.wait_for(1)
        for _ in range(5):
            clock.now += 10
            heartbeat.maybe_ping(STATUS)
        assert time.monotonic() - started < 0.4  # returned at once, before the timeout
        # The wait lasts the first ping's timeout: a second ping, had one been sent, arrived.
        assert heartbeat.wait(5)
        assert len(receiver.received) == 1  # one in flight at a time: no second ping
        assert health.snapshot().heartbeat_failures_total == 1
    finally:
        heartbeat.close()


def test_it_pings_no_more_once_closed(
    beat: Heartbeat, receiver: HttpReceiver, clock: Clock
) -> None:
    ping(beat)
    beat.close()
    clock.now += EVERY
    ping(beat)
    assert len(receiver.received) == 1


def test_it_rejects_a_method_other_than_get_or_post(health: Health) -> None:
    with pytest.raises(ValueError, match="GET or POST"):
        Heartbeat("http://127.0.0.1:9/", "PUT", EVERY, health)
