"""Time from the end of a failing run to the webhook receiving the alert.

Drives onwatch's real alerting path in one process: each failing run is recorded in SQLite,
handed to the alerting engine (as the daemon does after each run), written to the outbox and
sent by the outbox worker to a webhook receiver on 127.0.0.1. A passing run then resolves the
incident so that the next failing run opens a new one. Prints p50/p99 over N incidents.
Target: p99 < 1 s.

    python bench/alert_latency.py [--incidents 100]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from onwatch.alerting.engine import Alerting  # noqa: E402
from onwatch.alerting.outbox import Outbox, OutboxWorker  # noqa: E402
from onwatch.channels import build_channel  # noqa: E402
from onwatch.config import load_config  # noqa: E402
from onwatch.model import Outcome, Run, RunStatus, TestResult, utcnow  # noqa: E402
from onwatch.store import open_store  # noqa: E402
from onwatch.store.outbox import OutboxStore  # noqa: E402
from receivers import HttpReceiver  # noqa: E402


def make_run(check: str, failing: bool) -> Run:
    """Return a finished run of ``check`` that failed or passed."""
    now = utcnow()
    outcome = Outcome.FAILED if failing else Outcome.PASSED
    result = TestResult(
        nodeid="tests/test_shop.py::test_pay",
        outcome=outcome,
        phase="call",
        duration=0.1,
        message="AssertionError: payment failed" if failing else None,
    )
    return Run(
        id=str(uuid.uuid4()),
        check=check,
        status=RunStatus.FAILED if failing else RunStatus.PASSED,
        started_at=now - timedelta(seconds=1),
        finished_at=now,
        collected=1,
        results=(result,),
    )


def main() -> None:
    """Measure and print the latencies."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="onwatch-bench-alerts-"))
    (root / "tests").mkdir()
    with HttpReceiver() as receiver:
        (root / "onwatch.toml").write_text(
            '[checks.shop]\ntests = ["tests"]\nevery = "1m"\nalert_after = 1\n'
            'notify = ["hook"]\n\n'
            f'[notify.hook]\ntype = "webhook"\nurl = "{receiver.url}/hook"\n'
        )
        config = load_config(root / "onwatch.toml")
        store = open_store(config.database_url)
        store.ensure_schema()
        channels = {n: build_channel(n, s) for n, s in config.channels.items()}
        outbox = Outbox(OutboxStore(store), channels)
        worker = OutboxWorker(outbox)
        worker.start()
        alerting = Alerting(config, store, outbox, on_enqueue=worker.wake)
        latencies = []
        try:
            for index in range(args.incidents):
                failing = make_run("shop", failing=True)
                store.save_run(failing)
                ended = time.monotonic()
                alerting.on_run(failing)
                arrived = receiver.wait_for(2 * index + 1, timeout=10)[-1]
                latencies.append(arrived.at - ended)
                passing = make_run("shop", failing=False)
                store.save_run(passing)
                alerting.on_run(passing)
                receiver.wait_for(2 * index + 2, timeout=10)
        finally:
            worker.stop(timeout=5)
            outbox.close()
            store.close()
            shutil.rmtree(root, ignore_errors=True)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"incidents:             {len(latencies)}")
    print(f"end of run -> webhook: p50 {p50 * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms")
    print(f"max:                   {latencies[-1] * 1000:6.1f} ms   (target p99 < 1000 ms)")


if __name__ == "__main__":
    main()
