"""The overview redraws a check's charts when it ran, and its pass rates as the hour turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from onwatch.model import RunStatus
from onwatch.store import open_store
from onwatch.web.auth import Auth
from onwatch.web.site import Site
from records import make_run
from web.conftest import make_config, seed


def test_the_overview_redraws_only_what_changed(tmp_path: Path) -> None:
    now = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    config = make_config(tmp_path)
    seed(config, now)
    store = open_store(config.database_url)
    clock = [now]
    site = Site(config=config, store=store, auth=Auth(), clock=lambda: clock[0])
    try:
        first = {row.status.name: row for row in site.overview().rows}
        assert str(first["api"].strip).count('class="point') == 30

        # Another look with nothing new: the very same drawing.
        again = {row.status.name: row for row in site.overview().rows}
        assert again["api"].strip is first["api"].strip

        # A run of web: web is drawn again with one more cell, api is not.
        store.runs.save_run(
            make_run(check="web", started_at=now - timedelta(minutes=1), status=RunStatus.FAILED)
        )
        after = {row.status.name: row for row in site.overview().rows}
        assert str(after["web"].strip).count('class="point') == 11
        assert after["web"].rates[0][0] == first["web"].rates[0][0] + 1
        assert after["api"].strip is first["api"].strip

        # Hours later the oldest api runs leave the 24 h window: rates move, the strip stays.
        clock[0] = now + timedelta(hours=6)
        later = {row.status.name: row for row in site.overview().rows}
        assert later["api"].rates[0][0] < first["api"].rates[0][0]
        assert later["api"].strip is first["api"].strip
    finally:
        store.close()
