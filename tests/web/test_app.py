"""/healthz and /metrics of ``onwatch run``, served for real on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from onwatch.model import Run, RunStatus
from onwatch.state.health import Health
from onwatch.store.sql import SqlStore
from onwatch.web.app import DB_CACHE_SECONDS, create_app
from onwatch.web.server import WebServer, serve
from records import make_run

NOW = 1_800_000_000.0  # a wall-clock time, epoch seconds
TICK_LIMIT = 30.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Serve = Callable[..., httpx.Client]


def finished(check: str, at: float, status: RunStatus, duration: float = 1.0) -> Run:
    """Return a run of ``check`` that took ``duration`` seconds and ended at ``at`` (epoch)."""
    started = datetime.fromtimestamp(at - duration, UTC)
    return make_run(check=check, status=status, started_at=started, duration=duration)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> Health:
    return Health(["api", "web", "never"], started_at=NOW - 600, monotonic=clock)


@pytest.fixture
def client(health: Health) -> Iterator[Serve]:
    """Yield a function that serves an app for ``health`` and returns a client for it."""
    opened: list[tuple[WebServer, httpx.Client]] = []

    def start(
        db_ok: Callable[[], bool] = lambda: True, db_cache_seconds: float = DB_CACHE_SECONDS
    ) -> httpx.Client:
        app = create_app(
            health, db_ok=db_ok, tick_limit=TICK_LIMIT, db_cache_seconds=db_cache_seconds
        )
        server = serve(app, "127.0.0.1:0")
        http = httpx.Client(base_url=server.url, timeout=5)
        opened.append((server, http))
        return http

    yield start
    for server, http in opened:
        http.close()
        server.stop()


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of /metrics as {(name, sorted labels): value}."""
    response = http.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def check(name: str) -> tuple[tuple[str, str], ...]:
    return (("check", name),)


def test_healthz_is_ok_while_the_scheduler_ticks_and_the_database_answers(
    client: Serve, health: Health, clock: Clock
) -> None:
    health.tick(NOW)
    clock.now += 2.5
    response = client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "last_tick_age": 2.5, "database": "ok"}


def test_healthz_is_503_once_the_last_tick_is_older_than_the_limit(
    client: Serve, health: Health, clock: Clock
) -> None:
    http = client()
    health.tick(NOW)
    clock.now += TICK_LIMIT
    assert http.get("/healthz").status_code == 200
    clock.now += 1
    response = http.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["last_tick_age"] == TICK_LIMIT + 1
    assert body["database"] == "ok"
    assert body["problems"] == ["scheduler has not completed a cycle for 31.0s (limit 30s)"]


def test_healthz_counts_from_start_when_the_scheduler_never_ticked(
    client: Serve, clock: Clock
) -> None:
    http = client()
    assert http.get("/healthz").status_code == 200
    clock.now += TICK_LIMIT + 5
    assert http.get("/healthz").status_code == 503


def test_healthz_is_503_while_the_database_does_not_answer(
    client: Serve, health: Health, clock: Clock
) -> None:
    database_up = True
    http = client(lambda: database_up, db_cache_seconds=0)
    health.tick(NOW)
    assert http.get("/healthz").status_code == 200
    database_up = False
    response = http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert response.json()["problems"] == ["database unreachable"]
    clock.now += 60
    assert len(http.get("/healthz").json()["problems"]) == 2
    health.tick(NOW + 60)
    database_up = True
    assert http.get("/healthz").status_code == 200


def test_healthz_treats_a_database_probe_that_raises_as_unreachable(
    client: Serve, health: Health
) -> None:
    def broken() -> bool:
        raise RuntimeError("driver bug")

    health.tick(NOW)
    response = client(broken).get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_healthz_asks_the_database_at_most_once_per_cache_period(
    client: Serve, health: Health
) -> None:
    calls = []
    http = client(lambda: calls.append(1) or True, db_cache_seconds=60)
    health.tick(NOW)
    for _ in range(5):
        assert http.get("/healthz").status_code == 200
    assert len(calls) == 1


def test_healthz_answers_head_requests_for_load_balancers(client: Serve, health: Health) -> None:
    health.tick(NOW)
    assert client().head("/healthz").status_code == 200


