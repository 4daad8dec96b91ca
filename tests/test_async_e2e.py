"""Judicial records and payment end to end: the hub's API, the real adapters, the mocks.

The mocks push their results (the judicial certificate, the payment IPN) back into the
hub's ASGI app, as the national systems push to a provincial portal; agencies' webhooks go
to an in-process receiver.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.config import Settings
from hub.webhooks import verify, webhook_secret
from tests.conftest import RunningHub, running_hub
from tests.core.fakes import WebhookReceiver


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def stack(settings: Settings, receiver: WebhookReceiver) -> AsyncIterator[tuple[RunningHub, Any, Any]]:
    from adapters.judicial_records import JudicialRecordsAdapter
    from adapters.payment import PaymentAdapter
    from mocks import create_mock_app

    judicial = create_mock_app("judicial-records", processing_s=0.3)
    payment = create_mock_app("payment")
    settings.adapters = {
        "judicial-records": {"base_url": "http://judicial.mock"},
        "payment": {"base_url": "http://payment.mock"},
    }
    transports = {
        "judicial-records": httpx.ASGITransport(app=judicial),
        "payment": httpx.ASGITransport(app=payment),
    }
    async with running_hub(
        settings,
        adapters=[JudicialRecordsAdapter, PaymentAdapter],
        transports=transports,
        webhook_transport=httpx.ASGITransport(app=receiver.app()),
    ) as hub:
        for mock, path in ((judicial, "/v1/judicial-records/results"), (payment, "/v1/payments/ipn")):
            mock.state.push.url = f"http://hub.test{path}"
            mock.state.push.transport = httpx.ASGITransport(app=hub.app)
        async with judicial.router.lifespan_context(judicial), payment.router.lifespan_context(payment):
            yield hub, judicial, payment


async def applicant(judicial: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=judicial), base_url="http://j") as http:
        records = (await http.get("/_mock/records", params={"limit": 50})).json()
    return records


async def wait_final(hub: RunningHub, key: str, job_id: str) -> dict[str, Any]:
    for _ in range(100):
        read = await hub.http.get(f"/v1/judicial-records/requests/{job_id}", headers=hub.headers(key))
        data = read.json()["data"]
        if data["final"]:
            return data  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job still {data['status']}")
