"""The citizen profile: concurrent sections, each with its own status, always 200.

Fake adapters under the three real service names record when they run, so concurrency is
shown by overlap (no timing assertions) and every failure mode is chosen by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from hub.adapter import Adapter, CallContext, Health, operation
from hub.canonical import PersonalIdStr
from hub.core.config import Settings
from hub.errors import NotFound, UpstreamUnavailable
from tests.conftest import RunningHub, running_hub

PID = "001085012345"
EVENTS: list[str] = []
BEHAVIOUR: dict[str, str] = {}


class Query(BaseModel):
    personal_id: PersonalIdStr


class Out(BaseModel):
    personal_id: str
    source: str


async def behave(service: str, request: Query) -> Out:
    EVENTS.append(f"start {service}")
    mode = BEHAVIOUR.get(service, "ok")
    await asyncio.sleep(0.05)
    if mode == "hang":
        await asyncio.sleep(30)
    EVENTS.append(f"end {service}")
    if mode == "down":
        raise UpstreamUnavailable()
    if mode == "missing":
        raise NotFound()
    return Out(personal_id=request.personal_id, source=service)


class FakePopulation(Adapter):
    name, version = "population", "1"

    @operation(subject="personal_id", profile="citizen")
    async def lookup(self, request: Query, ctx: CallContext) -> Out:
        """Lookup."""
        return await behave(self.name, request)

    async def health(self) -> Health:
        return Health(ok=True)


class FakeCivilStatus(Adapter):
    name, version = "civil-status", "1"

    @operation(subject="personal_id", profile="civil_status")
    async def records(self, request: Query, ctx: CallContext) -> Out:
        """Records."""
        return await behave(self.name, request)

    async def health(self) -> Health:
        return Health(ok=True)


class FakeBusiness(Adapter):
    name, version = "business-registration", "1"

    @operation(name="by-representative", subject="personal_id", profile="enterprises")
    async def by_representative(self, request: Query, ctx: CallContext) -> Out:
        """By representative."""
        return await behave(self.name, request)

    async def health(self) -> Health:
        return Health(ok=True)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[RunningHub]:
    EVENTS.clear()
    BEHAVIOUR.clear()
    settings.adapters = {
        name: {"base_url": "http://unused.test"}
        for name in ("population", "civil-status", "business-registration")
    }
    settings.retry_attempts = 1
    settings.profile_timeout_s = 1.0
    async with running_hub(
        settings, adapters=[FakePopulation, FakeCivilStatus, FakeBusiness]
    ) as running:
        yield running


async def profile(hub: RunningHub, key: str, pid: str = PID, **headers: str) -> dict:
    response = await hub.http.get(
        f"/v1/citizens/{pid}/profile", headers=hub.headers(key, **headers)
    )
    return {"status": response.status_code, **response.json()}


async def test_sections_are_fetched_concurrently(hub) -> None:
    body = await profile(hub, hub.client())
    assert body["status"] == 200
    data = body["data"]
    assert {k: v["status"] for k, v in data.items() if k != "personal_id"} == {
        "citizen": "ok",
        "civil_status": "ok",
        "enterprises": "ok",
    }
    assert data["citizen"]["data"]["source"] == "population"
    # every section started before any finished: they ran side by side, not one by one
    assert [e.split()[0] for e in EVENTS] == ["start"] * 3 + ["end"] * 3
    rows = hub.audit_rows()
    assert sorted(r["service"] for r in rows) == [
        "business-registration",
        "civil-status",
        "population",
        "profile",  # the agency's request, around the three calls
    ]
    profile_row = next(r for r in rows if r["service"] == "profile")
    assert profile_row["subject_id"] == PID and profile_row["code"] == "OK"
    assert {r["request_id"] for r in rows} == {rows[0]["request_id"]}
    assert all(r["subject_id"] == PID for r in rows)


async def test_a_failing_or_hanging_section_does_not_sink_the_others(hub) -> None:
    BEHAVIOUR.update({"civil-status": "down", "business-registration": "hang"})
    body = await profile(hub, hub.client())
    assert body["status"] == 200
    data = body["data"]
    assert data["citizen"]["status"] == "ok"
    assert data["civil_status"] == {
        "status": "error",
        "error": {
            "status": 503,
            "code": "UPSTREAM_UNAVAILABLE",
            "title": "The upstream system is unavailable",
        },
    }
    assert data["enterprises"]["status"] == "error"
    assert data["enterprises"]["error"]["code"] == "UPSTREAM_TIMEOUT"
    codes = {r["service"]: r["code"] for r in hub.audit_rows()}
    assert codes["business-registration"] == "CANCELLED"


async def test_sections_the_client_may_not_call_are_marked_not_fetched(hub) -> None:
    key = hub.client(allow=["population"])
    body = await profile(hub, key)
    assert body["data"]["citizen"]["status"] == "ok"
    assert body["data"]["civil_status"]["status"] == "not_permitted"
    assert "data" not in body["data"]["civil_status"]
    assert EVENTS == ["start population", "end population"]


async def test_refusals_come_before_any_upstream_call(hub) -> None:
    bad = await profile(hub, hub.client(), pid="001085")
    assert bad["status"] == 400 and bad["code"] == "INVALID_PERSONAL_ID"
    no_purpose = await profile(hub, hub.client(), purpose=None)
    assert no_purpose["status"] == 400 and no_purpose["code"] == "PURPOSE_REQUIRED"
    nothing_granted = await profile(hub, hub.client(allow=["payment"]))
    assert nothing_granted["status"] == 403
    assert EVENTS == []
    # Each refusal is audited, like any call that passed authentication.
    assert [(r["service"], r["code"]) for r in hub.audit_rows()] == [
        ("profile", "INVALID_PERSONAL_ID"),
        ("profile", "PURPOSE_REQUIRED"),
        ("profile", "FORBIDDEN"),
    ]


async def test_an_unknown_citizen_is_a_section_404(hub) -> None:
    BEHAVIOUR["population"] = "missing"
    body = await profile(hub, hub.client())
    assert body["status"] == 200
    assert body["data"]["citizen"]["error"]["code"] == "NOT_FOUND"
