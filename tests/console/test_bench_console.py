"""bench/console.py runs end to end (scaled down): every console page answered 200 over a
filled audit trail. The timings are the README's, never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_benchmark_loads_every_page() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "console.py"),
            "--records",
            "3000",
            "--loads",
            "1",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={k: v for k, v in os.environ.items() if k != "HUB_BENCH_DATABASE_URL"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["records"] == 3000 and len(report["results"]) == 10
    for row in report["results"]:
        assert row["statuses"] == [200], row
        assert row["p50_ms"] > 0
