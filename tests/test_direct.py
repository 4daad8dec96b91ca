"""The direct path (`hub.api.direct`): what it serves, and that it answers as FastAPI would."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from hub.api import problems
from hub.api.direct import DirectRoutes, HubApp
from hub.api.middleware import RequestIdMiddleware
from hub.app import create_app
from hub.core.config import Settings
from hub.core.logs import JsonFormatter, TextFormatter
from mocks.data import load_citizens
from tests.conftest import RunningHub, running_hub

PID = load_citizens()[0].personal_id
LEAK = f"upstream said: {PID} unknown"  # an exception message quoting a personal ID
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "cache-control")


@contextlib.asynccontextmanager
async def _hub(settings: Settings, population_mock: Any) -> AsyncIterator[RunningHub]:
    settings.direct_path = True  # whatever the pass: these tests compare the two paths
    settings.enabled_adapters = ["population"]
    settings.adapters = {"population": {"base_url": "http://population.mock"}}
    transports = {"population": httpx.ASGITransport(app=population_mock)}
    async with running_hub(settings, transports=transports) as running:
        yield running


@pytest.fixture
async def hub(settings: Settings, population_mock: Any) -> AsyncIterator[RunningHub]:
    """The hub with only the population adapter, wired to its in-process mock."""
    async with _hub(settings, population_mock) as running:
        yield running


# -- the routing table ---------------------------------------------------------------------------


async def _plain(request: Request) -> Response:
    return Response(b"plain")


async def _other(request: Request) -> Response:
    return Response(b"other")


async def _typed(x: int) -> Response:
    return Response(b"typed")


def _routes() -> DirectRoutes:
    router = APIRouter()
    router.add_api_route("/things/{name}", _plain, methods=["GET"])
    router.add_api_route("/things/special", _other, methods=["GET"])  # both match this path
    router.add_api_route("/items/{name}", _plain, methods=["GET"], dependencies=[Depends(_plain)])
    router.add_api_route("/typed", _typed, methods=["GET"])
    return DirectRoutes(router.routes)


def test_find_serves_an_endpoint_with_its_path_params(settings: Settings) -> None:
    from adapters.population import PopulationAdapter

    settings.direct_path = True
    app = create_app(settings, adapters=[PopulationAdapter])
    assert isinstance(app, HubApp) and app.direct is not None
    direct = app.direct
    found = direct.find("GET", f"/v1/citizens/{PID}")
    assert found is not None and found[1] == {"personal_id": PID}
    assert found[0].__module__ == "hub.api.routes.resources"  # population's declared route
    assert "^/v1/citizens/(?P<personal_id>[^/]+)$" in direct.served
    for method in ("HEAD", "OPTIONS"):  # FastAPI's own handling
        assert direct.find(method, f"/v1/citizens/{PID}") is None
    assert direct.find("GET", f"/v1/citizens/{PID}/") is None  # FastAPI redirects it
    assert direct.find("GET", "/v1/nowhere") is None
    assert direct.find("DELETE", f"/v1/citizens/{PID}") is None  # FastAPI's 405


def test_find_leaves_ambiguous_paths_and_other_endpoints_to_fastapi() -> None:
    direct = _routes()
    assert direct.find("GET", "/things/a") == (_plain, {"name": "a"})
    assert direct.find("GET", "/things/special") is None  # two routes match: FastAPI decides
    assert direct.find("GET", "/items/a") is None  # a dependency
    assert direct.find("GET", "/typed") is None  # a parameter that is not the Request
    assert direct.served == ["^/things/(?P<name>[^/]+)$", "^/things/special$"]


# -- the same answers as FastAPI's ---------------------------------------------------------------


async def _not_fastapi(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("FastAPI's middleware stack served a request meant for the direct path")


async def _both(app: Any, http: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
    """The answer of the direct path, then FastAPI's to the same request."""
    direct, stack = app.direct, app.middleware_stack
    assert direct is not None and direct.find(method, path) is not None, "not served directly"
    app.middleware_stack = _not_fastapi
    try:
        first = await http.request(method, path, **kw)
    finally:
        app.middleware_stack = stack
    app.direct = None
    try:
        second = await http.request(method, path, **kw)
    finally:
        app.direct = direct
    return first, second


def _comparable(response: httpx.Response, echoed: bool) -> tuple[Any, ...]:
    body = response.json()
    meta = body.get("meta", body)  # the envelope's meta, or the problem itself
    assert meta["request_id"] == response.headers["x-request-id"]
    meta.pop("duration_ms", None)
    if not echoed:
        assert len(meta.pop("request_id")) == 32  # a new one: uuid4's hex
        assert len(response.headers["x-request-id"]) == 32
    for name in SECURITY_HEADERS:
        assert len(response.headers.get_list(name)) == 1, name
    assert response.headers["content-length"] == str(len(response.content))
    skipped = {"content-length"} if echoed else {"content-length", "x-request-id"}
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in skipped)
    return response.status_code, headers, body


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("found", 200),
        ("bad_id", 400),
        ("no_auth", 401),
        ("no_purpose", 400),
        ("good_id", 200),
        ("crlf_id", 200),
        ("long_id", 200),
    ],
)
async def test_the_direct_path_answers_as_fastapi(hub: RunningHub, case: str, status: int) -> None:
    key = hub.client()
    path, headers, rid = f"/v1/citizens/{PID}", hub.headers(key), None
    if case == "bad_id":
        path = "/v1/citizens/12345"
    elif case == "no_auth":
        del headers["authorization"]
    elif case == "no_purpose":
        headers = hub.headers(key, purpose=None)
    elif case == "good_id":
        rid = headers["x-request-id"] = "abc-123.4:5_x"
    elif case == "crlf_id":
        headers["x-request-id"] = "abc\r\nset-cookie: a=b"
    elif case == "long_id":
        headers["x-request-id"] = "a" * 129
    first, second = await _both(hub.app, hub.http, "GET", path, headers=headers)
    assert _comparable(first, rid is not None) == _comparable(second, rid is not None)
    assert first.status_code == status
    if rid is not None:
        assert first.headers["x-request-id"] == rid
    if status != 200:
        assert first.headers["content-type"] == "application/problem+json"
    codes = {
        "bad_id": "INVALID_PERSONAL_ID",
        "no_auth": "UNAUTHENTICATED",
        "no_purpose": "PURPOSE_REQUIRED",
    }
    if case in codes:
        assert first.json()["code"] == codes[case]
    assert "set-cookie" not in first.headers and "set-cookie" not in second.headers


