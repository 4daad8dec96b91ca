"""`mocks.faults.with_faults`: the public fault switch an integrator's JSON mock gets from one
import: `X-Mock-Fault`, `GET|PUT|DELETE /_mock/faults`, start-up faults, and each fault
rendered for a REST upstream, while the mock's own routes and lifespan work as before."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.testing import asgi_lifespan
from mocks.faults import OVERSIZED_BYTES, parse_fault_options, with_faults


def mock(**kwargs):
    started = []

    async def record(request):
        return JSONResponse({"status": "OK", "data": {"MaSo": request.path_params["id"]}})

    async def listing(request):
        return JSONResponse({"records": []})

    def lifespan(app):
        import contextlib

        @contextlib.asynccontextmanager
        async def run(app):
            started.append(True)
            yield

        return run(app)

    app = Starlette(
        routes=[
            Route("/api/records/{id}", record),
            Route("/_mock/records", listing),
        ],
        lifespan=lifespan,
    )
    return with_faults(app, **kwargs), started


async def client_of(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock")


async def test_header_runtime_and_startup_faults():
    app, started = mock()
    async with asgi_lifespan(app):
        assert started == [True]  # the mock's own lifespan runs through the switch
        async with await client_of(app) as http:
            fine = await http.get("/api/records/1")
            assert fine.json() == {"status": "OK", "data": {"MaSo": "1"}}
            assert (
                await http.get("/api/records/1", headers={"x-mock-fault": "http-503"})
            ).status_code == 503
            assert (
                await http.get("/api/records/1", headers={"x-mock-fault": "error"})
            ).status_code == 500
            bad = await http.get("/api/records/1", headers={"x-mock-fault": "nonsense"})
            assert bad.status_code == 400 and "X-Mock-Fault" in bad.json()["error"]
            put = await http.put("/_mock/faults", json={"fault": "http-503"})
            assert put.status_code == 200 and put.json()["http_503"] is True
            assert (await http.get("/api/records/1")).status_code == 503
            assert (await http.get("/_mock/records")).status_code == 200  # mock-only routes
            assert (await http.delete("/_mock/faults")).json()["http_503"] is False
            assert (await http.get("/api/records/1")).status_code == 200
    down, _ = mock(faults=parse_fault_options(["error"]))
    async with await client_of(down) as http:
        assert (await http.get("/api/records/1")).status_code == 500
        assert (await http.delete("/_mock/faults")).status_code == 200
        assert (await http.get("/api/records/1")).status_code == 500  # start-up faults stay


async def test_malformed_oversized_and_reset():
    app, _ = mock()
    async with await client_of(app) as http:
        cut = await http.get("/api/records/1", headers={"x-mock-fault": "malformed"})
        with pytest.raises(ValueError):
            json.loads(cut.content)
        big = await http.get("/api/records/1", headers={"x-mock-fault": "oversized"})
        assert len(big.content) > OVERSIZED_BYTES and json.loads(big.content)["status"] == "OK"
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/api/records/1", headers={"x-mock-fault": "reset"})


async def test_a_custom_error_answer():
    app, _ = mock(error=lambda: JSONResponse({"status": "LOI_HE_THONG"}, 502))
    async with await client_of(app) as http:
        answer = await http.get("/api/records/1", headers={"x-mock-fault": "error"})
        assert (answer.status_code, answer.json()) == (502, {"status": "LOI_HE_THONG"})
