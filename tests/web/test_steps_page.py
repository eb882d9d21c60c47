"""The test page charts the named steps of a journey, so a step that got slow stands out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from onwatch.model import Outcome, TestResult
from onwatch.store import open_store
from records import make_run
from web.conftest import Served, make_config, seed

JOURNEY = "tests/test_api.py::test_deposit_journey"


def test_the_test_page_draws_one_line_per_step_with_a_point_per_run(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    config = make_config(tmp_path)
    history = seed(config, now)
    store = open_store(config.database_url)
    for minutes_ago, slow in [(50, 0.5), (40, 0.6), (30, 4.0)]:
        steps = (
            ("step", {"name": "log in", "seconds": 0.3, "ok": True}),
            ("step", {"name": "deposit", "seconds": slow, "ok": True}),
        )
        result = TestResult(JOURNEY, Outcome.PASSED, "call", 1.0, properties=steps)
        store.runs.save_run(
            make_run(started_at=now - timedelta(minutes=minutes_ago), results=(result,))
        )
    store.close()
    served = Served(history, listen="127.0.0.1:8787")
    try:
        with served.client() as http:
            page = http.get(f"/checks/api/tests/{JOURNEY}?range=1h").text
    finally:
        served.close()

    assert "<h2>Steps</h2>" in page
    chart = page.split('aria-label="step timings of')[1].split("</svg>")[0]
    assert len(re.findall(r'class="point', chart)) == 6
    assert "deposit" in chart and "log in" in chart