async def test_an_unexpected_error_is_a_500_that_tells_nothing(
    hub: RunningHub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(LEAK)

    monkeypatch.setattr(hub.hub.gateway, "call", broken)
    caplog.set_level(logging.DEBUG)
    headers = hub.headers(hub.client(), **{"x-request-id": "bug-1"})
    # FastAPI's server-error middleware answers, then raises the exception on to the server
    fastapi = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=hub.app, raise_app_exceptions=False),
        base_url="http://hub.test",
    )
    async with fastapi:
        first, second = await _both(hub.app, fastapi, "GET", f"/v1/citizens/{PID}", headers=headers)
    assert first.status_code == 500
    assert first.headers["content-type"] == "application/problem+json"
    assert first.headers["x-request-id"] == "bug-1"
    assert first.json()["code"] == "INTERNAL_ERROR"
    assert _comparable(first, True) == _comparable(second, True)
    assert PID not in first.text and "upstream said" not in first.text
    # logged, with the request id and the exception's type, but not its message
    bugs = [r for r in caplog.records if r.getMessage().startswith("unexpected error")]
    assert len(bugs) == 2 and all(r.request_id == "bug-1" for r in bugs)  # type: ignore[attr-defined]
    for formatter in (JsonFormatter(), TextFormatter()):
        for made in caplog.records:
            line = formatter.format(made)
            assert PID not in line and "upstream said" not in line, line
        assert "RuntimeError" in formatter.format(bugs[0])


async def test_with_cors_on_every_request_goes_through_fastapi(
    settings: Settings, population_mock: Any
) -> None:
    settings.cors_origins = ["https://a.example"]
    async with _hub(settings, population_mock) as hub:
        assert isinstance(hub.app, HubApp) and hub.app.direct is None
        headers = hub.headers(hub.client(), origin="https://a.example")
        response = await hub.http.get(f"/v1/citizens/{PID}", headers=headers)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://a.example"
        assert response.headers["x-content-type-options"] == "nosniff"


# -- HTTPException -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "headers"), [(404, None), (405, {"Allow": "GET"}), (418, None)])
async def test_an_http_exception_is_the_same_problem_either_way(
    status: int, headers: dict[str, str] | None
) -> None:
    async def refuse(request: Request) -> Response:
        raise HTTPException(status, headers=headers)

    app = HubApp()
    problems.install(app)
    app.add_middleware(RequestIdMiddleware)
    app.add_api_route("/things/{name}", refuse, methods=["GET"])
    app.serve_directly(DirectRoutes(app.routes))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        first, second = await _both(app, http, "GET", "/things/a", headers={"x-request-id": "r-1"})
    assert _comparable(first, True) == _comparable(second, True)
    assert first.status_code == status
    assert first.headers["content-type"] == "application/problem+json"
    assert first.headers.get("allow") == (headers or {}).get("Allow")


# A Mount, or a Route without methods (an ASGI app as endpoint), matches every method: it
# counts as a second match, so GET /things/a is FastAPI's to answer (from the mount).
async def test_a_mount_that_also_matches_leaves_the_path_to_fastapi() -> None:
    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        await Response(b"mounted")(scope, receive, send)

    async def route(request: Request) -> Response:
        return Response(b"route")

    app = HubApp()
    app.mount("/things", mounted)
    app.add_api_route("/things/{name}", route, methods=["GET"])
    app.serve_directly(DirectRoutes(app.routes))
    assert app.direct.find("GET", "/things/a") is None


async def test_middleware_added_after_the_app_was_built_turns_the_direct_path_off() -> None:
    """A middleware (or handler, or route) added later would not wrap the endpoints served
    directly: the direct path steps aside and FastAPI serves everything."""

    async def plain(request: Request) -> Response:
        return Response(b"plain")

    class Stamp:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def stamped(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"x-stamp", b"1")]
                await send(message)

            await self.app(scope, receive, stamped)

    app = HubApp()
    app.add_api_route("/things/{name}", plain, methods=["GET"])
    app.serve_directly(DirectRoutes(app.routes))
    app.add_middleware(Stamp)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/things/a")
    assert response.content == b"plain" and response.headers["x-stamp"] == "1"
    assert app.direct is None


def test_the_direct_path_can_be_turned_off(settings: Settings) -> None:
    """HUB_DIRECT_PATH=false: FastAPI serves everything (CI's second pass runs the whole
    suite so)."""
    settings.direct_path = False
    app = create_app(settings, adapters=[])
    assert isinstance(app, HubApp) and app.direct is None
