"""Two hub processes on one database (and one Redis in CI's second pass, as in production):
under load from both at once, every call has exactly one audit record and the audit chain
stays valid; judicial requests submitted through either are each sent upstream once,
finished once and reported to the agency's webhook once, while both processes poll them
and upstream pushes to one of them. (A rate limit holding across two processes is shown in
tests/test_ratelimit.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import text

from hub.core.db import make_engine
from tests.test_servers import (  # noqa: F401
    HUB,
    create_client,
    env,
    free_port,
    start,
    stop,
    wait_until_up,
)

pytestmark = pytest.mark.server

JOBS = 6
LOOKUPS = 120


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.lock:
            self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _until(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def test_two_hub_processes_share_the_work_and_the_audit_chain(env):  # noqa: F811
    population_port, judicial_port = free_port(), free_port()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

    mocks = [
        start([sys.executable, "-m", "mocks", "population", "--port", str(population_port)], env),
        start(
            [sys.executable, "-m", "uvicorn", "--factory", "mocks:app_from_env",
             "--port", str(judicial_port), "--log-level", "warning"],
            env | {
                "MOCKS_APP": "judicial-records",
                "MOCKS_OPTIONS": json.dumps({
                    "processing_s": 1.0,
                    # upstream pushes to the first hub; both poll
                    "push_url": f"{urls[0]}/v1/judicial-records/results",
                }),
            },
        ),
    ]  # fmt: skip
    hub_env = env | {
        "HUB_ENABLED_ADAPTERS": '["population", "judicial-records"]',
        "HUB_POPULATION_BASE_URL": f"http://127.0.0.1:{population_port}",
        "HUB_JUDICIAL_RECORDS_BASE_URL": f"http://127.0.0.1:{judicial_port}",
        "HUB_JOB_POLL_INITIAL_S": "0.3",
        "HUB_JOB_POLL_MAX_S": "0.5",
        "HUB_WORKER_INTERVAL_S": "0.1",
        "HUB_WEBHOOK_INITIAL_BACKOFF_S": "0.2",
        "HUB_AUDIT_CHECKPOINT_EVERY": "50",
    }
    if os.environ.get("HUB_TEST_REDIS_URL"):  # CI's second pass: as in production
        hub_env["HUB_REDIS_URL"] = os.environ["HUB_TEST_REDIS_URL"]
    hubs = [
        start([*HUB, "serve", "--port", str(port), "--log-level", "warning"], hub_env)
        for port in ports
    ]
    try:
        wait_until_up(mocks[0], f"http://127.0.0.1:{population_port}/_mock/health")
        wait_until_up(mocks[1], f"http://127.0.0.1:{judicial_port}/_mock/health")
        for proc, url in zip(hubs, urls, strict=True):
            wait_until_up(proc, f"{url}/health")
        created = create_client(
            hub_env, "district-office",
            "--allow", "population", "--allow", "judicial-records", "--purpose", "hs-1",
        )  # fmt: skip
        headers = {"authorization": f"Bearer {created['api_key']}", "x-purpose": "hs-1"}

        citizens = httpx.get(f"http://127.0.0.1:{population_port}/_mock/records?limit=20").json()[
            "records"
        ]
        sent: list[str] = []

        def lookup(i: int) -> int:
            rid = f"lookup-{i:04d}-{uuid.uuid4().hex[:6]}"
            sent.append(rid)
            citizen = citizens[i % len(citizens)]["personal_id"]
            answer = httpx.get(
                f"{urls[i % 2]}/v1/citizens/{citizen}",
                headers={**headers, "x-request-id": rid},
                timeout=30,
            )
            return answer.status_code

        applicants = httpx.get(
            f"http://127.0.0.1:{judicial_port}/_mock/records?limit={JOBS}"
        ).json()["records"]

        def submit(i: int) -> str:
            applicant = {k: v for k, v in applicants[i].items() if k != "expected"}
            rid = f"submit-{i:02d}-{uuid.uuid4().hex[:6]}"
            sent.append(rid)
            answer = httpx.post(
                f"{urls[i % 2]}/v1/judicial-records/requests",
                json={**applicant, "certificate_type": 1, "purpose_code": "01",
                      "callback_url": callback},
                headers={**headers, "x-request-id": rid},
                timeout=30,
            )  # fmt: skip
            assert answer.status_code == 202, answer.text
            return answer.json()["data"]["id"]

        with ThreadPoolExecutor(16) as pool:
            jobs_future = pool.map(submit, range(JOBS))
            statuses = list(pool.map(lookup, range(LOOKUPS)))
            jobs = list(jobs_future)
        assert statuses == [200] * LOOKUPS

        def final(job: str) -> bool:
            state = httpx.get(
                f"{urls[1]}/v1/judicial-records/requests/{job}", headers=headers
            ).json()["data"]
            return bool(state["final"])

        assert _until(lambda: all(final(job) for job in jobs), timeout=40), "jobs not final"
        assert _until(lambda: len(_Receiver.received) >= JOBS, timeout=20)
        time.sleep(1.0)  # both processes keep polling and delivering: nothing more may come
        delivered = sorted(item["data"]["id"] for item in _Receiver.received)
        assert delivered == sorted(jobs), "each job is reported to the agency exactly once"
        upstream = httpx.get(f"http://127.0.0.1:{judicial_port}/_mock/requests").json()
        assert len(upstream["requests"]) == JOBS, "each request went upstream once"
    finally:
        for proc in hubs:
            stop(proc)  # a graceful stop: each process signs the chain's end
        for proc in mocks:
            stop(proc)
        receiver.shutdown()

    engine = make_engine(env["HUB_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT request_id, operation FROM audit_records")).all()
            writers = conn.execute(text("SELECT COUNT(*) FROM audit_checkpoints")).scalar()
    finally:
        engine.dispose()
    counted: dict[str, list[str]] = {}
    for rid, operation in rows:
        counted.setdefault(rid, []).append(operation)
    # one record per call; a judicial application is two: the agency's request, and the
    # upstream submission made for it (docs/operator/audit.md)
    expected = {
        rid: ["request", "submit"] if rid.startswith("submit") else ["lookup"] for rid in sent
    }
    assert {rid: sorted(counted.get(rid, [])) for rid in sent} == expected
    assert writers and writers >= 2
    verified = subprocess.run(
        [*HUB, "audit", "verify"], env=hub_env, capture_output=True, text=True
    )
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr
