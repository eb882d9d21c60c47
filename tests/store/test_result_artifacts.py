"""Artifact entries of results: through the run JSON (and so the spool) and the database."""

from __future__ import annotations

from onwatch.model import Artifact, Outcome, RunStatus, TestResult
from onwatch.store.sql import SqlStore
from records import make_run


def test_artifacts_survive_the_json_and_the_database(store: SqlStore) -> None:
    shot = Artifact(kind="screenshot", name="screenshot.png", size=1234, sha256="ab" * 32)
    result = TestResult(
        nodeid="t::journey",
        outcome=Outcome.FAILED,
        phase="call",
        duration=1.0,
        artifacts=(shot,),
    )
    run = make_run(status=RunStatus.FAILED, results=(result,))

    as_json = run.to_json()["results"][0]["artifacts"]
    assert as_json == [
        {
            "kind": "screenshot",
            "name": "screenshot.png",
            "size": 1234,
            "sha256": "ab" * 32,
            "url": f"/artifacts/{'ab' * 32}/screenshot.png",
        }
    ]
    assert type(run).from_json(run.to_json()).results[0].artifacts == (shot,)
    store.runs.save_run(run)
    stored = store.runs.get_run(run.id)
    assert stored is not None and stored.results[0].artifacts == (shot,)
