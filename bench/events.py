"""Events end to end, measured: the civil-status mock registers deaths, the hub reads its
change feed and pushes each to every subscriber; latency from registration to an agency's
receipt (p50/p99) and the sustained deliveries a second, with 50 subscriptions.

Starts the civil-status mock and the hub as real servers (SQLite unless --database-url),
50 agencies each with a PUSH subscription to `civil-status:death-registered` pointing at
one in-process receiver, then registers `--events` deaths at `--rate` a second through the
mock's `POST /_mock/events` and waits for every delivery.

    python bench/events.py                                   # 50 subscriptions, 200 deaths
    python bench/events.py --subscriptions 10 --events 50 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
from common import HUB, PY, ROOT, free_port, pct, process  # bench/common.py

EVENT_TYPE = "civil-status:death-registered"


class Receiver(BaseHTTPRequestHandler):
    """Every agency's endpoint: notes when each (subscription, event) first arrived."""

    arrivals: ClassVar[dict[tuple[str, str], float]] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        now = time.time()
        with self.lock:
            self.arrivals.setdefault((body["subscription"], body["data"]["personal_id"]), now)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def subscribe(hub: str, env: dict[str, str], count: int, callback: str) -> list[str]:
    """`count` agencies, each subscribed by PUSH; their subscription ids."""
    from hub.core.db import make_engine
    from hub.security.auth import create_client

    engine = make_engine(env["HUB_DATABASE_URL"])
    secret = env["HUB_SECRET_KEY"].encode()
    ids = []
    try:
        for i in range(count):
            issued = create_client(
                engine,
                secret,
                name=f"agency-{i:03d}-{os.getpid()}",
                allow=["civil-status"],
                purposes=["bench"],
            )
            answer = httpx.post(
                f"{hub}/v1/subscriptions",
                json={"event_type": EVENT_TYPE, "delivery": "push", "callback_url": callback},
                headers={"authorization": f"Bearer {issued.api_key}", "x-purpose": "bench"},
                timeout=30,
            )
            if answer.status_code != 201:
                raise SystemExit(f"subscribe: HTTP {answer.status_code} {answer.text[:300]}")
            ids.append(answer.json()["data"]["id"])
    finally:
        engine.dispose()
    return ids


def register(mock: str, people: list[str], rate: float) -> dict[str, float]:
    """Register a death of each at `rate` a second; when each was registered."""
    registered: dict[str, float] = {}
    with httpx.Client(base_url=mock, timeout=30) as http:
        started = time.monotonic()
        for i, person in enumerate(people):
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            answer = http.post("/_mock/events", json={"kind": "death", "personal_id": person})
            if answer.status_code != 201:
                raise SystemExit(f"register: HTTP {answer.status_code} {answer.text[:300]}")
            registered[person] = time.time()
    return registered


def run(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    mock_port, hub_port = free_port(), free_port()
    mock, hub = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{hub_port}"
    env = {
        **os.environ,
        "HUB_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.db",
        "HUB_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "HUB_ENABLED_ADAPTERS": '["civil-status"]',
        "HUB_CIVIL_STATUS_BASE_URL": mock,
        "HUB_WORKER_INTERVAL_S": "0.05",
    }
    upgrade = subprocess.run([*HUB, "db", "upgrade"], env=env, cwd=ROOT, capture_output=True)
    if upgrade.returncode != 0:
        raise SystemExit(f"hub db upgrade failed: {upgrade.stderr[-2000:]!r}")
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/events"
    Receiver.arrivals = {}
    with contextlib.ExitStack() as stack:
        stack.callback(receiver.shutdown)
        stack.enter_context(
            process(
                [PY, "-m", "mocks", "civil-status", "--port", str(mock_port)],
                env,
                f"{mock}/_mock/health",
            )
        )
        serve = [*HUB, "serve", "--port", str(hub_port), "--log-level", "warning"]
        stack.enter_context(process(serve, env, f"{hub}/health"))
        subscriptions = subscribe(hub, env, args.subscriptions, callback)
        people = [
            p["personal_id"]
            for p in httpx.get(f"{mock}/_mock/records?limit={args.events}").json()["persons"]
        ][: args.events]
        registered = register(mock, people, args.rate)
        expected = len(people) * len(subscriptions)
        deadline = time.monotonic() + args.timeout
        while len(Receiver.arrivals) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    arrivals = dict(Receiver.arrivals)
    latencies = [at - registered[person] for (_, person), at in arrivals.items()]
    span = max(arrivals.values(), default=0) - min(registered.values(), default=0)
    return {
        "subscriptions": len(subscriptions),
        "events": len(people),
        "expected_deliveries": expected,
        "deliveries": len(arrivals),
        "latency_ms": {"p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99)},
        "deliveries_per_s": len(arrivals) / span if span > 0 else 0.0,
        "events_per_s": len(people) / span if span > 0 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="deaths registered a second")
    parser.add_argument("--timeout", type=float, default=120.0, help="wait for deliveries")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, tmp)
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"events: {report['events']} deaths x {report['subscriptions']} PUSH subscriptions, "
        f"{report['deliveries']}/{report['expected_deliveries']} delivered\n"
        f"  latency registration -> agency: p50 {report['latency_ms']['p50']:.0f} ms, "
        f"p99 {report['latency_ms']['p99']:.0f} ms\n"
        f"  sustained: {report['deliveries_per_s']:.0f} deliveries/s "
        f"({report['events_per_s']:.1f} events/s fanned out to every subscriber)"
    )
    if report["deliveries"] < report["expected_deliveries"]:
        raise SystemExit("some deliveries never arrived")


if __name__ == "__main__":
    main()
