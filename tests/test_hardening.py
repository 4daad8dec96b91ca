"""Refusals and guarantees under bad conditions: cancellation, deadlines, database trouble,
key floods, hostile upstream answers, production settings and mapping mistakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from hub.core.config import ConfigurationError, Settings
from hub.core.models import ApiKey
from hub.errors import (
    Unauthenticated,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from hub.mapping import MappingError, load_mapping
from hub.resilience.retry import RetryPolicy
from hub.upstream import AiohttpBackend, UpstreamClient
from tests.test_pipeline import PID, EchoAdapter, assert_problem, call, echo, upstream  # noqa: F401

# -- deadlines -------------------------------------------------------------------------------


def policy(deadline_s: float) -> RetryPolicy:
    return RetryPolicy(attempts=3, deadline_s=deadline_s, initial_s=0.001, max_s=0.002)


async def test_the_deadline_bounds_the_first_attempt_too():
    async def slow():
        await asyncio.sleep(2)

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await policy(0.2).run(slow, idempotent=True, timeout_s=5)
    assert time.monotonic() - started < 1


async def test_no_time_left_reraises_the_real_failure_not_a_timeout(monkeypatch):
    monkeypatch.setattr("hub.resilience.retry.random.uniform", lambda low, high: high)

    async def down():
        raise UpstreamUnavailable()

    retried = []
    slow_backoff = RetryPolicy(attempts=3, deadline_s=0.05, initial_s=1.0, max_s=1.0)
    with pytest.raises(UpstreamUnavailable):
        await slow_backoff.run(
            down, idempotent=True, timeout_s=5, on_retry=lambda: retried.append(1)
        )
    assert retried == []


async def test_retries_until_success_within_the_deadline():
    attempts = []

    async def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise UpstreamError()
        return "ok"

    assert await policy(5).run(flaky, idempotent=True, timeout_s=1) == "ok"
    assert len(attempts) == 3


# -- the pipeline under trouble ----------------------------------------------------------------


async def test_a_cancelled_call_is_still_audited(echo, upstream):  # noqa: F811
    started = asyncio.Event()

    async def hang(request):
        started.set()
        await asyncio.sleep(10)
        return httpx.Response(200, json={"value": 1})

    upstream.get(f"/items/{PID}").mock(side_effect=hang)
    key = echo.client()
    task = asyncio.create_task(call(echo, key))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = echo.audit_rows()
    assert (row["code"], row["status"], row["subject_id"]) == ("CANCELLED", 499, PID)


async def test_upstream_answering_non_json_is_502(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, text="<html>maintenance</html>")
    assert_problem(await call(echo, echo.client()), 502, "UPSTREAM_BAD_RESPONSE")
    upstream.get(f"/items/{PID}").respond(200, content=b"\xff\xfe{")
    assert_problem(await call(echo, echo.client()), 502, "UPSTREAM_BAD_RESPONSE")


async def test_database_down_during_authentication_is_503(echo, monkeypatch):  # noqa: F811
    key = echo.client()

    def broken(digest):
        raise OperationalError("SELECT …", {}, Exception("connection refused"))

    monkeypatch.setattr(echo.hub.gateway.authenticator, "_lookup", broken)
    response = await call(echo, key)
    assert_problem(response, 503, "HUB_UNAVAILABLE")
    assert response.headers["retry-after"]


async def test_audit_failure_refuses_the_call_and_logs_no_personal_data(echo, upstream, caplog):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    echo.hub.audit._sql = "INSERT INTO no_such_table VALUES (1)"
    with caplog.at_level(logging.DEBUG):
        response = await call(echo, echo.client(), **{"x-officer-id": "CB-SECRET"})
    assert_problem(response, 503, "AUDIT_UNAVAILABLE")
    assert PID not in caplog.text and "CB-SECRET" not in caplog.text
    assert "audit batch of 1 records failed" in caplog.text


async def test_a_flood_of_made_up_keys_does_not_evict_good_ones(echo, upstream, monkeypatch):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    auth = echo.hub.gateway.authenticator
    auth._ttl = 60
    key = echo.client()
    assert (await call(echo, key)).status_code == 200
    lookups = []
    original = auth._lookup
    monkeypatch.setattr(auth, "_lookup", lambda d: lookups.append(d) or original(d))
    for i in range(auth.MAX_REFUSED * 2):
        with pytest.raises(Unauthenticated):
            await auth.authenticate(f"Bearer hub_made-up-{i}")
    made_up = len(lookups)
    assert (await call(echo, key)).status_code == 200
    assert len(lookups) == made_up  # the good key never went back to the database
    with pytest.raises(Unauthenticated):
        await auth.authenticate("Bearer hub_made-up-1999")
    assert len(lookups) == made_up  # a recent refusal is remembered too


async def test_expired_and_revoked_keys_are_refused(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    key = echo.client()
    with Session(echo.hub.engine) as session:
        row = session.exec(select(ApiKey)).one()
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.add(row)
        session.commit()
    assert_problem(await call(echo, key), 401, "UNAUTHENTICATED")


async def test_an_anonymous_caller_gets_401_whatever_the_body(echo):  # noqa: F811
    response = await echo.http.post("/v1/services/echo/get", content=b"{not json")
    assert_problem(response, 401, "UNAUTHENTICATED")


async def test_every_401_carries_the_bearer_challenge(echo, upstream):  # noqa: F811
    """RFC 7235/6750: a 401 names the scheme to use; `error="invalid_token"` only when a
    credential was sent and refused. On the direct path (the call routes) and through
    FastAPI (the admin API) alike."""
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    anonymous = [
        await echo.http.post("/v1/services/echo/get", json={"personal_id": PID}),
        await echo.http.get("/admin/clients"),
        await echo.http.post("/v1/services/echo/get", headers={"authorization": "Basic eDp5"}),
    ]
    for response in anonymous:
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == 'Bearer realm="lgsp-hub"'
    refused = [
        await call(echo, "hub_made-up-key"),
        await call(echo, "not-a-key-at-all"),
        await echo.http.get("/admin/clients", headers={"authorization": "Bearer hub_nope"}),
    ]
    for response in refused:
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == (
            'Bearer realm="lgsp-hub", error="invalid_token"'
        )
    ok = await call(echo, echo.client())
    assert ok.status_code == 200 and "www-authenticate" not in ok.headers


async def test_405_names_the_allowed_methods(echo):  # noqa: F811
    response = await echo.http.put("/v1/services/echo/get")
    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"


def test_production_refuses_the_default_secret(tmp_path):
    settings = Settings(environment="production", database_url=f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigurationError, match="HUB_SECRET_KEY"):
        from hub.app import create_app

        create_app(settings, adapters=[EchoAdapter])
    Settings(environment="production", secret_key="x" * 40).check()


# -- the aiohttp client against a real socket ----------------------------------------------------


async def test_oversized_upstream_answers_are_refused_before_they_are_read():
    async def huge(request):
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 65_536)
        return response

    async def small(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/big", huge)
    app.router.add_get("/small", small)
    async with TestServer(app) as server:
        client = UpstreamClient(
            str(server.make_url("/")),
            timeout=httpx.Timeout(5),
            backend=AiohttpBackend(max_connections=4, max_response_bytes=100_000),
        )
        try:
            assert (await client.get("/small")).text == "ok"
            with pytest.raises(UpstreamBadResponse):
                await client.get("/big")
        finally:
            await client.aclose()


# -- mapping mistakes caught at start-up --------------------------------------------------------

MODEL_MAPPING = """\
format: xml
namespaces: {p: "urn:p"}
objects:
  place:
    code: p:Ma
