"""The hub and the mock as real servers on loopback, started the way a user starts them.

These exercise what in-process tests cannot: the CLI, uvicorn, the aiohttp upstream pool,
real sockets and timeouts, and `hub up` stopping everything on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mocks import mock_ports
from mocks.population.app import ENDPOINT_PATH
from tests.conftest import database_url, reset_database
from tests.payment_contract import signed_init

pytestmark = pytest.mark.server

HUB = [sys.executable, "-m", "hub.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports: a free port 0 gave, whose next ones are
    free too."""
    for _ in range(100):
        first = free_port()
        if first + count > 65536:
            continue
        try:
            with contextlib.ExitStack() as held:
                for port in range(first + 1, first + count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError(f"no {count} free ports in a row")


#: What `hub up` takes when given no ports: the hub's 8000 and the mocks' 8101-8105.
DEFAULT_UP_PORTS = (8000, 8101, 8102, 8103, 8104, 8105)


@pytest.fixture
def default_ports_taken() -> Iterator[None]:
    """The default ports held, as a `hub up` beside the tests holds them: a server or a
    push that still reached for one would fail. (Those something else holds already stay
    held by it.)"""
    with contextlib.ExitStack() as held:
        for port in DEFAULT_UP_PORTS:
            sock = held.enter_context(socket.socket())
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
        yield


def wait_until_up(proc: subprocess.Popen, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{proc.args} exited with {proc.returncode}: {out[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {timeout} s")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def create_client(env: dict[str, str], name: str, *options: str) -> dict[str, str]:
    """`hub clients create NAME OPTIONS…`, as a user runs it: the id and key it prints."""
    created = subprocess.run(
        [*HUB, "clients", "create", name, *options], env=env, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)  # type: ignore[no-any-return]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = database_url(tmp_path)
    reset_database(url)
    return {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "server-test-secret",
        "HUB_UPSTREAM_TIMEOUT_S": "1",
        "HUB_RETRY_DEADLINE_S": "3",
    }


@pytest.fixture
def servers(env: dict[str, str]) -> Iterator[dict[str, str]]:
    mock_port, hub_port = free_port(), free_port()
    env = env | {
        "HUB_POPULATION_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "HUB_ENABLED_ADAPTERS": '["population"]',
    }
    mock = start([sys.executable, "-m", "mocks", "population", "--port", str(mock_port)], env)
    hub = start([*HUB, "serve", "--port", str(hub_port), "--log-level", "warning"], env)
    try:
        wait_until_up(mock, f"http://127.0.0.1:{mock_port}/_mock/health")
        wait_until_up(hub, f"http://127.0.0.1:{hub_port}/health")
        issued = create_client(
            env, "agency-app", "--allow", "population", "--purpose", "hs-1.004227"
        )
        yield {
            "hub": f"http://127.0.0.1:{hub_port}",
            "mock": f"http://127.0.0.1:{mock_port}",
            **issued,
        }
    finally:
        stop(hub)
        stop(mock)


def test_clients_create_prints_the_key_once_and_stores_only_its_hash(servers, env):
    assert servers["client_id"].startswith("cl_") and servers["api_key"].startswith("hub_")
    from sqlalchemy import text

    from hub.core.db import make_engine

    engine = make_engine(env["HUB_DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
    engine.dispose()
    assert stored and servers["api_key"] not in stored
    again = subprocess.run(
        [*HUB, "clients", "create", "agency-app", "--allow", "population"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "exists already" in again.stderr


def test_a_real_call_through_the_real_servers(servers):
    record = httpx.get(f"{servers['mock']}/_mock/records?limit=1").json()["records"][0]
    headers = {
        "authorization": f"Bearer {servers['api_key']}",
        "x-purpose": "hs-1.004227",
        "x-request-id": "srv-1",
    }
    response = httpx.get(f"{servers['hub']}/v1/citizens/{record['personal_id']}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "srv-1"
    data = response.json()["data"]
    assert (data["full_name"], data["date_of_birth"]) == (
        record["full_name"],
        record["date_of_birth"],
    )

    assert httpx.get(f"{servers['hub']}/v1/citizens/{record['personal_id']}").status_code == 401
    bad = httpx.get(f"{servers['hub']}/v1/citizens/999999999999", headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_PERSONAL_ID"
    ready = httpx.get(f"{servers['hub']}/ready").json()
    assert ready["services"]["population"]["ok"] is True


def test_upstream_faults_over_real_sockets(servers):
    record = httpx.get(f"{servers['mock']}/_mock/records?limit=1").json()["records"][0]
    url = f"{servers['hub']}/v1/citizens/{record['personal_id']}"
    headers = {"authorization": f"Bearer {servers['api_key']}", "x-purpose": "hs-1.004227"}

    httpx.put(f"{servers['mock']}/_mock/faults", json={"fault": "latency", "ms": 1500})
    started = time.monotonic()
    slow = httpx.get(url, headers=headers, timeout=10)
    assert slow.status_code == 504 and slow.json()["code"] == "UPSTREAM_TIMEOUT"
    assert time.monotonic() - started < 5  # bounded by the retry deadline

    httpx.put(f"{servers['mock']}/_mock/faults", json={"fault": "malformed"})
    assert httpx.get(url, headers=headers).json()["code"] == "UPSTREAM_BAD_RESPONSE"

    # the connection drops part-way through the answer: a real socket closed by uvicorn
    # (closed, or reset when unread bytes remain: either way no complete answer)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.post(
            servers["mock"] + ENDPOINT_PATH, content=b"<x/>", headers={"x-mock-fault": "reset"}
        )
    httpx.put(f"{servers['mock']}/_mock/faults", json={"fault": "reset"})
    dropped = httpx.get(url, headers=headers)
    assert dropped.status_code == 502 and dropped.json()["code"] == "UPSTREAM_ERROR"

    httpx.delete(f"{servers['mock']}/_mock/faults")
    assert httpx.get(url, headers=headers).status_code == 200


def test_upstream_down_is_503(env):
    hub_port = free_port()
    env = env | {
        "HUB_POPULATION_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "HUB_ENABLED_ADAPTERS": '["population"]',
    }
    hub = start([*HUB, "serve", "--port", str(hub_port), "--log-level", "warning"], env)
    try:
        wait_until_up(hub, f"http://127.0.0.1:{hub_port}/health")
        key = create_client(env, "x", "--allow", "*", "--purpose", "p")["api_key"]
        response = httpx.get(
            f"http://127.0.0.1:{hub_port}/v1/citizens/001085012345",
            headers={"authorization": f"Bearer {key}", "x-purpose": "p"},
        )
        assert response.status_code == 503 and response.json()["code"] == "UPSTREAM_UNAVAILABLE"
        assert response.headers["retry-after"]
        ready = httpx.get(f"http://127.0.0.1:{hub_port}/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    finally:
        stop(hub)


def test_hub_up_serves_all_five_and_ctrl_c_stops_all(env, default_ports_taken):
    """`hub up` on real sockets, on free ports while the default ones are taken: every
    service answers through the hub, the judicial mock pushes its certificate to the hub
    over HTTP, and Ctrl-C stops everything."""
    hub_port, mock_base = free_port(), free_ports_in_a_row(5)
    ports = mock_ports(mock_base)
    mock_urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    up_ports = (hub_port, *ports.values())
    proc = start(
        [*HUB, "up", "--port", str(hub_port), "--mock-ports", str(mock_base)],
        env | {"HUB_JOB_POLL_INITIAL_S": "60"},
    )
    try:
        wait_until_up(proc, f"http://127.0.0.1:{hub_port}/health", timeout=60)
        for port in up_ports[1:]:
            wait_until_up(proc, f"http://127.0.0.1:{port}/_mock/health")
        hub = f"http://127.0.0.1:{hub_port}"
        ready = httpx.get(f"{hub}/ready", timeout=10).json()
        assert ready["status"] == "ready", ready
        assert set(ready["services"]) == {
            "population",
            "civil-status",
            "judicial-records",
            "business-registration",
            "payment",
        }
        key = _printed_key(proc)
        headers = {"authorization": f"Bearer {key}", "x-purpose": "demo"}
        records = "/_mock/records?limit=1"
        applicant = httpx.get(mock_urls["judicial-records"] + records).json()["records"][0]
        assert applicant.pop("expected") == "clean"
        pid = applicant["personal_id"]
        assert httpx.get(f"{hub}/v1/citizens/{pid}", headers=headers).status_code == 200
        profile = httpx.get(f"{hub}/v1/citizens/{pid}/profile", headers=headers, timeout=10)
        assert {
            k: v["status"] for k, v in profile.json()["data"].items() if k != "personal_id"
        } == {"citizen": "ok", "civil_status": "ok", "enterprises": "ok"}
        submitted = httpx.post(
            f"{hub}/v1/judicial-records/requests",
            json={**applicant, "certificate_type": 1, "purpose_code": "01"},
            headers=headers,
        )
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["data"]["id"]
        deadline = time.monotonic() + 20  # the mock decides in 3 s; polling is 60 s away
        while time.monotonic() < deadline:
            state = httpx.get(f"{hub}/v1/judicial-records/requests/{job}", headers=headers).json()
            if state["data"]["final"]:
                break
            time.sleep(0.2)
        assert state["data"]["status"] == "issued", state  # pushed by the mock over HTTP
        payer = httpx.get(mock_urls["payment"] + records).json()["records"][0]
        opened = httpx.post(
            f"{hub}/v1/payments",
            json={
                "amount": payer["amount"],
                "description": payer["procedure_name"],
                "procedure_code": payer["procedure_code"],
                "dossier_id": "HS-UP-1",
                "payer_name": payer["payer_name"],
                "payer_personal_id": payer["payer_personal_id"],
            },
            headers=headers | {"idempotency-key": "up-1"},
        )
        assert opened.status_code == 201, opened.text
        payment = opened.json()["data"]
        assert payment["pay_url"].startswith(mock_urls["payment"] + "/pay/")
        paid = httpx.post(payment["pay_url"], data={"outcome": "success"})  # the payer's click
        assert paid.status_code in (200, 303), paid.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = httpx.get(f"{hub}/v1/payments/{payment['id']}", headers=headers).json()
            if state["data"]["status"] != "pending":
                break
            time.sleep(0.2)
        assert state["data"]["status"] == "paid", state  # the IPN reached the hub over HTTP
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        proc.communicate(timeout=20)
    finally:
        stop(proc)
    assert key.startswith("hub_")
    for port in up_ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, (
                f"port {port} still served after Ctrl-C"
            )


def _printed_key(proc: subprocess.Popen) -> str:
    """Read `hub up`'s output until the demo key line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "export HUB_KEY=" in line:
            return line.split("export HUB_KEY=", 1)[1].strip()
    raise AssertionError("`hub up` printed no key")


def test_hub_mocks_serve_takes_start_up_faults(env, default_ports_taken):
    port = free_port()  # population is the first mock: on the base port itself
    serve = [*HUB, "mocks", "serve", "population", "--base-port", str(port)]
    proc = start([*serve, "--fault", "error=1.0"], env)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/_mock/health")
        faults = httpx.get(f"http://127.0.0.1:{port}/_mock/faults").json()
        assert faults["error_rate"] == 1.0
        answer = httpx.post(f"http://127.0.0.1:{port}/dancu/ws", content=b"<x/>")
        assert answer.status_code == 500 and b"LOI_HE_THONG" in answer.content
    finally:
        stop(proc)


@pytest.mark.parametrize("stop_by", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_judicial_request_pending_across_a_hub_restart_finishes(env, stop_by):
    """The hub stops (gracefully, or killed) while a certificate request is pending
    upstream; the certificate is decided while no hub runs, so upstream's push fails and it
    gives up. A new hub process on the same database resumes the job by polling, and the
    agency sees it issued."""
    mock_port, hub_port = free_port(), free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    mock_env = env | {
        "MOCKS_APP": "judicial-records",
        "MOCKS_OPTIONS": json.dumps(
            {
                "processing_s": 2.0,
                "push_url": f"{hub_url}/v1/judicial-records/results",
                "push_attempts": 2,
                "push_backoff_s": 0.2,
            }
        ),
    }
    mock = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "mocks:app_from_env",
            "--port",
            str(mock_port),
            "--log-level",
            "warning",
        ],
        mock_env,
    )
    hub_env = env | {
        "HUB_ENABLED_ADAPTERS": '["judicial-records"]',
        "HUB_JUDICIAL_RECORDS_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "HUB_JOB_POLL_INITIAL_S": "1",
        "HUB_WORKER_INTERVAL_S": "0.2",
    }
    serve = [*HUB, "serve", "--port", str(hub_port), "--log-level", "warning"]
    hub = start(serve, hub_env)
    try:
        wait_until_up(mock, f"http://127.0.0.1:{mock_port}/_mock/health")
        wait_until_up(hub, f"{hub_url}/health")
        issued = create_client(
            hub_env, "justice-office", "--allow", "judicial-records", "--purpose", "lltp"
        )
        headers = {"authorization": f"Bearer {issued['api_key']}", "x-purpose": "lltp"}
        applicant = httpx.get(f"http://127.0.0.1:{mock_port}/_mock/records?limit=1").json()
        applicant = applicant["records"][0]
        assert applicant.pop("expected") == "clean"
        submitted = httpx.post(
            f"{hub_url}/v1/judicial-records/requests",
            json={**applicant, "certificate_type": 1, "purpose_code": "01"},
            headers=headers,
        )
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["data"]["id"]
        os.kill(hub.pid, stop_by)  # before upstream decides: nothing listens for the push
        assert hub.wait(timeout=60) == (0 if stop_by == signal.SIGTERM else -signal.SIGKILL)

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            (upstream,) = httpx.get(f"http://127.0.0.1:{mock_port}/_mock/requests").json()[
                "requests"
            ]
            if upstream["push"]["state"] not in ("pending", "sending"):
                break
            time.sleep(0.2)
        assert upstream["status"] == "issued" and upstream["push"]["state"] == "failed", upstream

        hub = start(serve, hub_env)
        wait_until_up(hub, f"{hub_url}/health")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = httpx.get(f"{hub_url}/v1/judicial-records/requests/{job}", headers=headers)
            if state.json()["data"]["final"]:
                break
            time.sleep(0.2)
        data = state.json()["data"]
        assert data["status"] == "issued", data
        assert data["certificate"]["number"]
    finally:
        stop(hub)
        stop(mock)


def test_hub_payments_reconcile_reports_differences_with_exit_1(env):
    import datetime as dt

    port = free_port()
    mock = start([sys.executable, "-m", "mocks", "payment", "--port", str(port)], env)
    cli_env = env | {
        "HUB_PAYMENT_BASE_URL": f"http://127.0.0.1:{port}",
        "HUB_ENABLED_ADAPTERS": '["payment"]',
    }
    reconcile = [*HUB, "payments", "reconcile", "--json", "--date"]
    try:
        wait_until_up(mock, f"http://127.0.0.1:{port}/_mock/health")
        init = signed_init("pay_not_the_hubs", 50000, "20261130101500")
        answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/thanhtoan", json=init)
        assert answer.json()["MaLoi"] == "00", answer.text
        quiet = subprocess.run(
            [*reconcile, "2026-11-29"], env=cli_env, capture_output=True, text=True
        )
        assert quiet.returncode == 0, quiet.stderr
        assert json.loads(quiet.stdout)["clean"] is True
        found = subprocess.run(
            [*reconcile, "2026-11-30"], env=cli_env, capture_output=True, text=True
        )
        assert found.returncode == 1, found.stderr
        report = json.loads(found.stdout)
        assert report["upstream_count"] == 1 and report["hub_count"] == 0
        assert [e["reference"] for e in report["unknown_to_hub"]] == ["pay_not_the_hubs"]
        text = subprocess.run(
            [*HUB, "payments", "reconcile", "--date", "2026-11-30"],
            env=cli_env,
            capture_output=True,
            text=True,
        )
        assert text.returncode == 1 and "DIFFERENCES FOUND" in text.stdout
    finally:
        stop(mock)
    down = subprocess.run(
        [*reconcile, dt.date.today().isoformat()], env=cli_env, capture_output=True, text=True
    )
    assert down.returncode == 1 and "UPSTREAM_UNAVAILABLE" in down.stderr, down.stderr
    assert "Traceback" not in down.stderr


def test_hub_up_passes_the_event_rate_to_the_mocks(env, default_ports_taken):
    """`hub up --events-per-minute N`: the civil-status and business-registration mocks make
    events on their own at that rate, and the hub reads them from the change feeds into
    its event store (its published counter moves) without anyone calling `/_mock/events`."""
    hub_port, mock_base = free_port(), free_ports_in_a_row(5)
    up = [*HUB, "up", "--port", str(hub_port), "--mock-ports", str(mock_base)]
    proc = start([*up, "--events-per-minute", "1200"], env)
    try:
        hub = f"http://127.0.0.1:{hub_port}"
        wait_until_up(proc, f"{hub}/health", timeout=60)
        published: set[str] = set()
        deadline = time.monotonic() + 30  # 20 a second on average: the first within moments
        while time.monotonic() < deadline and not {"civil-status", "business-registration"} <= (
            published
        ):
            metrics = httpx.get(f"{hub}/metrics", timeout=5).text
            published = {
                line.split('type="', 1)[1].split(":", 1)[0]
                for line in metrics.splitlines()
                if line.startswith("hub_events_published_total{") and not line.endswith(" 0.0")
            }
            time.sleep(0.2)
        assert {"civil-status", "business-registration"} <= published, published
    finally:
        stop(proc)
