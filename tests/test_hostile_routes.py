"""The hostile-input battery against every route and every upstream parse (issue 18).

The routes are read from the hub's own OpenAPI document, so a route added tomorrow is in the
battery the day it lands. Every one gets the same deep, oversized, non-ASCII and malformed
inputs, with a credential that may call everything and with malformed credentials; none may
answer 5xx. Then every installed upstream answers garbage (deep JSON, not JSON, not XML,
huge): each is a 502, never a 500, and counted by its circuit as an upstream failure.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from hub.errors import UpstreamBadResponse, UpstreamUnreadable
from hub.resilience.circuit import is_upstream_failure
from tests.conftest import RunningHub, running_hub
from tests.test_pipeline import assert_problem

PID = "001085012345"
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ENTERPRISE = "0100109106"


def foreign_digits(value: str) -> list[str]:
    """`value` with its digits Arabic-Indic, full-width, and one of each in an ASCII run:
    `str.isdigit` and regex `\\d` take all of them."""
    mixed = value[:-1] + value[-1].translate(ARABIC_INDIC)
    return [value.translate(ARABIC_INDIC), value.translate(FULL_WIDTH), mixed]


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and keeps them: what reached upstream."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.requests = inner, []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def counted(settings, mock_apps) -> AsyncIterator[tuple[RunningHub, dict[str, Any]]]:
    """The hub over every mock, each upstream's requests counted."""
    settings.adapters = {name: {"base_url": f"http://{name}.mock"} for name in mock_apps}
    transports = {
        name: CountingTransport(httpx.ASGITransport(app=app)) for name, app in mock_apps.items()
    }
    async with running_hub(settings, transports=transports) as running:
        yield running, transports


def everything(hub: RunningHub) -> str:
    return hub.client(
        allow=["*", "admin:clients", "admin:audit", "audit:access-log"], purposes=["test"]
    )


# -- finding 4: ASCII digits only, on every identifier-bearing route --------------------------


