"""Judicial records and payment end to end: the hub's API, the real adapters, the mocks.

The mocks push their results (the judicial certificate, the payment IPN) back into the
hub's ASGI app, as the national systems push to a provincial portal; agencies' webhooks go
to an in-process receiver.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.capabilities.webhooks import verify, webhook_secret
from hub.core.config import Settings
from tests.conftest import RunningHub, running_hub
from tests.core.fakes import WebhookReceiver


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def stack(
    settings: Settings, receiver: WebhookReceiver
) -> AsyncIterator[tuple[RunningHub, Any, Any]]:
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
        for mock, path in (
            (judicial, "/v1/judicial-records/results"),
            (payment, "/v1/payments/ipn"),
        ):
            mock.state.push.url = f"http://hub.test{path}"
            mock.state.push.transport = httpx.ASGITransport(app=hub.app)
        async with (
            judicial.router.lifespan_context(judicial),
            payment.router.lifespan_context(payment),
        ):
            yield hub, judicial, payment


async def applicant(judicial: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=judicial), base_url="http://j"
    ) as http:
        records = (await http.get("/_mock/records", params={"limit": 50})).json()
    return records


async def wait_final(hub: RunningHub, key: str, job_id: str) -> dict[str, Any]:
    for _ in range(100):
        read = await hub.http.get(
            f"/v1/judicial-records/requests/{job_id}", headers=hub.headers(key)
        )
        data = read.json()["data"]
        if data["final"]:
            return data  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job still {data['status']}")


# -- payment ---------------------------------------------------------------------------------

ORDER = {
    "amount": 200000,
    "description": "Lệ phí cấp phiếu lý lịch tư pháp",
    "procedure_code": "1.001234",
    "dossier_id": "000.00.01.H26-261201-0001",
    "payer_name": "Trần Thị Bình",
    "payer_personal_id": "001185012345",
}


async def open_payment(
    hub: RunningHub, key: str, idem: str = "fee-1", **extra: Any
) -> httpx.Response:
    headers = hub.headers(key, **{"idempotency-key": idem})
    return await hub.http.post("/v1/payments", json={**ORDER, **extra}, headers=headers)


async def mock_call(mock: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=mock), base_url="http://payment.mock"
    ) as http:
        return await http.request(method, path, **kwargs)


async def wait_status(hub: RunningHub, key: str, payment_id: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        data = (await hub.http.get(f"/v1/payments/{payment_id}", headers=hub.headers(key))).json()[
            "data"
        ]
        if data["status"] == status:
            return data  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"payment still {data['status']}")


async def test_a_payment_from_opening_to_receipt(stack, receiver) -> None:
    """Open (idempotently), the payer pays on the platform, the signed IPN settles it in the
    hub, the agency gets a signed webhook, and the receipt can be fetched."""
    hub, _, payment_mock = stack
    key = hub.client()
    opened = await open_payment(hub, key, callback_url="http://agency.test/hook")
    assert opened.status_code == 201, opened.text
    payment = opened.json()["data"]
    assert payment["status"] == "pending" and payment["amount"] == 200000
    assert payment["transaction_id"].startswith("DVC")
    assert payment["pay_url"].endswith(f"/pay/{payment['transaction_id']}")
    again = await open_payment(hub, key, callback_url="http://agency.test/hook")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["id"] == payment["id"]

    page = await mock_call(payment_mock, "GET", f"/pay/{payment['transaction_id']}")
    assert page.status_code == 200 and ORDER["description"] in page.text

    settled = await mock_call(
        payment_mock,
        "POST",
        f"/_mock/payments/{payment['transaction_id']}/settle",
        json={"outcome": "success"},
    )
    assert settled.status_code == 200, settled.text
    paid = await wait_status(hub, key, payment["id"], "paid")
    assert paid["paid_at"] is not None

    await hub.hub.worker.run_once()
    [(headers, raw)] = receiver.received
    client_id = hub.audit_rows()[-1]["client_id"]
    secret = webhook_secret(hub.settings.secret_key.get_secret_value().encode(), client_id)
    assert verify(secret, raw, headers["x-hub-signature"])
    assert (
        json.loads(raw)["event"] == "payment.paid"
        and json.loads(raw)["data"]["id"] == payment["id"]
    )

    receipt = await hub.http.get(f"/v1/payments/{payment['id']}/receipt", headers=hub.headers(key))
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["data"]["number"].startswith("BL-")
    assert base64.b64decode(receipt.json()["data"]["pdf_base64"]).startswith(b"%PDF")
    # The platform holds it once, whatever the replays, and its IPN got through first time.
    [upstream] = (await mock_call(payment_mock, "GET", "/_mock/payments")).json()["payments"]
    assert (upstream["reference"], upstream["status"]) == (payment["id"], "paid")
    assert upstream["ipn"] == {"state": "delivered", "attempts": 1}


async def test_a_failed_payment_is_failed(stack) -> None:
    hub, _, payment_mock = stack
    key = hub.client()
    payment = (await open_payment(hub, key)).json()["data"]
    settled = await mock_call(
        payment_mock,
        "POST",
        f"/_mock/payments/{payment['transaction_id']}/settle",
        json={"outcome": "failed"},
    )
    assert settled.status_code == 200, settled.text
    await wait_status(hub, key, payment["id"], "failed")
    receipt = await hub.http.get(f"/v1/payments/{payment['id']}/receipt", headers=hub.headers(key))
    assert receipt.status_code == 404


async def test_no_callback_the_hub_queries_and_reconciles(stack) -> None:
    """The platform settles without telling the hub: reconciliation shows the difference,
    the background query settles the payment, and reconciliation is then clean."""
    from sqlalchemy import text

    hub, _, payment_mock = stack
    key = hub.client()
    payment = (await open_payment(hub, key)).json()["data"]
    settled = await mock_call(
        payment_mock,
        "POST",
        f"/_mock/payments/{payment['transaction_id']}/settle",
        json={"outcome": "success", "notify": False},
    )
    assert settled.status_code == 200, settled.text
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
    report = await hub.hub.payments.get().reconcile(today)
    assert not report.clean
    assert report.status_mismatch == [
        {"reference": payment["id"], "hub": "pending", "upstream": "paid"}
    ]

    with hub.hub.engine.begin() as conn:  # make the query due now
        conn.execute(text("UPDATE payments SET next_query_at = :t"), {"t": dt.datetime(2000, 1, 1)})
    assert await hub.hub.worker.run_once() >= 1
    assert (await wait_status(hub, key, payment["id"], "paid"))["transaction_id"] == payment[
        "transaction_id"
    ]
    report = await hub.hub.payments.get().reconcile(today)
    assert report.clean and report.hub_count == report.upstream_count == 1


async def test_the_platform_down_then_back(stack) -> None:
    """INIT fails while the platform is down: the payment stays `initiating` and the same
    key, once it is back, opens it with the same reference."""
    hub, _, payment_mock = stack
    key = hub.client()
    down = await mock_call(payment_mock, "PUT", "/_mock/faults", json={"http_503": True})
    assert down.status_code == 200, down.text
    refused = await open_payment(hub, key)
    assert refused.status_code == 503 and refused.json()["code"] == "UPSTREAM_UNAVAILABLE"
    await mock_call(payment_mock, "DELETE", "/_mock/faults")
    opened = await open_payment(hub, key)
    assert opened.status_code == 201, opened.text
    [upstream] = (await mock_call(payment_mock, "GET", "/_mock/payments")).json()["payments"]
    assert upstream["reference"] == opened.json()["data"]["id"]
