"""The Grafana files in contrib/grafana load as a dashboard and as provisioning.

Grafana itself is not run here; tests/test_prometheus_live.py runs every query of the
dashboard against a real Prometheus.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import ProgrammingError

from onwatch.model import Outcome, RunStatus, TestResult
from onwatch.store import open_store
from pgserver import fresh_database
from records import T0, make_run

GRAFANA = Path(__file__).resolve().parents[1] / "contrib" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / "onwatch-dashboard.json").read_text())
    return loaded


def test_it_is_a_dashboard_with_a_stable_uid_and_a_recent_schema(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "onwatch"
    assert dashboard["title"] == "onwatch"
    assert dashboard["id"] is None  # Grafana assigns its own on import
    assert 36 <= dashboard["schemaVersion"] <= 41


def test_every_panel_has_a_prometheus_datasource_and_a_query(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_do_not_overlap_on_the_24_column_grid(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_it_covers_what_the_product_asks_for(dashboard: dict[str, Any]) -> None:
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in [
        "up{",
        "onwatch_scheduler_last_tick_timestamp_seconds",
        "onwatch_check_up",
        "onwatch_check_last_run_timestamp_seconds",
        "onwatch_check_last_run_duration_seconds",
        "onwatch_runs_total",
        "onwatch_check_consecutive_failures",
        "onwatch_check_incident_open",
        "onwatch_check_overdue",
        "onwatch_results_total",
        "onwatch_test_last_outcome",
        "topk(10, onwatch_test_last_duration_seconds",
    ]:
        assert metric in queries


def test_its_variables_pick_a_prometheus_then_job_instance_and_check(
    dashboard: dict[str, Any],
) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance", "check"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    check = variables["check"]
    assert check["definition"].startswith("label_values(onwatch_check_up{")
    assert check["definition"].endswith(", check)")
    assert check["includeAll"] and check["multi"] and check["allValue"] == ".*"


def test_the_provisioning_files_point_at_prometheus_and_the_dashboard_folder() -> None:
    datasources = (GRAFANA / "provisioning" / "datasources" / "onwatch.yml").read_text()
    dashboards = (GRAFANA / "provisioning" / "dashboards" / "onwatch.yml").read_text()
    for text in (datasources, dashboards):
        assert "\t" not in text
        assert text.count("\napiVersion: 1\n") == 1
    assert "\ndatasources:\n" in datasources
    assert "    type: prometheus\n" in datasources
    assert "\nproviders:\n" in dashboards
    assert "    type: file\n" in dashboards
    assert "      path: /var/lib/grafana/dashboards/onwatch\n" in dashboards
    readme = (GRAFANA / "README.md").read_text()
    assert "/var/lib/grafana/dashboards/onwatch" in readme


# -- the SQL of docs/metrics.md, run on both databases ---------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
EVERYTHING = {  # Grafana's macros and variables, for a range that holds every test run
    "$__timeFilter(started_at)": "started_at BETWEEN '2000-01-01Z' AND '2100-01-01Z'",
    "$__from": "946684800000",
    "$__to": "4102444800000",
    "$check": "'api'",
}


def sql_blocks(heading: str) -> list[str]:
    """Return the ```sql blocks of one section of docs/metrics.md, Grafana's macros filled in."""
    section = DOCS.read_text().split(f"\n### {heading}\n", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    filled = []
    for block in blocks:
        for macro, value in EVERYTHING.items():
            block = block.replace(macro, value)
        assert "$" not in block, block
        filled.append(block)
    return filled


def save_history(url: str) -> None:
    """Store 20 runs of check api: test_a takes 1..20 s, test_b fails one run in four."""
    store = open_store(url)
    store.ensure_schema()
    for i in range(20):
        results = [
            TestResult("t.py::test_a", Outcome.PASSED, "call", float(i + 1), attempt=2),
            TestResult(
                "t.py::test_b", Outcome.FAILED if i % 4 == 0 else Outcome.PASSED, "call", 0.5
            ),
        ]
        if i == 0:  # a retried attempt must not count
            results.insert(
                0, TestResult("t.py::test_a", Outcome.FAILED, "call", 999.0, final=False)
            )
        status = RunStatus.FAILED if i % 4 == 0 else RunStatus.PASSED
        store.runs.save_run(make_run(minute=i, status=status, results=tuple(results)))
    store.runs.save_run(
        make_run(check="web", results=(TestResult("w.py::test_x", Outcome.FAILED, "call", 50.0),))
    )
    store.close()


def test_the_documented_sqlite_queries_answer_from_a_read_only_connection(tmp_path: Path) -> None:
    save_history(f"sqlite:///{tmp_path / 'onwatch.db'}")
    rate_sql, p95_sql = sql_blocks("SQLite")
    with closing(sqlite3.connect(f"file:{tmp_path / 'onwatch.db'}?mode=ro", uri=True)) as db:
        rates = {row[1]: row[2] for row in db.execute(rate_sql)}
        hours = {row[0] for row in db.execute(rate_sql)}
        p95 = {row[1]: row[2] for row in db.execute(p95_sql)}
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("DELETE FROM runs")
    assert rates == {"t.py::test_a": 0.0, "t.py::test_b": 0.25}
    assert hours == {int(T0.timestamp())}
    assert p95 == {"t.py::test_a": 19.0, "t.py::test_b": 0.5}


@pytest.mark.e2e
def test_the_documented_postgresql_queries_answer_as_the_read_only_role(postgres_url: str) -> None:
    url = fresh_database(postgres_url)
    save_history(url)
    grants, rate_sql, p95_sql = sql_blocks("PostgreSQL")
    role = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    database = make_url(url).database
    grants = grants.replace("grafana_reader", role).replace(
        "DATABASE onwatch", f"DATABASE {database}"
    )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(grants)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET ROLE {role}")
            rates = {row[1]: float(row[2]) for row in conn.exec_driver_sql(rate_sql)}
            p95 = {row[1]: row[2] for row in conn.exec_driver_sql(p95_sql)}
        with engine.begin() as conn, pytest.raises(ProgrammingError, match="permission denied"):
            conn.exec_driver_sql(f"SET ROLE {role}")
            conn.exec_driver_sql("DELETE FROM runs")
    finally:
        engine.dispose()
    assert rates == {"t.py::test_a": 0.0, "t.py::test_b": 0.25}
    assert p95["t.py::test_a"] == pytest.approx(19.05)
    assert p95["t.py::test_b"] == pytest.approx(0.5)
