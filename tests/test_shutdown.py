"""Stopping: SIGTERM lets the requests in flight finish, every one audited, and exits 0;
the background worker finishes the tick under way instead of cutting a step mid-write.

(A judicial request pending when the hub stops, by SIGTERM or by SIGKILL, is finished by
the next process: tests/test_servers.py, the restart test.)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from hub.core.worker import BackgroundWorker
from tests.conftest import database_url, reset_database
from tests.test_servers import HUB, create_client, free_port, start, stop, wait_until_up

TCP_TABLE = Path("/proc/net/tcp")
SLOW_MS = 3000
CALLS = 10


async def test_stopping_lets_the_tick_under_way_finish():
    asked, answered = asyncio.Event(), asyncio.Event()
    ticks: list[str] = []

    async def step() -> int:
        ticks.append("started")
        asked.set()
        await answered.wait()  # upstream's answer, say
        await asyncio.sleep(0)
        ticks.append("written")  # the write that records it
        return 1

    worker = BackgroundWorker([("fake", step)], interval_s=0.001)
    worker.start()
    await asked.wait()
    stopping = asyncio.create_task(worker.aclose(grace_s=60))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()  # waiting for the step, not cancelling it
    answered.set()
    await asyncio.wait_for(stopping, 30)
    assert ticks == ["started", "written"]  # finished, and no tick after it


async def test_a_step_still_running_after_the_grace_is_cancelled():
    asked = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck() -> int:
        asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    worker = BackgroundWorker([("stuck", stuck)], interval_s=0.001)
    worker.start()
    await asked.wait()
    await asyncio.wait_for(worker.aclose(grace_s=0.05), 30)
    assert cancelled == [True]


async def test_stopping_between_ticks_does_not_wait_for_the_next_one():
    ticks: list[int] = []

    async def step() -> int:
        ticks.append(1)
        return 0

    worker = BackgroundWorker([("quick", step)], interval_s=3600)
    worker.start()
    while not ticks:
        await asyncio.sleep(0)
    await asyncio.wait_for(worker.aclose(grace_s=3600), 30)  # not an hour's wait
    assert ticks == [1]
    await worker.aclose()  # twice is harmless


def established_to(port: int) -> int:
    """TCP connections established to a local server port (Linux's connection table)."""
    count = 0
    for line in TCP_TABLE.read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            count += 1
    return count


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.server
@pytest.mark.skipif(not TCP_TABLE.exists(), reason="needs Linux's /proc/net/tcp")
def test_sigterm_lets_requests_in_flight_finish_and_audits_them(tmp_path: Path):
    """Ten slow look-ups are in flight (the upstream answers in 3 s) when the hub gets
    SIGTERM: it stops taking connections at once, answers all ten in full, records each
    in the audit trail, signs the chain's end and exits 0."""
    url = database_url(tmp_path)
    reset_database(url)
    mock_port, hub_port = free_port(), free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "server-test-secret",
        "HUB_ENABLED_ADAPTERS": '["population"]',
        "HUB_POPULATION_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "HUB_UPSTREAM_TIMEOUT_S": "20",
        "HUB_RETRY_DEADLINE_S": "30",
        "HUB_SHUTDOWN_GRACE_S": "25",
        "HUB_LOG_FORMAT": "json",
    }
    mock = start(
        [
            *(sys.executable, "-m", "mocks", "population"),
            *("--port", str(mock_port), "--fault", f"latency={SLOW_MS}"),
        ],
        env,
    )
    hub = start([*HUB, "serve", "--port", str(hub_port), "--log-level", "info"], env)
    try:
        wait_until_up(mock, f"http://127.0.0.1:{mock_port}/_mock/health")
        wait_until_up(hub, f"http://127.0.0.1:{hub_port}/health")
        key = create_client(env, "agency", "--allow", "population", "--purpose", "p")["api_key"]
        citizen = httpx.get(f"http://127.0.0.1:{mock_port}/_mock/records?limit=1").json()
        citizen = citizen["records"][0]

        def look_up(n: int) -> httpx.Response:
            return httpx.get(
                f"http://127.0.0.1:{hub_port}/v1/citizens/{citizen['personal_id']}",
                headers={
                    "authorization": f"Bearer {key}",
                    "x-purpose": "p",
                    "x-request-id": f"grace-{n}",
                },
                timeout=60,
            )

        with ThreadPoolExecutor(CALLS) as pool:
            calls = [pool.submit(look_up, n) for n in range(CALLS)]
            deadline = time.monotonic() + 30
            while established_to(mock_port) < CALLS and time.monotonic() < deadline:
                time.sleep(0.02)  # until the hub is asking upstream for all ten
            assert established_to(mock_port) >= CALLS
            os.kill(hub.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while not refused(hub_port) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert refused(hub_port), "still taking connections after SIGTERM"
            assert not any(c.done() for c in calls)  # …while the ten are still in flight
            answers = [c.result() for c in calls]
        output, _ = hub.communicate(timeout=60)
    finally:
        stop(hub)
        stop(mock)
    assert hub.returncode == 0, output
    for answer in answers:
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert (data["personal_id"], data["full_name"], data["date_of_birth"]) == (
            citizen["personal_id"],
            citizen["full_name"],
            citizen["date_of_birth"],
        )
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert not [line for line in lines if line["level"] in ("WARNING", "ERROR")], output

    from sqlalchemy import text

    from hub.core.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT request_id, status FROM audit_records WHERE request_id LIKE 'grace-%'")
        ).all()
    engine.dispose()
    assert sorted(rows) == sorted((f"grace-{n}", 200) for n in range(CALLS))
    verified = subprocess.run(
        [*HUB, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