def identifier_requests(value_for: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    pid, code, number = value_for["pid"], value_for["code"], value_for["number"]
    return [
        ("GET", f"/v1/citizens/{pid}", {}),
        ("GET", f"/v1/citizens/{pid}/profile", {}),
        ("GET", f"/v1/citizens/{pid}/access-log", {}),
        ("GET", "/v1/civil-status/records", {"params": {"personal_id": pid}}),
        ("GET", "/v1/civil-status/marital-status", {"params": {"personal_id": pid}}),
        ("GET", f"/v1/civil-status/records/birth/{number}", {}),
        ("GET", f"/v1/enterprises/{code}", {}),
        ("GET", f"/v1/enterprises/{code}-001", {}),
        (
            "POST",
            "/v1/citizens/verify",
            {"json": {"personal_id": pid, "full_name": "A", "date_of_birth": "1985-01-01"}},
        ),
        ("POST", "/v1/services/population/lookup", {"json": {"personal_id": pid}}),
        ("POST", "/v1/services/civil-status/records", {"json": {"personal_id": pid}}),
        (
            "POST",
            "/v1/services/civil-status/record",
            {"json": {"kind": "birth", "number": number}},
        ),
        ("POST", "/v1/services/business-registration/lookup", {"json": {"enterprise_code": code}}),
        (
            "POST",
            "/v1/judicial-records/requests",
            {
                "json": {
                    "personal_id": pid,
                    "full_name": "Nguyễn Văn A",
                    "date_of_birth": "1985-01-01",
                    "gender": "male",
                    "certificate_type": 1,
                    "purpose_code": "01",
                    "permanent_address": "Hà Nội",
                }
            },
        ),
    ]


@pytest.mark.parametrize("variant", range(3))
async def test_non_ascii_digits_never_pass_an_identifier(counted, variant):
    hub, transports = counted
    key = everything(hub)
    values = {
        "pid": foreign_digits(PID)[variant],
        "code": foreign_digits(ENTERPRISE)[variant],
        "number": "KS-" + foreign_digits("2005")[variant] + "-01-000123",
    }
    for method, path, extra in identifier_requests(values):
        response = await hub.http.request(method, path, headers=hub.headers(key), **extra)
        assert response.status_code in (400, 404, 422), (path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json", path
        for value in values.values():
            assert value not in response.text, path  # never echoed either
    reached = [str(r.url) for t in transports.values() for r in t.requests]
    assert reached == []


async def test_the_same_identifiers_in_ascii_do_reach_upstream(counted):
    """The control: the requests above are well-formed apart from their digits."""
    hub, transports = counted
    key = everything(hub)
    values = {"pid": PID, "code": ENTERPRISE, "number": "KS-2005-01-000123"}
    for method, path, extra in identifier_requests(values):
        response = await hub.http.request(method, path, headers=hub.headers(key), **extra)
        assert response.status_code < 500, (path, response.text)
    assert sum(len(t.requests) for t in transports.values()) >= len(identifier_requests(values))


def test_no_identifier_pattern_in_the_code_uses_unicode_digit_classes():
    """`\\d` in a pattern (pydantic's engine and `re` read it as any Unicode digit) or a
    bare `str.isdigit()` on an identifier: the whole class of finding 4, by source."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    found = []
    for folder in (
        "hub/canonical",
        "hub/capabilities/payments/models.py",
        "adapters",
        "hub/identifiers.py",
    ):
        for path in (
            sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else [root / folder]
        ):
            for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if re.search(r"pattern[^\n]*\\d", line):
                    found.append(f"{path.relative_to(root)}:{n}")
    assert found == []


# -- finding 3: malformed credentials are 401, never 500 ---------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [b"Basic \xff", b"Basic \xc3\xa9", b"Basic " + b"\xff" * 2000, b"basic  \xff\xfe=="],
)
async def test_a_non_ascii_basic_credential_is_401(hub, authorization):
    response = await hub.http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials",
        headers={
            "authorization": authorization,
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


# -- control characters in text: NUL (PostgreSQL refuses it), the others (XML refuses them) -----


def poisoned(value: Any) -> Any:
    """`value` with a NUL and a BEL appended to every string in it."""
    if isinstance(value, dict):
        return {k: poisoned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [poisoned(v) for v in value]
    return value + "\u0000\u0007" if isinstance(value, str) else value


VERIFY = {"personal_id": PID, "full_name": "Nguyễn Văn A", "date_of_birth": "1985-01-01"}
JUDICIAL = identifier_requests({"pid": PID, "code": "", "number": ""})[-1][2]["json"]
PAYMENT = {
    "amount": 150000,
    "description": "Lệ phí",
    "procedure_code": "1.0001",
    "dossier_id": "HS-1",
    "payer_name": "Nguyễn Văn A",
}
POISON_TARGETS = [
    ("/v1/citizens/verify", VERIFY),
    ("/v1/services/population/verify", VERIFY),
    ("/v1/judicial-records/requests", JUDICIAL),
    ("/v1/jobs/judicial-records", JUDICIAL),
    ("/v1/payments", PAYMENT),
    ("/admin/clients", {"name": "agency", "allow": ["population"], "purposes": ["p"]}),
]


@pytest.mark.parametrize(("path", "body"), POISON_TARGETS, ids=[p for p, _ in POISON_TARGETS])
async def test_control_characters_in_text_are_400_and_reach_nothing(counted, path, body):
    hub, transports = counted
    key = everything(hub)
    for sent in (poisoned(body), {**body, "x\u0000": 1}):
        response = await hub.http.post(
            path,
            content=orjson.dumps(sent),
            headers={**hub.headers(key, **{"idempotency-key": uuid.uuid4().hex})},
        )
        assert_problem(response, 400, "INVALID_JSON")
    assert sum(len(t.requests) for t in transports.values()) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/payments/pay_%00x",
        "/v1/payments/%00/receipt",
        "/v1/judicial-records/requests/job_%00",
        "/v1/jobs/judicial-records/job_%00",
        "/admin/clients/a%00b",
        "/v1/enterprises?name=a%00",
        "/admin/audit?subject_id=%00",
    ],
)
async def test_a_nul_in_the_url_is_400_before_any_look_up(hub, path):
    response = await hub.http.get(path, headers=hub.headers(everything(hub)))
    assert_problem(response, 400, "BAD_REQUEST")


# -- the battery: every route, the same hostile inputs -----------------------------------------

HOSTILE_SEGMENTS = [
    PID.translate(ARABIC_INDIC),
    PID.translate(FULL_WIDTH),
    "x" * 4000,  # a long segment (a personal ID could hide in it)
    "%F0%9F%92%A9%00",  # an emoji and a NUL
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "%FF%FE",  # not UTF-8
    "a%00b",  # NUL
    "%07%1B%5B31m",  # BEL, an ANSI escape
]

HOSTILE_BODIES: list[bytes] = [
    b"[" * 5_000 + b"]" * 5_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"\xff\xfe\x00garbage",
    b'"just a string"',
    orjson.dumps({"personal_id": PID.translate(ARABIC_INDIC), "amount": "١٠٠"}),
    b"[" + b"0," * 200_000 + b"0]",  # many elements, under the body limit
    b'{"x": "' + b"a" * (1_048_576 + 10) + b'"}',  # past HUB_MAX_BODY_BYTES
    orjson.dumps(poisoned(VERIFY)),
    orjson.dumps(poisoned(PAYMENT)),
]

HOSTILE_CREDENTIALS: list[bytes | None] = [
    None,
    b"Basic \xff",
    b"Bearer hub_\xff\xfe",
    b"Bearer eyJ\xff.\xfe.x",
    b"Bearer " + b"A" * 10_000,
]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


async def _routes(hub: RunningHub) -> list[tuple[str, str, dict[str, Any]]]:
    document = (await hub.http.get("/openapi.json")).json()
    return [
        (method.upper(), path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    ]


def _concrete(path: str) -> str:
    """The path with plausible values, so a hostile query or body reaches its route."""
    values = {
        "service": "population",
        "operation": "lookup",
        "personal_id": PID,
        "enterprise_code": ENTERPRISE,
        "kind": "birth",
        "number": "KS-2005-01-000123",
        "provider": "payment",
        "name": "nobody",
    }
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x1"), path)


async def _battery(hub: RunningHub, key: str) -> list[str]:
    failures: list[str] = []

    async def send(method: str, url: str, **extra: Any) -> None:
        headers = {**hub.headers(key), "idempotency-key": uuid.uuid4().hex, **extra.pop("h", {})}
        response = await hub.http.request(method, url, headers=headers, **extra)
        if response.status_code >= 500:
            failures.append(f"{method} {url[:80]} -> {response.status_code}")
        elif response.status_code >= 400 and (
            response.headers.get("content-type") != "application/problem+json"
        ):
            failures.append(f"{method} {url[:80]}: {response.headers.get('content-type')}")

    for method, path, op in await _routes(hub):
        if "{" in path:
            for segment in HOSTILE_SEGMENTS:
                await send(method, _fill(path, segment))
        for param in op.get("parameters", []):
            if param["in"] == "query":
                for segment in HOSTILE_SEGMENTS:
                    await send(method, f"{_concrete(path)}?{param['name']}={segment}")
        if method == "POST":
            for body in HOSTILE_BODIES:
                await send(
                    method, _concrete(path), content=body, h={"content-type": "application/json"}
                )
    return failures


async def test_every_route_takes_the_hostile_battery_without_a_5xx(hub):
    assert await _battery(hub, everything(hub)) == []


async def test_every_route_takes_malformed_credentials_without_a_5xx(hub):
    failures = []
    for method, path, _op in await _routes(hub):
        for credential in HOSTILE_CREDENTIALS:
            headers = {"x-purpose": "test", "content-type": "application/json"}
            if credential is not None:
                headers["authorization"] = credential  # type: ignore[assignment]
            response = await hub.http.request(
                method, _concrete(path), headers=headers, content=b"[" * 5000
            )
            if response.status_code >= 500:
                failures.append(f"{method} {path} {credential[:20]!r} -> {response.status_code}")
    assert failures == []


# -- every upstream parse: garbage answers are 502 and count against the upstream --------------


class Garbage(httpx.AsyncBaseTransport):
    """An upstream that answers every request with the same bytes."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body, self.content_type, self.calls = body, content_type, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200, content=self.body, headers={"content-type": self.content_type})


GARBAGE = {
    "deep JSON": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "deep object": (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "application/json"),
    "not JSON": (b"\xff\xfe<html>", "application/json"),
    "deep XML": (b"<a>" * 5_000 + b"</a>" * 5_000, "text/xml"),
    "wide JSON": (b"[" + b"0," * 50_000 + b"0]", "application/json"),
}

#: One call of each upstream through its resource route.
UPSTREAM_CALLS = {
    "population": ("GET", f"/v1/citizens/{PID}", {}),
    "civil-status": ("GET", "/v1/civil-status/records", {"params": {"personal_id": PID}}),
    "business-registration": ("GET", f"/v1/enterprises/{ENTERPRISE}", {}),
    "payment": (
        "POST",
        "/v1/payments",
        {
            "json": {
                "amount": 150000,
                "description": "Lệ phí",
                "procedure_code": "1.0001",
                "dossier_id": "HS-1",
                "payer_name": "Nguyễn Văn A",
            }
        },
    ),
}


@contextlib.asynccontextmanager
async def garbage_hub(settings, body: bytes, content_type: str) -> AsyncIterator[Any]:
    from mocks import MOCKS

    names = [name for name, spec in MOCKS.items() if spec.factory]
    settings.adapters = {name: {"base_url": f"http://{name}.mock"} for name in names}
    settings.circuit_consecutive_failures = 3
    transports = {name: Garbage(body, content_type) for name in names}
    async with running_hub(settings, transports=transports) as running:
        yield running, transports


@pytest.mark.parametrize("kind", sorted(GARBAGE))
async def test_garbage_from_any_upstream_is_502_and_opens_its_circuit(settings, kind):
    body, content_type = GARBAGE[kind]
    async with garbage_hub(settings, body, content_type) as (hub, transports):
        key = everything(hub)
        for service, (method, path, extra) in UPSTREAM_CALLS.items():
            for _ in range(3):
                response = await hub.http.request(
                    method,
                    path,
                    headers=hub.headers(key, **{"idempotency-key": uuid.uuid4().hex}),
                    **extra,
                )
                assert response.status_code == 502, (service, response.text)
                assert response.json()["code"] == "UPSTREAM_BAD_RESPONSE", service
            calls = transports[service].calls
            # Three unreadable answers in a row: the circuit is open, upstream left alone.
            refused = await hub.http.request(
                method,
                path,
                headers=hub.headers(key, **{"idempotency-key": uuid.uuid4().hex}),
                **extra,
            )
            assert_problem(refused, 503, "UPSTREAM_UNAVAILABLE")
            assert transports[service].calls == calls, service
        # A judicial submission's answer is read the same way (the job records the failure).
        submitted = await hub.http.post(
            "/v1/judicial-records/requests",
            json=identifier_requests({"pid": PID, "code": "", "number": ""})[-1][2]["json"],
            headers=hub.headers(key),
        )
        assert submitted.status_code < 500, submitted.text


def test_an_unreadable_answer_is_an_upstream_failure_an_off_contract_value_is_not():
    assert is_upstream_failure(UpstreamUnreadable())
    assert not is_upstream_failure(UpstreamBadResponse())