operations:
  get:
    fields:
      pid: p:Id
      born: {path: p:Born, transform: "date:yyyyMMdd"}
      sex: p:Sex
      tags: {path: p:Tag, many: true}
      place: {path: p:Place, object: place}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("sex: p:Sex", "sex: {path: p:Sex, many: true}"), "'sex' is not a list"),
        (("tags: {path: p:Tag, many: true}", "tags: p:Tag"), "'tags' is a list"),
        (("sex: p:Sex", "sex: {path: p:Sex, object: place}"), "'sex' is not an object"),
        (("object: place}", "object: place, transform: upper}"), "does not apply to an `object`"),
    ],
)
def test_shape_mistakes_stop_start_up(change, message):
    from tests.unit.test_mapping import Person

    text = MODEL_MAPPING.replace(*change)
    assert text != MODEL_MAPPING
    load_mapping("t.yaml", MODEL_MAPPING, models={"get": Person})
    with pytest.raises(MappingError, match=message):
        load_mapping("t.yaml", text, models={"get": Person})


def test_comments_inside_a_value_do_not_split_it_and_numeric_json_keys_work():
    from lxml import etree

    from tests.unit.test_mapping import Person

    mapping = load_mapping("t.yaml", MODEL_MAPPING, models={"get": Person})
    xml = b'<R xmlns="urn:p"><Id>0010<!-- c -->85012345</Id><Born>19850304</Born><Sex>1</Sex></R>'
    assert mapping.operation("get").apply(etree.fromstring(xml))["pid"] == "001085012345"

    json_mapping = load_mapping(
        "j.yaml",
        "format: json\noperations:\n  get:\n    fields:\n      pid: codes.01\n"
        "      born: {path: born, transform: 'date:yyyy-MM-dd'}\n      sex: list.1\n",
        models={"get": Person},
    )
    payload = {"codes": {"01": "x"}, "born": "2000-01-02", "list": ["a", "b"]}
    assert json_mapping.operation("get").apply(payload)["pid"] == "x"
    assert json_mapping.operation("get").apply(payload)["sex"] == "b"
