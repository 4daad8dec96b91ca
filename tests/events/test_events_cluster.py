"""Two hub processes on one database share the events work; one is killed -9 mid-delivery.

Both poll the civil-status mock's change feed and push to two agencies' endpoints (slow
ones, so a delivery is under way when the kill comes). Afterwards every event has reached
each subscription, in order of its first arrival, the agency de-duplicating by the stable
event id; a second copy can only be the one in flight when the process died (at-least-once
delivery), and every delivery row ends `delivered`: nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
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

DEATHS = 12


class _Agency(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, int]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        time.sleep(0.3)  # a slow agency: deliveries are in flight when the kill comes
        with self.lock:
            self.received.append((self.path, self.headers["x-hub-delivery"], body["sequence"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _until(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(step)
    return predicate()


def test_two_processes_deliver_every_event_once_per_subscription_through_a_kill(env):  # noqa: F811
    mock_port, ports = free_port(), [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Agency)
    _Agency.received = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}"
    mock = start([sys.executable, "-m", "mocks", "civil-status", "--port", str(mock_port)], env)
    hub_env = env | {
        "HUB_ENABLED_ADAPTERS": '["civil-status"]',
        "HUB_CIVIL_STATUS_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "HUB_WORKER_INTERVAL_S": "0.1",
        "HUB_EVENT_LEASE_S": "3",
        "HUB_WEBHOOK_TIMEOUT_S": "1",
        "HUB_WEBHOOK_INITIAL_BACKOFF_S": "0.2",
    }
    if os.environ.get("HUB_TEST_REDIS_URL"):
        hub_env["HUB_REDIS_URL"] = os.environ["HUB_TEST_REDIS_URL"]
    hubs = [
        start([*HUB, "serve", "--port", str(p), "--log-level", "warning"], hub_env) for p in ports
    ]
    try:
        wait_until_up(mock, f"http://127.0.0.1:{mock_port}/_mock/health")
        for proc, url in zip(hubs, urls, strict=True):
            wait_until_up(proc, f"{url}/health")
        subscriptions = {}
        for name in ("insurance", "police"):
            agency = create_client(
                hub_env, name, "--allow", "civil-status", "--purpose", "social-insurance"
            )
            answer = httpx.post(
                f"{urls[1]}/v1/subscriptions",
                json={
                    "event_type": "civil-status:death-registered",
                    "delivery": "push",
                    "callback_url": f"{hook}/{name}",
                },
                headers={
                    "authorization": f"Bearer {agency['api_key']}",
                    "x-purpose": "social-insurance",
                },
            )
            assert answer.status_code == 201, answer.text
            subscriptions[f"/{name}"] = answer.json()["data"]["id"]
        people = httpx.get(f"http://127.0.0.1:{mock_port}/_mock/records?limit={DEATHS}").json()
        for person in people["persons"][:DEATHS]:
            registered = httpx.post(
                f"http://127.0.0.1:{mock_port}/_mock/events",
                json={"kind": "death", "personal_id": person["personal_id"]},
            )
            assert registered.status_code == 201

        assert _until(lambda: len(_Agency.received) >= 3, timeout=30), "no delivery began"
        os.killpg(hubs[0].pid, signal.SIGKILL)  # mid-delivery: its leases must lapse
        hubs[0].wait()

        def complete() -> bool:
            with _Agency.lock:
                got = list(_Agency.received)
            return all(
                len({eid for p, eid, _ in got if p == path}) == DEATHS for path in subscriptions
            )

        assert _until(complete, timeout=90), "some event never reached a subscription"
        time.sleep(1.0)  # the survivor keeps working: nothing more may come
    finally:
        for proc in hubs:
            stop(proc)
        stop(mock)
        receiver.shutdown()

    for path in subscriptions:
        arrivals = [(eid, seq) for p, eid, seq in _Agency.received if p == path]
        first_seen = list(dict.fromkeys(arrivals))
        assert len(first_seen) == DEATHS
        assert [seq for _, seq in first_seen] == sorted(seq for _, seq in first_seen), "FIFO"
        repeats = len(arrivals) - DEATHS
        assert repeats <= 1, "only the delivery in flight at the kill may come twice"
    engine = make_engine(env["HUB_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            states = conn.execute(
                text("SELECT status, COUNT(*) FROM event_deliveries GROUP BY status")
            ).all()
            stored = conn.execute(text("SELECT COUNT(*) FROM events")).scalar()
    finally:
        engine.dispose()
    assert dict(states) == {"delivered": 2 * DEATHS}
    assert stored == DEATHS, "each death stored once, though both processes read the feed"
