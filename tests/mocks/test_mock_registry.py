"""The mock registry, create_mock_app, serve_mocks and the `python -m mocks` CLI."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

import mocks
from mocks import MOCKS, MockSpec, create_mock_app, mock_names, mock_ports
from mocks.__main__ import main as cli_main
from mocks.data import load_citizens
from mocks.faults import FaultConfig
from mocks.population.client_auth import PopulationAuth
from mocks.serve import hub_options, serve_mocks
from tests.test_servers import free_port, free_ports_in_a_row

from .conftest import lookup_body

ROOT = Path(__file__).resolve().parents[2]


def test_registry_names_ports_and_factories() -> None:
    assert mock_names() == [
        "population",
        "civil-status",
        "judicial-records",
        "business-registration",
        "payment",
    ]
    assert [MOCKS[n].default_port for n in mock_names()] == [8101, 8102, 8103, 8104, 8105]
    assert MOCKS["population"].factory == "mocks.population.app:create_app"
    for name in mock_names():
        assert MOCKS[name].factory == f"mocks.{name.replace('-', '_')}.app:create_app"
    assert isinstance(MOCKS["population"], MockSpec)
    assert set(mocks.__all__) == {
        "MOCKS",
        "MockSpec",
        "app_from_env",
        "create_mock_app",
        "mock_names",
        "mock_ports",
    }


def test_mock_ports_are_the_defaults_or_a_row_from_a_base() -> None:
    assert list(mock_ports().values()) == [8101, 8102, 8103, 8104, 8105]
    assert mock_ports(18101) == {
        "population": 18101,
        "civil-status": 18102,
        "judicial-records": 18103,
        "business-registration": 18104,
        "payment": 18105,
    }


def test_hub_options_point_the_pushes_and_the_ipns_at_the_hub() -> None:
    from mocks.judicial_records.push import DEFAULT_PUSH_URL
    from mocks.payment.ipn import DEFAULT_IPN_URL

    assert hub_options("http://127.0.0.1:8000") == {
        "push_url": DEFAULT_PUSH_URL,
        "ipn_url": DEFAULT_IPN_URL,
    }
    assert hub_options("http://127.0.0.1:18000/") == {
        "push_url": "http://127.0.0.1:18000/v1/judicial-records/results",
        "ipn_url": "http://127.0.0.1:18000/v1/payments/ipn",
    }


def test_importing_mocks_is_cheap() -> None:
    code = "import mocks, sys; print(sorted(m for m in ('starlette', 'pydantic', 'lxml', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def unbuilt(monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered mock with no implementation (as each was before it was written)."""
    monkeypatch.setitem(MOCKS, "unbuilt", MockSpec("unbuilt", 8199, None, "not written yet"))
    return "unbuilt"


def test_create_mock_app(unbuilt: str) -> None:
    app = create_mock_app("population", fault_options=["latency=5"])
    assert isinstance(app, Starlette)
    assert app.state.faults.startup == FaultConfig(latency_ms=5)
    with pytest.raises(LookupError, match="not implemented"):
        create_mock_app(unbuilt)
    with pytest.raises(LookupError, match="unknown mock"):
        create_mock_app("weather")
    with pytest.raises(TypeError, match="colour"):
        create_mock_app("population", colour="blue")


def test_app_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKS_APP", "population")
    monkeypatch.setenv("MOCKS_OPTIONS", '{"user": "x", "fault_options": ["xxe"]}')
    app = mocks.app_from_env()
    assert app.state.population.user == b"x"
    assert app.state.faults.startup == FaultConfig(xxe=True)


@pytest.mark.parametrize(
    "argv",
    [
        ["weather"],
        ["--port", "9000"],
        ["population", "payment", "--port", "9000"],
        ["--workers", "2"],
        ["population", "--fault", "meltdown"],
        ["population", "--port", "9000", "--base-port", "9100"],
    ],
)
def test_cli_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main(argv)
    assert caught.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_workers_get_their_port_and_the_hub_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--workers` hands the options to worker processes: the payment mock's own port from
    --base-port, and the IPN URL from --hub-url (not judicial-records' push URL)."""
    import uvicorn

    ran: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(kw))
    for variable in ("MOCKS_APP", "MOCKS_OPTIONS"):  # restored after the test
        monkeypatch.setenv(variable, "")
    hub = "http://127.0.0.1:18000"
    cli_main(["payment", "--workers", "2", "--base-port", "18101", "--hub-url", hub])
    assert (ran["port"], ran["workers"]) == (18105, 2)
    assert json.loads(os.environ["MOCKS_OPTIONS"]) == {
        "public_url": "http://127.0.0.1:18105",
        "ipn_url": f"{hub}/v1/payments/ipn",
        "fault_options": [],
    }


def test_cli_lists_mocks(capsys: pytest.CaptureFixture[str], unbuilt: str) -> None:
    cli_main(["--list"])
    out = capsys.readouterr().out
    assert "population" in out and "8101" in out and "8105" in out and "not implemented" in out


async def test_serve_skips_unimplemented(capsys: pytest.CaptureFixture[str], unbuilt: str) -> None:
    await asyncio.wait_for(serve_mocks([unbuilt]), 5)
    assert "unbuilt is not implemented yet" in capsys.readouterr().err


@pytest.mark.server
async def test_serve_mocks_on_loopback_and_stop_on_cancel() -> None:
    port = free_ports_in_a_row(len(MOCKS))  # all of them: not on the defaults `hub up` holds
    task = asyncio.create_task(
        serve_mocks(
            None,
            ports=mock_ports(port),
            fault_options=["latency=1"],
            options={"user": "lgsp", "secret": "s3cret"},
        )
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    response = await client.get("/_mock/health")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert response.json() == {"status": "ok"}
            assert (await client.get("/_mock/faults")).json()["latency_ms"] == 1
            wsdl = await client.get("/dancu/ws?wsdl")
            assert f'location="http://127.0.0.1:{port}/dancu/ws"' in wsdl.text
            # A real socket: the signed URL carries the port, the options reached the mock.
            pid = load_citizens()[0].personal_id
            auth = PopulationAuth("lgsp", "s3cret")
            answer = await client.post("/dancu/ws", content=lookup_body(pid), auth=auth)
            assert answer.status_code == 200 and pid in answer.text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))


@pytest.mark.server
async def test_serve_mocks_reports_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(RuntimeError, match="could not start"):
            await asyncio.wait_for(serve_mocks(["population"], ports={"population": port}), 10)


@pytest.mark.server
async def test_a_mock_on_another_port_links_to_that_port() -> None:
    """The payment mock's pay page URL names the port it is really served on."""
    import datetime as dt

    from tests.payment_contract import signed_init

    port = free_port()
    task = asyncio.create_task(serve_mocks(["payment"], ports={"payment": port}))
    message = signed_init("r-1", 1000, dt.datetime.now().strftime("%Y%m%d%H%M%S"))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    answer = await client.post("/api/v1/thanhtoan", json=message)
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert answer.json()["MaLoi"] == "00", answer.text
            assert answer.json()["UrlThanhToan"].startswith(f"http://127.0.0.1:{port}/pay/")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
