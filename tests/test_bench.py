"""The benchmark itself (bench/run.py) runs end to end: the mock, the hub and the bare-proxy
floor as real processes, every call of every mode answered, the ratios and the CPU each
process spent per call reported. The figures themselves are in docs/design/benchmark.md, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import free_port

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_times_direct_floor_and_hub_with_no_failed_call(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *("--duration", "0.3", "--concurrency", "2", "--subjects", "20", "--json"),
            *("--mock-port", ports[0], "--hub-port", ports[1], "--floor-port", ports[2]),
            "--database-url",
            f"sqlite:///{tmp_path}/bench.db",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    results = {r["mode"]: r for r in report["results"]}
    assert set(results) == {"direct", "floor", "hub"}
    for mode, result in results.items():
        assert result["requests"] > 0, mode
        assert result["errors"] == 0, mode  # the floor returns the mock's answer, the hub 200
        assert result["cpu_us_per_call"]["loadgen"] > 0
        assert result["cpu_us_per_call"]["mock"] > 0, mode  # the mock answered every mode
    assert results["hub"]["cpu_us_per_call"]["hub"] > 0
    assert results["floor"]["cpu_us_per_call"]["floor"] > 0
    (ratios,) = report["ratios"]
    assert ratios["concurrency"] == 2
    assert ratios["hub/direct"] > 0 and ratios["floor/direct"] > 0


def test_the_soak_samples_the_hubs_memory_with_no_failed_call(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *("--soak", "1", "--subjects", "20"),
            *("--mock-port", ports[0], "--hub-port", ports[1], "--floor-port", ports[2]),
            "--database-url",
            f"sqlite:///{tmp_path}/bench.db",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: grew more than 10 % (not judged)
    lines = run.stdout.splitlines()
    assert sum(line.strip().endswith("req/s") for line in lines) == 10, run.stdout
    [verdict] = [line for line in lines if line.startswith("RSS after warm-up")]
    assert "MiB" in verdict and "calls failed" not in verdict, run.stdout


def test_the_stage_table_times_every_stage_of_a_real_call() -> None:
    """bench/stages.py makes one real call through the hub, then times each stage on its
    objects: every stage is listed with a figure (no timed assertion)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stages.py"), "--number", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    figures = {line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1] for line in lines[1:]}
    for stage in ("SOAP parse (lxml, hardened)", "mapping (compiled closures)", "audit row", "sum"):
        assert float(figures[stage]) > 0, run.stdout
