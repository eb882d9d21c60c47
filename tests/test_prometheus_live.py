"""A real Prometheus scrapes a real ``onwatch run``: every dashboard query and rule finds data.

One daemon and one Prometheus serve the whole module. The daemon runs two checks every second:
``api`` passes, ``checkout`` fails (so it has an open incident after two runs). Prometheus
scrapes it every second and evaluates contrib/prometheus/onwatch-rules.yml every second.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import Daemon
from needs import free_port, program
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "contrib" / "grafana" / "onwatch-dashboard.json"
RULES = REPO / "contrib" / "prometheus" / "onwatch-rules.yml"
# What Grafana would put in place of its variables; `.*` selects every instance and check.
GRAFANA_VARIABLES = {
    "__rate_interval": "15s",
    "__interval": "5s",
    "__range": "1m",
    "job": "onwatch",
    "instance": ".*",
    "check": ".*",
}
STARTUP_SECONDS = 30.0


def dashboard_queries() -> list[tuple[str, str]]:
    """Return (panel title and refId, PromQL) for every target of every panel."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            found.append((f"{panel['title']} {target['refId']}", target["expr"]))
    return found


def dashboard_variables() -> list[tuple[str, str]]:
    """Return (name, label_values(...) query) of every query variable of the dashboard."""
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    return [(v["name"], v["definition"]) for v in variables if v["type"] == "query"]


def substitute(expr: str) -> str:
    """Replace Grafana's variables the way Grafana would, and make sure none is left."""

    def value(match: re.Match[str]) -> str:
        return GRAFANA_VARIABLES[match.group(1) or match.group(2)]

    done = re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)
    assert "$" not in done, done
    return done


def find_prometheus() -> str:
    return program("prometheus", "prometheus")


@dataclass
class Stack:
    """The running daemon and Prometheus, and an HTTP client for Prometheus's API."""

    onwatch_url: str
    prometheus: httpx.Client

    def api(self, path: str, **params: Any) -> Any:
        """Return the data of a successful Prometheus API answer."""
        response = self.prometheus.get(f"/api/v1/{path}", params=params)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Return the result of an instant query at the current time."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result


def start_daemon(root: Path) -> tuple[Daemon, str]:
    switch = root / "checkout-broken"
    switch.write_text("the payment form does not load")
    config = make_project(
        root,
        {
            "checkout": {"tests": ["switch"], "every": "1s", "env": {"SWITCH_FILE": str(switch)}},
            "api": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "3"}},
        },
        settings={"max_jitter": "1ms"},
        suites=("many", "switch"),
    )
    daemon = Daemon(config)
    daemon.wait_for(lambda d: any("url" in line for line in d.lines()))
    url = next(line["url"] for line in daemon.lines() if "url" in line)
    return daemon, url


def prometheus_config(root: Path, onwatch_url: str) -> Path:
    target = onwatch_url.removeprefix("http://").rstrip("/")
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files:\n  - {json.dumps(str(RULES))}\n"
        "scrape_configs:\n"
        "  - job_name: onwatch\n"
        f"    static_configs:\n      - targets: [{json.dumps(target)}]\n"
    )
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = find_prometheus()
    root = tmp_path_factory.mktemp("live")
    daemon, onwatch_url = start_daemon(root)
    port = free_port()
    log = (root / "prometheus.log").open("w")
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={prometheus_config(root, onwatch_url)}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:
        running = Stack(onwatch_url, client)
        wait_for_data(running, prometheus)
        yield running
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nprometheus log:\n{(root / 'prometheus.log').read_text()}"
            f"\ndaemon log:\n{daemon.log_path.read_text()}"
        ) from exc
    finally:
        client.close()
        prometheus.terminate()
        try:
            prometheus.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()
        log.close()
        daemon.stop()


