"""Render times of the dashboard on a large history: 5 million test results in SQLite.

Seeds 100 checks × 20 tests × 2,500 runs (one run every ~17 minutes over 30 days, 5,000,000
results, the check_hours rollup filled as onwatch fills it), then serves the real app on
127.0.0.1 and times, over HTTP, the overview, a check page (24 h and 30 d), a test page (24 h
and 30 d), a run page and /metrics (with 2,000 tests in the in-memory summary).

Baseline, in the same process and server: GET /healthz, the cost of one round trip through the
same app. Prints p50/p95 per page, the ratio of each p95 to the baseline and to its target
(pages < 200 ms, /metrics < 50 ms at p95).

The seeded database is kept in build/bench-dashboard.db and reused while its shape matches.

    python bench/dashboard.py [--requests 40] [--reseed]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from onwatch.config import load_config
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.state.health import Health
from onwatch.store import hour_of, open_store
from onwatch.web.app import create_site_app
from onwatch.web.server import serve
from onwatch.web.site import Site

CHECKS, TESTS, RUNS = 100, 20, 2500
SPAN = timedelta(days=30)
DB = Path(__file__).parent.parent / "build" / "bench-dashboard.db"
SHAPE = f"{CHECKS}x{TESTS}x{RUNS}-v2"
PAGE_TARGET, METRICS_TARGET = 0.200, 0.050


def stamp(moment: datetime) -> str:
    """Return a timestamp as SQLAlchemy writes it into SQLite (UTC, no offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(path: Path, end: datetime) -> None:
    """Write the whole history with bulk inserts, oldest runs first, as they would arrive."""
    path.unlink(missing_ok=True)
    store = open_store(f"sqlite:///{path}")
    store.ensure_schema()
    store.close()
    rng = random.Random(7)
    step = SPAN / RUNS
    start = end - SPAN
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    # A few tests per check are flaky, one check per ten is broken for a day.
    flaky = {(c, t) for c in range(CHECKS) for t in range(TESTS) if rng.random() < 0.05}
    hours: dict[tuple[str, str], list[float]] = {}
    began = time.perf_counter()
    for index in range(RUNS):
        run_rows, result_rows = [], []
        for c in range(CHECKS):
            check = f"check-{c:03d}"
            started = start + step * index + timedelta(seconds=c)
            run_id = str(uuid.UUID(int=rng.getrandbits(128)))
            counts = {o.value: 0 for o in Outcome}
            broken_day = c % 10 == 0 and RUNS // 2 <= index < RUNS // 2 + 84
            for t in range(TESTS):
                failing = broken_day and t < 3 or ((c, t) in flaky and rng.random() < 0.1)
                outcome = Outcome.FAILED if failing else Outcome.PASSED
                counts[outcome.value] += 1
                message = f"AssertionError: status {500 + t % 4} from /api/{t}" if failing else None
                result_rows.append(
                    (
                        run_id,
                        check,
                        f"tests/test_{c:03d}.py::test_{t:02d}",
                        stamp(started),
                        1,
                        1,
                        outcome.value,
                        "call",
                        0.05 + rng.random() * 0.1,
                        None,
                        message,
                        None if message is None else f"Traceback ...\n{message}",
                        None,
                        "[]",
                        "product" if failing else None,
                    )
                )
            duration = 2.0 + rng.random()
            status = RunStatus.FAILED if counts["failed"] else RunStatus.PASSED
            run_rows.append(
                (
                    run_id,
                    check,
                    "schedule",
                    stamp(started),
                    stamp(started),
                    stamp(started + timedelta(seconds=duration)),
                    duration,
                    status.value,
                    None,
                    TESTS,
                    json.dumps(counts),
                    "bench",
                    "0.1.0",
                    "d",
                    "{}",
                )
            )
            total = hours.setdefault((check, stamp(hour_of(started))), [0, 0, 0.0])
            total[0] += 1
            total[1] += status is RunStatus.PASSED
            total[2] += duration
        db.executemany(
            'INSERT INTO runs (id, "check", "trigger", scheduled_for, started_at, finished_at,'
            " duration, status, error, collected, counts, host, version, config_digest,"
            " trigger_detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            run_rows,
        )
        db.executemany(
            'INSERT INTO results (run_id, "check", nodeid, started_at, attempt, final, outcome,'
            " phase, duration, exception, message, traceback, output, properties, category)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            result_rows,
        )
        if index % 100 == 99:
            db.commit()
            done = (index + 1) * CHECKS * TESTS
            rate = done / (time.perf_counter() - began)
            print(f"\r  seeded {done:,} results ({rate:,.0f}/s)", end="", flush=True)
    db.executemany(
        'INSERT INTO check_hours ("check", hour, runs, passed, duration_sum) VALUES (?,?,?,?,?)',
        [(check, hour, int(t[0]), int(t[1]), t[2]) for (check, hour), t in hours.items()],
    )
    db.execute("CREATE TABLE IF NOT EXISTS bench_shape (shape TEXT, seeded_at TEXT)")
    db.execute("INSERT INTO bench_shape VALUES (?, ?)", (SHAPE, end.isoformat()))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    print()


def seeded_end(path: Path) -> datetime | None:
    """Return when the kept database's history ends, if it has this benchmark's shape."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(path)
        row = db.execute("SELECT shape, seeded_at FROM bench_shape").fetchone()
        db.close()
    except sqlite3.Error:
        return None
    return datetime.fromisoformat(row[1]) if row and row[0] == SHAPE else None


def project(root: Path, database: Path) -> Path:
    """Write a config with the 100 checks (their test files exist, empty: nothing runs)."""
    (root / "tests").mkdir()
    lines = ["[onwatch]", f'database = "sqlite:///{database}"', 'listen = "127.0.0.1:0"']
    lines.append("metrics_test_limit = 2000")
    for c in range(CHECKS):
        (root / "tests" / f"test_{c:03d}.py").write_text("")
        lines += [f'\n[checks."check-{c:03d}"]', f'tests = ["tests/test_{c:03d}.py"]']
        lines.append('every = "17m"')
    path = root / "onwatch.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def latest_run(check: int, end: datetime) -> Run:
    """Return a run like the newest stored one, for the in-memory summary behind /metrics."""
    started = end - timedelta(minutes=5)
    results = tuple(
        TestResult(
            nodeid=f"tests/test_{check:03d}.py::test_{t:02d}",
            outcome=Outcome.PASSED,
            phase="call",
            duration=0.07,
        )
        for t in range(TESTS)
    )
    return Run(
        id=str(uuid.uuid4()),
        check=f"check-{check:03d}",
        status=RunStatus.PASSED,
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        collected=TESTS,
        results=results,
        trigger=Trigger.SCHEDULE,
    )


def timed(
    client: httpx.Client, path: str, requests: int, before: Callable[[], None] = lambda: None
) -> list[float]:
    """Return the seconds each of ``requests`` GETs of ``path`` took (after one warm-up)."""
    response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
    times = []
    for _ in range(requests):
        before()
        began = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200
    return times


def p95(values: list[float]) -> float:
    """Return the 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main() -> None:
    """Seed (or reuse) the history, serve it, time every page and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    DB.parent.mkdir(parents=True, exist_ok=True)
    end = None if args.reseed else seeded_end(DB)
    if end is None:
        end = datetime.now(UTC).replace(microsecond=0)
        print(f"seeding {CHECKS * TESTS * RUNS:,} results into {DB} ...")
        began = time.perf_counter()
        seed(DB, end)
        print(f"  seeded in {time.perf_counter() - began:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(project(Path(tmp), DB))
        store = open_store(config.database_url)
        store.ensure_schema()
        health = Health(list(config.checks))
        for c in range(CHECKS):
            health.record(latest_run(c, end))
        app = create_site_app(config, health, store, tick_limit=60.0)
        # The pages compute "now" from the clock: look at the seeded history as if it had
        # just been written, so 24 h holds ~84 runs per check and 30 d holds all 2,500.
        site: Site = app.state.site
        site.clock = lambda: end
        run_id = store.runs.list_runs("check-050", limit=1)[0].id
        one_ran = iter(range(10**9))
        # The overview draws a check's charts again only after it ran: time it with nothing
        # drawn yet (a restart, or the hour turning), after one check ran, and with none.
        ran = iter(range(10**9))
        before = {
            "/metrics, after a run": lambda: health.record(latest_run(next(ran) % CHECKS, end)),
            "overview, cold": site.forget_drawn,
            "overview, 1 check ran": lambda: site.forget_drawn(
                [f"check-{next(one_ran) % 100:03d}"]
            ),
        }
        pages = {
            "/healthz (baseline)": "/healthz",
            "overview, cold": "/",
            "overview, 1 check ran": "/",
            "overview, none ran": "/",
            "check page, 24h": "/checks/check-050",
            "check page, 30d": "/checks/check-050?range=30d",
            "test page, 24h": "/checks/check-050/tests/tests%2Ftest_050.py%3A%3Atest_01",
            "test page, 30d": "/checks/check-050/tests/tests%2Ftest_050.py%3A%3Atest_01?range=30d",
            "run page": f"/runs/{run_id}",
            "/metrics, after a run": "/metrics",
            "/metrics, none ran": "/metrics",
        }
        gc.collect()
        gc.freeze()  # as onwatch run and onwatch serve do once they are wired
        with (
            serve(app, "127.0.0.1:0") as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):
            figures = {
                name: timed(client, path, args.requests, before.get(name, lambda: None))
                for name, path in pages.items()
            }
        store.close()
    base = p95(figures["/healthz (baseline)"])
    print(f"\n{'page':<22} {'p50 ms':>8} {'p95 ms':>8} {'×baseline':>10} {'p95/target':>11}")
    for name, times in figures.items():
        target = METRICS_TARGET if name.startswith("/metrics") else PAGE_TARGET
        share = "" if "baseline" in name else f"{p95(times) / target:>11.2f}"
        print(
            f"{name:<22} {statistics.median(times) * 1000:>8.1f} {p95(times) * 1000:>8.1f}"
            f" {p95(times) / base:>10.1f} {share}"
        )
    print(f"\n{args.requests} requests each, one client, after one warm-up; results in {DB}")


if __name__ == "__main__":
    sys.exit(main())
