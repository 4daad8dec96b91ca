"""`business-registration:status-changed` from the register's change feed: an agency with
no purpose (no personal data) is told of an enterprise's dissolution, which the register's
own record shows afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.core.config import Settings
from tests.conftest import RunningHub, running_hub


@pytest.fixture
async def register(settings: Settings) -> AsyncIterator[tuple[RunningHub, Any]]:
    from adapters.business_registration import BusinessRegistrationAdapter
    from mocks import create_mock_app

    mock = create_mock_app("business-registration")
    settings.adapters = {"business-registration": {"base_url": "http://br.mock"}}
    async with running_hub(
        settings,
        adapters=[BusinessRegistrationAdapter],
        transports={"business-registration": httpx.ASGITransport(app=mock)},
    ) as hub:
        yield hub, mock


async def _mock(mock: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=mock)
    async with httpx.AsyncClient(transport=transport, base_url="http://br.mock") as http:
        return await http.request(method, path, **kwargs)


async def test_a_dissolution_reaches_the_tax_office(register):
    hub, mock = register
    tax = hub.client(allow=["business-registration"], purposes=[])
    created = await hub.http.post(
        "/v1/subscriptions",
        json={"event_type": "business-registration:status-changed", "delivery": "pull"},
        headers=hub.headers(tax, purpose=None),
    )
    assert created.status_code == 201, created.text
    sid = created.json()["data"]["id"]
    records = (await _mock(mock, "GET", "/_mock/records?limit=50")).json()["records"]
    target = next(r for r in records if r["status"] == "active")
    changed = await _mock(
        mock,
        "POST",
        "/_mock/events",
        json={"enterprise_code": target["enterprise_code"], "status": "dissolving"},
    )
    assert changed.status_code == 201, changed.text
    same = await _mock(
        mock,
        "POST",
        "/_mock/events",
        json={"enterprise_code": target["enterprise_code"], "status": "dissolving"},
    )
    assert same.status_code == 409
    await hub.hub.worker.run_once()
    pulled = await hub.http.get(
        f"/v1/subscriptions/{sid}/events/next", headers=hub.headers(tax, purpose=None)
    )
    assert pulled.status_code == 200, pulled.text
    data = pulled.json()["data"]["data"]
    assert data["enterprise_code"] == target["enterprise_code"]
    assert (data["previous_status"], data["status"]) == ("active", "dissolving")
    assert data["province_code"] == changed.json()["MaTinh"]
    reader = hub.client(allow=["business-registration"])
    record = await hub.http.get(
        f"/v1/enterprises/{target['enterprise_code']}", headers=hub.headers(reader)
    )
    assert record.json()["data"]["status"] == "dissolving"
    audited = [r for r in hub.audit_rows() if r["operation"] == "pull:status-changed"]
    assert [r["subject_id"] for r in audited] == [None], "no person's record"
