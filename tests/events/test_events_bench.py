"""The events benchmark (bench/events.py) runs end to end on real servers: every death
registered reaches every subscription. Its figures are the README's, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_events_benchmark_delivers_every_event_to_every_subscription(tmp_path: Path):
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "events.py"),
            *("--subscriptions", "3", "--events", "4", "--rate", "20", "--json"),
            *("--timeout", "60", "--database-url", f"sqlite:///{tmp_path}/bench.db"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["deliveries"] == report["expected_deliveries"] == 12
    assert report["latency_ms"]["p50"] > 0 and report["deliveries_per_s"] > 0
