"""The hub under faults, as real processes on loopback: bench/faults.py's three scenarios,
scaled down. They assert what must hold whatever the machine's speed (counts and states:
one audit record per 2xx, one payment per Idempotency-Key, every accepted request final,
refusals that never reached upstream), never how fast; the figures are the benchmark's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import down_scenario, kill_scenario, slow_scenario
from tests.conftest import database_url, reset_database

pytestmark = pytest.mark.server


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = database_url(tmp_path)
    reset_database(url)
    return url


def test_kill_9_mid_load_loses_no_record_and_pays_nothing_twice(db: str) -> None:
    """The hub's process group is SIGKILLed after 100 of 200 calls (citizen look-ups,
    payments, judicial requests) and restarted on the same database."""
    result = kill_scenario(
        calls=200,
        concurrency=8,
        kill_after=0.5,
        database_url=db,
        processing_s=1.0,
        job_timeout_s=30,
    )
    assert result["killed_after_answers"] >= 100
    assert set(result["answers_after_restart"]) <= {"200", "201", "202"}, result
    assert sum(result["answers_after_restart"].values()) >= 80  # the load went on

    audit = result["audit"]
    assert audit["2xx"] >= 180
    assert audit["exactly_one"] == audit["2xx"], audit
    assert audit["missing"] == audit["duplicated"] == audit["bad_status"] == []

    payments = result["payments"]
    assert payments["keys"] == 50
    assert payments["hub_rows_per_key_max"] == 1
    assert payments["upstream_inits_per_payment_max"] == 1
    assert payments["upstream_unknown_to_hub"] == 0
    assert payments["replay_same_payment"] == 50, payments["replay_changed"]
    assert payments["keys_with_one_upstream_payment_after_replay"] == 50
    assert payments["hub_rows_after_replay"] == 50

    jobs = result["jobs"]
    assert jobs["accepted_202"] >= 25
    assert jobs["final"] == jobs["accepted_202"], jobs
    assert jobs["pending_at_kill_final_after"] == jobs["pending_at_kill"]

    assert result["verify_after_kill"]["exit"] == 0, result["verify_after_kill"]
    assert result["verify_end"]["exit"] == 0, result["verify_end"]
    assert all(result["checks"].values()), result["checks"]


def test_upstream_down_opens_the_circuit_and_traffic_resumes_by_itself(db: str) -> None:
    """Population look-ups at 50/s; the mock fails every call for 3 s, then recovers."""
    result = down_scenario(
        rate=50,
        warm_s=1,
        down_s=3,
        settle_s=1,
        recover_timeout_s=20,
        database_url=db,
        hub_env={
            "HUB_CIRCUIT_WINDOW_S": "2",
            "HUB_CIRCUIT_MIN_CALLS": "5",
            "HUB_CIRCUIT_COOLDOWN_S": "0.5",
            "HUB_CIRCUIT_MAX_COOLDOWN_S": "1",
        },
    )
    phases = result["phases"]
    before, down = phases["before"]["statuses"], phases["down"]["statuses"]
    # A call in flight when the mock went down may have failed (502), none was refused.
    assert "503" not in before and before["200"] > 0, before
    # Upstream's failure (502), the open circuit (503), or a retry after it came back.
    assert set(down) <= {"200", "502", "503"}, down
    # The circuit opened: refused at once, and none of those refusals reached upstream
    # (its audit record would carry the time spent there).
    assert result["open_503"]["calls"] > 0
    assert result["refused_503_reaching_upstream"] == 0
    # Back up: the circuit closed by itself, and everything after that first 200 was a 200.
    assert result["back_to_first_200_s"] is not None
    after = result["after_first_200"]
    assert after["calls"] > 0 and after["statuses"] == {"200": after["calls"]}
    assert result["unrecorded"] == 0
    assert all(result["checks"].values()), result["checks"]


def test_a_slow_upstream_leaves_the_other_services_alone(db: str) -> None:
    """The population mock at 2 s latency under load; the enterprise look-up goes on."""
    result = slow_scenario(
        latency_ms=2000,
        rate=10,
        other_rate=5,
        normal_s=1,
        slow_s=4,
        database_url=db,
        hub_env={"HUB_POPULATION_MAX_CONCURRENT": "3"},
    )
    normal, slow = result["phases"]["normal"], result["phases"]["slow"]
    for phase in (normal, slow):
        other = phase["other"]
        assert other["calls"] > 0 and other["statuses"] == {"200": other["calls"]}, phase
    assert normal["slow_service"]["statuses"] == {"200": normal["slow_service"]["calls"]}
    # Slowed: at most 3 calls wait on it at once; the rest are refused at once, without
    # reaching it; none times out at 2 s.
    answered = slow["slow_service"]["statuses"]
    assert set(answered) <= {"200", "503"}, answered
    assert answered.get("200", 0) > 0 and result["bulkhead_503"] > 0
    assert result["slow_service_errors"] == {"UPSTREAM_UNAVAILABLE": result["bulkhead_503"]}
    assert all(result["checks"].values()), result["checks"]
