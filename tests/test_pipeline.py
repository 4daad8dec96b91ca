"""The core pipeline around any adapter: auth, policy, validation, retries, errors, audit.

A throwaway adapter registered inside the tests (datasette style) talks to a respx router, so
each upstream behaviour is exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
import respx
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict
from sqlmodel import Session, select

from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.canonical import PersonalIdStr
from hub.core.models import AuditRecord
from hub.core.registry import AdapterLoadError
from hub.errors import NotFound
from tests.conftest import running_hub

PID = "001085012345"


class EchoIn(BaseModel):
    personal_id: PersonalIdStr
    note: str | None = None


class EchoOut(BaseModel):
    personal_id: str
    value: int


class ChargeIn(BaseModel):
    amount: int


class EchoAdapter(Adapter):
    name = "echo"
    version = "9.9.9"
    title = "Echo"

    @operation(subject="personal_id")
    async def get(self, request: EchoIn, ctx: CallContext) -> EchoOut:
        """Read a value."""
        response = await self.http.get(
            f"/items/{request.personal_id}", headers={"x-req": ctx.request_id}
        )
        if response.status_code == 404:
            raise NotFound()
        if response.status_code >= 500:
            from hub.errors import UpstreamError

            raise UpstreamError()
        return EchoOut.model_validate({"personal_id": request.personal_id, **response.json()})

    @operation(idempotent=False, personal_data=False)
    async def charge(self, request: ChargeIn, ctx: CallContext) -> EchoOut:
        """Not idempotent: never retried."""
        response = await self.http.post("/charges", json={"amount": request.amount})
        if response.status_code >= 500:
            from hub.errors import UpstreamError

            raise UpstreamError()
        return EchoOut(personal_id="-", value=response.json()["value"])

    async def health(self) -> Health:
        return Health(ok=True)


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(base_url="http://echo.upstream", assert_all_called=False)


@pytest.fixture
async def echo(settings, upstream):
    settings.adapters = {"echo": {"base_url": "http://echo.upstream"}}
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(settings, adapters=[EchoAdapter], transports=transports) as running:
        yield running


async def call(echo, key, body=None, purpose="test", path="/v1/services/echo/get", **headers):
    return await echo.http.post(
        path,
        json={"personal_id": PID} if body is None else body,
        headers=echo.headers(key, purpose, **headers),
    )


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert {"type", "title", "detail"} <= set(body)
    return body


async def test_success_envelope_and_audit(echo, upstream):
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    key = echo.client()
    response = await call(
        echo, key, **{"x-request-id": "abc-123", "x-officer-id": "CB01", "x-dossier-id": "HS9"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"personal_id": PID, "value": 7}
    assert body["meta"]["request_id"] == "abc-123" == response.headers["x-request-id"]
    assert body["meta"] | {"duration_ms": 0} == {
        "request_id": "abc-123",
        "service": "echo",
        "operation": "get",
        "adapter_version": "9.9.9",
        "duration_ms": 0,
    }
    assert route.calls.last.request.headers["x-req"] == "abc-123"
    [row] = echo.audit_rows()
    assert row["service"] == "echo" and row["operation"] == "get" and row["status"] == 200
    assert (row["purpose"], row["officer_id"], row["dossier_id"], row["subject_id"]) == (
        "test",
        "CB01",
        "HS9",
        PID,
    )
    assert row["code"] == "OK" and row["upstream_ms"] is not None
    # written by the driver's executemany, read back through the model: same instant
    with Session(echo.hub.engine) as session:
        [record] = session.exec(select(AuditRecord)).all()
    at = record.at if record.at.tzinfo else record.at.replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - at).total_seconds()) < 60


async def test_request_id_generated_when_absent_or_unsafe(echo, upstream):
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    key = echo.client()
    generated = (await call(echo, key)).headers["x-request-id"]
    assert len(generated) == 32
    unsafe = await call(echo, key, **{"x-request-id": "a\tb" + "x" * 300})
    assert unsafe.headers["x-request-id"] != "a\tb" + "x" * 300


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic abc", "Bearer ", "Bearer hub_not-a-real-key", "Bearer wrongprefix"],
)
async def test_missing_or_bad_credential_is_401_and_not_audited(echo, upstream, authorization):
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    headers = {"x-purpose": "test"}
    if authorization is not None:
        headers["authorization"] = authorization
    response = await echo.http.post(
        "/v1/services/echo/get", json={"personal_id": PID}, headers=headers
    )
    assert_problem(response, 401, "UNAUTHENTICATED")
    assert not route.called
    assert echo.audit_rows() == []


async def test_grants_by_service_and_operation(echo, upstream):
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    upstream.post("/charges").respond(200, json={"value": 2})
    only_get = echo.client(allow=["echo:get"])
    other = echo.client(allow=["population"])
    assert (await call(echo, only_get)).status_code == 200
    assert_problem(
        await call(echo, only_get, {"amount": 1}, path="/v1/services/echo/charge"), 403, "FORBIDDEN"
    )
    assert_problem(await call(echo, other), 403, "FORBIDDEN")
    whole = echo.client(allow=["echo"])
    assert (
        await call(echo, whole, {"amount": 1}, path="/v1/services/echo/charge")
    ).status_code == 200


async def test_purpose_required_and_must_be_granted(echo, upstream):
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    key = echo.client(purposes=["tax-check"])
    assert_problem(await call(echo, key, purpose=None), 400, "PURPOSE_REQUIRED")
    assert_problem(await call(echo, key, purpose="marketing"), 403, "PURPOSE_NOT_ALLOWED")
    assert not route.called
    assert (await call(echo, key, purpose="tax-check")).status_code == 200
    # a call without personal data needs no purpose
    upstream.post("/charges").respond(200, json={"value": 2})
    response = await call(echo, key, {"amount": 5}, purpose=None, path="/v1/services/echo/charge")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "limit"), [("x-purpose", 64), ("x-officer-id", 128), ("x-dossier-id", 128)]
)
async def test_caller_headers_longer_than_the_audit_keeps_are_400(echo, upstream, header, limit):
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    long_value = "p" * (limit + 1)
    key = echo.client(purposes=["test", long_value])
    headers = {header: long_value} if header != "x-purpose" else {}
    purpose = long_value if header == "x-purpose" else "test"
    problem = assert_problem(await call(echo, key, purpose=purpose, **headers), 400, "BAD_REQUEST")
    assert str(limit) in problem["detail"] and long_value not in problem["detail"]
    assert not route.called
    assert echo.audit_rows()[-1]["code"] == "BAD_REQUEST"
    fits = {header: "p" * limit} if header != "x-purpose" else {}
    ok = await call(
        echo,
        echo.client(purposes=["test", "p" * limit]),
        purpose="p" * limit if header == "x-purpose" else "test",
        **fits,
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("bad_id", ["12345", "003085012345", "001885012345", "00108501234x"])
async def test_invalid_personal_id_is_400_before_any_upstream_call(echo, upstream, bad_id):
    route = upstream.route().respond(200, json={"value": 1})
    body = assert_problem(
        await call(echo, echo.client(), {"personal_id": bad_id}), 400, "INVALID_PERSONAL_ID"
    )
    assert bad_id not in str(body)
    assert not route.called


async def test_schema_violation_is_422_naming_the_field_not_the_value(echo):
    body = assert_problem(
        await call(echo, echo.client(), {"personal_id": PID, "note": {"secret": "Nguyễn Văn A"}}),
        422,
        "VALIDATION_ERROR",
    )
    assert body["errors"][0]["field"] == "note"
    assert "Nguyễn" not in str(body)
    assert_problem(await call(echo, echo.client(), [1, 2]), 422, "VALIDATION_ERROR")


async def test_bad_json_and_oversized_bodies(echo):
    key = echo.client()
    response = await echo.http.post(
        "/v1/services/echo/get", content=b"{not json", headers=echo.headers(key)
    )
    assert_problem(response, 400, "INVALID_JSON")
    big = b'{"note": "' + b"x" * (echo.settings.max_body_bytes + 10) + b'"}'
    response = await echo.http.post("/v1/services/echo/get", content=big, headers=echo.headers(key))
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


async def test_unknown_service_and_operation(echo):
    key = echo.client()
    assert_problem(await call(echo, key, path="/v1/services/nope/get"), 404, "UNKNOWN_SERVICE")
    assert_problem(await call(echo, key, path="/v1/services/echo/nope"), 404, "UNKNOWN_OPERATION")
    assert_problem(await echo.http.get("/v1/nowhere"), 404, "NOT_FOUND")


async def test_idempotent_reads_are_retried_on_transient_failures(echo, upstream):
    route = upstream.get(f"/items/{PID}").mock(
        side_effect=[
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"value": 3}),
        ]
    )
    response = await call(echo, echo.client())
    assert response.status_code == 200 and response.json()["data"]["value"] == 3
    assert route.call_count == 3
    assert (
        'hub_upstream_retries_total{operation="get",service="echo"} 2.0'
        in (await echo.http.get("/metrics")).text
    )


async def test_retries_are_bounded(echo, upstream):
    route = upstream.get(f"/items/{PID}").respond(500)
    assert_problem(await call(echo, echo.client()), 502, "UPSTREAM_ERROR")
    assert route.call_count == echo.settings.retry_attempts


async def test_non_idempotent_operations_are_never_retried(echo, upstream):
    route = upstream.post("/charges").respond(503)
    response = await call(echo, echo.client(), {"amount": 1}, path="/v1/services/echo/charge")
    assert_problem(response, 502, "UPSTREAM_ERROR")
    assert route.call_count == 1


async def test_not_found_is_404_and_not_retried(echo, upstream):
    route = upstream.get(f"/items/{PID}").respond(404)
    assert_problem(await call(echo, echo.client()), 404, "NOT_FOUND")
    assert route.call_count == 1
    assert echo.audit_rows()[-1]["code"] == "NOT_FOUND"


async def test_slow_upstream_is_504_after_the_timeout(echo, upstream):
    echo.hub.registry.get("echo").timeout_s = 0.05

    started = []

    async def slow(request):
        started.append(request)
        await asyncio.sleep(1)
        return httpx.Response(200, json={"value": 1})

    upstream.get(f"/items/{PID}").mock(side_effect=slow)
    body = assert_problem(await call(echo, echo.client()), 504, "UPSTREAM_TIMEOUT")
    assert len(started) == echo.settings.retry_attempts
    assert body["detail"] == "The upstream system did not answer in time"


async def test_connection_refused_is_503_with_retry_after(echo, upstream):
    upstream.get(f"/items/{PID}").mock(side_effect=httpx.ConnectError("refused"))
    response = await call(echo, echo.client())
    assert_problem(response, 503, "UPSTREAM_UNAVAILABLE")
    assert int(response.headers["retry-after"]) > 0


async def test_malformed_upstream_payload_is_502(echo, upstream):
    upstream.get(f"/items/{PID}").respond(200, json={"unexpected": "Nguyễn Văn A"})
    response = await call(echo, echo.client())
    body = assert_problem(response, 502, "UPSTREAM_BAD_RESPONSE")
    assert "Nguyễn" not in response.text and "Traceback" not in response.text
    assert body["detail"] == "The upstream system answered badly"


async def test_catalogue_lists_operations_with_schemas_and_status(echo):
    assert_problem(await echo.http.get("/v1/services"), 401, "UNAUTHENTICATED")
    response = await echo.http.get("/v1/services", headers=echo.headers(echo.client()))
    [service] = response.json()["data"]
    assert service["name"] == "echo" and service["version"] == "9.9.9" and service["status"] == "up"
    ops = {op["name"]: op for op in service["operations"]}
    assert set(ops) == {"get", "charge"}
    assert ops["charge"]["idempotent"] is False and ops["get"]["personal_data"] is True
    assert "personal_id" in ops["get"]["input_schema"]["properties"]
    assert ops["get"]["output_schema"]["required"] == ["personal_id", "value"]


async def test_health_ready_metrics_openapi(echo):
    assert (await echo.http.get("/health")).json() == {"status": "ok"}
    ready = (await echo.http.get("/ready")).json()
    assert ready["status"] == "ready" and ready["services"]["echo"]["ok"] is True
    assert "hub_requests_total" in (await echo.http.get("/metrics")).text
    paths = (await echo.http.get("/openapi.json")).json()["paths"]
    assert {
        "/v1/services",
        "/v1/services/{service}/{operation}",
        "/v1/citizens/{personal_id}/profile",
    } <= set(paths)


def test_duplicate_adapter_names_are_refused(settings):
    class Twin(EchoAdapter):
        pass

    from hub.app import create_app

    with pytest.raises(AdapterLoadError, match="two adapters are named 'echo'"):
        create_app(settings, adapters=[EchoAdapter, Twin])


def test_missing_adapter_configuration_stops_start_up(settings):
    from hub.app import create_app

    with pytest.raises(AdapterLoadError, match="adapter 'echo': bad configuration: base_url"):
        create_app(settings, adapters=[EchoAdapter])


def test_operations_must_be_typed_and_async():
    with pytest.raises(TypeError, match="must be `async def`"):

        class NotAsync(Adapter):
            name, version = "x", "1"

            @operation()
            def get(self, request: EchoIn, ctx: CallContext) -> EchoOut: ...  # type: ignore[misc]

    with pytest.raises(TypeError, match="the output must be a pydantic model"):

        class Untyped(Adapter):
            name, version = "x", "1"

            @operation()
            async def get(self, request: EchoIn, ctx: CallContext) -> dict: ...


def test_config_is_read_from_the_environment(monkeypatch):
    class EnvConfig(AdapterConfig):
        model_config = SettingsConfigDict(env_prefix="HUB_ECHO_")

    monkeypatch.setenv("HUB_ECHO_BASE_URL", "http://from-env")
    assert EnvConfig().base_url == "http://from-env"


async def test_an_adapter_failing_to_start_stops_start_up_with_its_name(settings):
    class Broken(EchoAdapter):
        name = "broken"

        async def startup(self) -> None:
            raise RuntimeError("WSDL has no operation X")

    settings.adapters = {"broken": {"base_url": "http://x"}}
    with pytest.raises(
        AdapterLoadError, match="adapter 'broken' failed to start: WSDL has no operation X"
    ):
        async with running_hub(settings, adapters=[Broken]):
            pass