def test_healthz_follows_the_stores_ping(client: Serve, health: Health, tmp_path: Path) -> None:
    health.tick(NOW)
    store = SqlStore(f"sqlite:///{tmp_path / 'onwatch.db'}")
    # A database path that is a folder: SQLite cannot open it, as if the disk had gone.
    (tmp_path / "a-folder").mkdir()
    gone = SqlStore(f"sqlite:///{tmp_path / 'a-folder'}")
    try:
        assert store.ping() is True
        assert gone.ping() is False
        assert client(store.ping, db_cache_seconds=0).get("/healthz").status_code == 200
        assert client(gone.ping, db_cache_seconds=0).get("/healthz").status_code == 503
    finally:
        store.close()
        gone.close()


def test_metrics_expose_the_scheduler_checks_runs_and_heartbeat(
    client: Serve, health: Health
) -> None:
    health.tick(NOW)
    health.record(finished("api", NOW - 30, RunStatus.PASSED, duration=4.5))
    health.record(finished("web", NOW - 20, RunStatus.FAILED, duration=12.25))
    health.record(finished("web", NOW - 10, RunStatus.FAILED, duration=13.0))
    health.set_overdue("web", True)
    health.heartbeat_failed()
    health.heartbeat_failed()
    samples = scrape(client())

    assert samples[("onwatch_up", ())] == 1
    assert samples[("onwatch_scheduler_last_tick_timestamp_seconds", ())] == NOW
    assert samples[("onwatch_check_last_run_timestamp_seconds", check("api"))] == NOW - 30
    assert samples[("onwatch_check_last_run_timestamp_seconds", check("web"))] == NOW - 10
    assert samples[("onwatch_check_last_success_timestamp_seconds", check("api"))] == NOW - 30
    assert samples[("onwatch_check_last_run_duration_seconds", check("api"))] == 4.5
    assert samples[("onwatch_check_last_run_duration_seconds", check("web"))] == 13.0
    assert samples[("onwatch_check_up", check("api"))] == 1
    assert samples[("onwatch_check_up", check("web"))] == 0
    assert samples[("onwatch_check_overdue", check("api"))] == 0
    assert samples[("onwatch_check_overdue", check("web"))] == 1
    assert samples[("onwatch_runs_total", (("check", "api"), ("status", "passed")))] == 1
    assert samples[("onwatch_runs_total", (("check", "api"), ("status", "failed")))] == 0
    assert samples[("onwatch_runs_total", (("check", "web"), ("status", "failed")))] == 2
    assert samples[("onwatch_heartbeat_failures_total", ())] == 2


def test_metrics_leave_out_values_not_known_yet_instead_of_zeros(client: Serve) -> None:
    samples = scrape(client())
    names = {name for name, _ in samples}
    assert "onwatch_scheduler_last_tick_timestamp_seconds" not in names
    assert "onwatch_check_last_run_timestamp_seconds" not in names
    assert "onwatch_check_last_success_timestamp_seconds" not in names
    assert "onwatch_check_up" not in names
    # What is known is there: no check is overdue yet, and none has run.
    assert samples[("onwatch_check_overdue", check("never"))] == 0
    assert samples[("onwatch_runs_total", (("check", "never"), ("status", "passed")))] == 0
    assert samples[("onwatch_heartbeat_failures_total", ())] == 0


def test_metrics_keep_what_the_database_said_at_start(client: Serve, health: Health) -> None:
    health.seed("api", NOW - 300, NOW - 900, last_status="failed")
    health.record(finished("api", NOW - 400, RunStatus.PASSED))  # recovered
    samples = scrape(client())
    assert samples[("onwatch_check_last_run_timestamp_seconds", check("api"))] == NOW - 300
    assert samples[("onwatch_check_last_success_timestamp_seconds", check("api"))] == NOW - 400
    assert samples[("onwatch_check_up", check("api"))] == 0


def test_metrics_have_one_series_per_configured_check_only(client: Serve, health: Health) -> None:
    health.record(finished("removed-from-config", NOW, RunStatus.PASSED))
    health.set_overdue("removed-from-config", True)
    samples = scrape(client())
    assert not [key for key in samples if ("check", "removed-from-config") in key[1]]
    checks = {dict(labels)["check"] for name, labels in samples if name == "onwatch_check_overdue"}
    assert checks == {"api", "web", "never"}


def test_metrics_are_in_the_prometheus_text_format(client: Serve) -> None:
    response = client().get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE onwatch_runs_total counter" in response.text
    assert "# TYPE onwatch_check_up gauge" in response.text