def wait_for_data(stack: Stack, prometheus: subprocess.Popen[bytes]) -> None:
    """Wait until Prometheus is ready, has scraped a few times and has evaluated the rules."""

    def ready() -> bool:
        assert prometheus.poll() is None, "prometheus exited"
        try:
            return stack.prometheus.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def scraped() -> bool:
        # Enough samples for rate() over 15s, and both checks past their first runs.
        scrapes = stack.query('count_over_time(onwatch_up{job="onwatch"}[1m])')
        incident = stack.query('onwatch_check_incident_open{check="checkout"} == 1')
        tests = stack.query("count(onwatch_test_last_outcome)")
        return (
            bool(scrapes and float(scrapes[0]["value"][1]) >= 4)
            and bool(incident)
            and bool(tests and float(tests[0]["value"][1]) >= 5)
        )

    def evaluated() -> bool:
        rules = [r for g in stack.api("rules")["groups"] for r in g["rules"]]
        return all(r["health"] != "unknown" for r in rules) and any(
            a["labels"]["alertname"] == "OnwatchIncidentOpen" and a["state"] == "firing"
            for a in stack.api("alerts")["alerts"]
        )

    wait_until(ready, "prometheus to be ready", STARTUP_SECONDS, interval=0.2)
    wait_until(scraped, "prometheus to scrape onwatch's runs", STARTUP_SECONDS, interval=0.2)
    wait_until(evaluated, "the alerting rules to be evaluated", STARTUP_SECONDS, interval=0.2)


@pytest.mark.parametrize(("panel", "expr"), dashboard_queries(), ids=lambda v: str(v)[:60])
def test_every_dashboard_query_returns_data(stack: Stack, panel: str, expr: str) -> None:
    result = stack.query(substitute(expr))
    assert result, f"{panel}: no data for {expr}"


@pytest.mark.parametrize(("name", "definition"), dashboard_variables())
def test_every_dashboard_variable_finds_values(stack: Stack, name: str, definition: str) -> None:
    match = re.fullmatch(r"label_values\((.+), *(\w+)\)", substitute(definition))
    assert match, f"variable {name}: not a label_values(selector, label) query"
    values = stack.api(f"label/{match.group(2)}/values", **{"match[]": match.group(1)})
    assert values, f"variable {name} finds no values"
    if name == "check":
        assert set(values) == {"api", "checkout"}


def rules(stack: Stack) -> list[dict[str, Any]]:
    return [rule for group in stack.api("rules")["groups"] for rule in group["rules"]]


def test_prometheus_loads_every_rule_of_the_rules_file(stack: Stack) -> None:
    in_file = re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M)
    assert sorted(rule["name"] for rule in rules(stack)) == sorted(in_file)


def test_every_rule_evaluates_without_error(stack: Stack) -> None:
    for rule in rules(stack):
        assert rule["health"] == "ok", rule
        stack.query(rule["query"])  # raises unless Prometheus answers success


def test_every_metric_a_rule_uses_has_data(stack: Stack) -> None:
    names = {
        name for rule in rules(stack) for name in re.findall(r"onwatch_[a-z_]+", rule["query"])
    }
    assert "onwatch_check_incident_open" in names
    for name in sorted(names):
        assert stack.query(name), f"no data for {name}"


def test_the_failing_check_fires_its_incident_and_is_pending_as_failing(stack: Stack) -> None:
    active = {
        (a["labels"]["alertname"], a["labels"].get("check")): a["state"]
        for a in stack.api("alerts")["alerts"]
    }
    assert active[("OnwatchIncidentOpen", "checkout")] == "firing"
    # OnwatchCheckFailing waits 10 minutes before firing.
    assert active[("OnwatchCheckFailing", "checkout")] == "pending"
    assert not [key for key in active if key[1] == "api"]
    assert not [key for key in active if key[0] in ("OnwatchDown", "OnwatchSchedulerStuck")]


def test_the_per_test_series_name_the_failing_test(stack: Stack) -> None:
    failing = stack.query('onwatch_test_last_outcome{outcome="failed"}')
    assert [(s["metric"]["check"], s["metric"]["test"]) for s in failing] == [
        ("checkout", "switch/test_switch.py::test_switched")
    ]
