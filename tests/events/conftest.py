"""Fixtures of the events tests: the hub with the civil-status adapter on its in-process
mock, and an agency's webhook receiver."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.core.config import Settings
from hub.security.auth import create_client
from tests.conftest import RunningHub, running_hub
from tests.core.fakes import WebhookReceiver

DEATHS = "civil-status:death-registered"


@dataclass
class Agency:
    client_id: str
    api_key: str


@dataclass
class EventStack:
    hub: RunningHub
    mock: Any
    receiver: WebhookReceiver

    def agency(self, **grants: Any) -> Agency:
        grants.setdefault("allow", ["civil-status"])
        grants.setdefault("purposes", ["social-insurance"])
        issued = create_client(
            self.hub.hub.engine,
            self.hub.settings.secret_key.get_secret_value().encode(),
            name=f"agency-{uuid.uuid4().hex[:8]}",
            **grants,
        )
        return Agency(issued.client_id, issued.api_key)

    def headers(self, agency: Agency, purpose: str | None = "social-insurance") -> dict[str, str]:
        return self.hub.headers(agency.api_key, purpose=purpose)

    async def subscribe(self, agency: Agency, **body: Any) -> httpx.Response:
        body.setdefault("event_type", DEATHS)
        return await self.hub.http.post(
            "/v1/subscriptions", json=body, headers=self.headers(agency)
        )

    async def mock_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.mock)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
            return await http.request(method, path, **kwargs)

    async def someone(self, index: int = 0) -> str:
        listing = (await self.mock_call("GET", "/_mock/records?limit=20")).json()
        return str(listing["persons"][index]["personal_id"])

    async def register_death(self, personal_id: str) -> httpx.Response:
        body = {"kind": "death", "personal_id": personal_id}
        return await self.mock_call("POST", "/_mock/events", json=body)

    async def tick(self, times: int = 1) -> None:
        for _ in range(times):
            await self.hub.hub.worker.run_once()


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def events(settings: Settings, receiver: WebhookReceiver) -> AsyncIterator[EventStack]:
    from adapters.civil_status import CivilStatusAdapter
    from mocks import create_mock_app

    mock = create_mock_app("civil-status")
    settings.adapters = {"civil-status": {"base_url": "http://civil-status.mock"}}
    settings.webhook_initial_backoff_s = 0.0
    async with running_hub(
        settings,
        adapters=[CivilStatusAdapter],
        transports={"civil-status": httpx.ASGITransport(app=mock)},
        webhook_transport=httpx.ASGITransport(app=receiver.app()),
    ) as hub:
        yield EventStack(hub, mock, receiver)
