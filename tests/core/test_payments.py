"""The hub's payment machinery: Idempotency-Key, verified callbacks, queries, reconciliation.

A fake payment adapter holds upstream's state in memory and verifies callbacks with a test
key; the real adapter, its checksum and its mock are tested in test_payment_*.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from hub.core.config import Settings
from hub.errors import UpstreamUnavailable
from tests.conftest import RunningHub, running_hub
from tests.core import fakes
from tests.core.fakes import FakePaymentAdapter, WebhookReceiver, push_signature

ORDER = {
    "amount": 150000,
    "description": "Lệ phí cấp phiếu lý lịch tư pháp",
    "procedure_code": "1.001234",
    "dossier_id": "HS-2026-0001",
    "payer_name": "Trần Thị Bình",
    "payer_personal_id": "001185012345",
}


@pytest.fixture
def upstream() -> fakes.FakeUpstream:
    return fakes.reset()


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def hub(settings: Settings, receiver: WebhookReceiver) -> AsyncIterator[RunningHub]:
    settings.adapters = {"payment": {"base_url": "http://unused.test"}}
    async with running_hub(
        settings,
        adapters=[FakePaymentAdapter],
        webhook_transport=httpx.ASGITransport(app=receiver.app()),
    ) as running:
        yield running


async def create(
    hub: RunningHub, key: str, body: dict[str, Any] | None = None, idem: str | None = "k-1"
) -> httpx.Response:
    headers = hub.headers(key)
    if idem is not None:
        headers["idempotency-key"] = idem
    return await hub.http.post(
        "/v1/payments", json=ORDER if body is None else body, headers=headers
    )


def notification(payment: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "reference": payment["id"],
        "transaction_id": payment["transaction_id"],
        "amount": payment["amount"],
        "status": "paid",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "error_code": "00",
        **changes,
    }


async def ipn(
    hub: RunningHub, payload: dict[str, Any], *, signature: str | None = None
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await hub.http.post(
        "/v1/payments/ipn",
        content=body,
        headers={"x-signature": signature if signature is not None else push_signature(body)},
    )


async def status_of(hub: RunningHub, key: str, payment_id: str) -> str:
    response = await hub.http.get(f"/v1/payments/{payment_id}", headers=hub.headers(key))
    return response.json()["data"]["status"]  # type: ignore[no-any-return]


async def test_create_then_replay_with_the_same_key(hub, upstream) -> None:
    key = hub.client()
    first = await create(hub, key)
    assert first.status_code == 201
    payment = first.json()["data"]
    assert payment["status"] == "pending" and payment["amount"] == 150000
    assert payment["pay_url"] == f"http://pay.test/{payment['transaction_id']}"
    assert upstream.inits[0]["reference"] == payment["id"]
    again = await create(hub, key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"] == payment
    assert len(upstream.inits) == 1
    # The key is the client's own: another client's same key is another payment.
    other = await create(hub, hub.client())
    assert other.status_code == 201 and other.json()["data"]["id"] != payment["id"]
    # The audit trail says what each answer was: 201 created, 200 replayed (finding 6).
    created = [r["status"] for r in hub.audit_rows() if r["operation"] == "create"]
    assert created == [201, 200, 201]


async def test_same_key_other_body_is_409_and_no_key_is_400(hub, upstream) -> None:
    key = hub.client()
    await create(hub, key)
    conflict = await create(hub, key, {**ORDER, "amount": 150001})
    assert conflict.status_code == 409 and conflict.json()["code"] == "IDEMPOTENCY_CONFLICT"
    missing = await create(hub, key, idem=None)
    assert missing.status_code == 400 and missing.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert len(upstream.inits) == 1


@pytest.mark.parametrize("amount", [0, -5, 1.5, "150000", 10**13, None, True])
async def test_amount_must_be_a_positive_whole_number_of_vnd(hub, upstream, amount) -> None:
    response = await create(hub, hub.client(), {**ORDER, "amount": amount})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "amount"
    assert upstream.inits == []


async def test_concurrent_first_uses_of_a_key_make_one_payment(hub, upstream) -> None:
    key = hub.client()
    responses = await asyncio.gather(*(create(hub, key) for _ in range(6)))
    ids = {r.json()["data"]["id"] for r in responses if r.status_code in (200, 201)}
    assert len(ids) == 1
    with hub.hub.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payments")).scalar() == 1


async def test_failed_init_is_retried_with_the_same_reference(hub, upstream) -> None:
    key = hub.client()
    upstream.init_error = UpstreamUnavailable()
    failed = await create(hub, key)
    assert failed.status_code == 503
    upstream.init_error = None
    retried = await create(hub, key)
    assert retried.status_code == 201
    assert [i["reference"] for i in upstream.inits] == [retried.json()["data"]["id"]] * 2
    assert upstream.inits[0]["created_at"] == upstream.inits[1]["created_at"]


async def test_verified_callback_settles_once_and_notifies(hub, upstream, receiver) -> None:
    key = hub.client()
    payment = (await create(hub, key, {**ORDER, "callback_url": "http://agency.test/hook"})).json()[
        "data"
    ]
    note = notification(payment)
    accepted = await ipn(hub, note)
    assert accepted.status_code == 200
    assert accepted.json()["data"] == {"id": payment["id"], "status": "paid", "applied": True}
    assert await status_of(hub, key, payment["id"]) == "paid"
    await hub.hub.worker.run_once()
    [(headers, raw)] = receiver.received
    assert headers["x-hub-event"] == "payment.paid"
    assert json.loads(raw)["data"]["paid_at"]

    replay = await ipn(hub, note)
    assert replay.status_code == 409 and replay.json()["code"] == "REPLAYED_MESSAGE"
    # The same news in a new message (upstream re-sent it) is acknowledged, changes nothing.
    resent = await ipn(
        hub, notification(payment, occurred_at=dt.datetime.now(dt.UTC).isoformat() + "")
    )
    assert resent.status_code in (200, 409)
    contradicting = await ipn(hub, notification(payment, status="failed", error_code="24"))
    assert contradicting.status_code == 409 and contradicting.json()["code"] == "PAYMENT_MISMATCH"
    await hub.hub.worker.run_once()
    assert len(receiver.received) == 1
    assert await status_of(hub, key, payment["id"]) == "paid"
    events = [(r["operation"], r["code"]) for r in hub.audit_rows() if r["operation"] == "callback"]
    assert ("callback", "OK") in events and ("callback", "REPLAYED_MESSAGE") in events


async def test_forged_mismatched_or_unknown_callbacks_change_nothing(hub, upstream) -> None:
    key = hub.client()
    payment = (await create(hub, key)).json()["data"]
    forged = await ipn(hub, notification(payment), signature="f" * 64)
    assert forged.status_code == 401 and forged.json()["code"] == "INVALID_SIGNATURE"
    cheaper = await ipn(hub, notification(payment, amount=1000))
    assert cheaper.status_code == 409 and cheaper.json()["code"] == "PAYMENT_MISMATCH"
    other_tx = await ipn(hub, notification(payment, transaction_id="T-other"))
    assert other_tx.status_code == 409
    unknown = await ipn(hub, notification(payment, reference="pay_unknown"))
    assert unknown.status_code == 404
    garbage = await ipn(hub, {"nothing": 1})
    assert garbage.status_code in (400, 422)
    assert await status_of(hub, key, payment["id"]) == "pending"
    with hub.hub.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbound_messages")).scalar() == 0


async def test_pending_payment_is_queried_when_no_callback_comes(hub, upstream, receiver) -> None:
    key = hub.client()
    payment = (await create(hub, key, {**ORDER, "callback_url": "http://agency.test/hook"})).json()[
        "data"
    ]
    assert await hub.hub.worker.run_once() == 0  # not due yet
    upstream.payments[payment["id"]]["status"] = "paid"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with hub.hub.engine.begin() as conn:
        conn.execute(text("UPDATE payments SET next_query_at = :t"), {"t": past})
    await hub.hub.worker.run_once()
    assert await status_of(hub, key, payment["id"]) == "paid"
    await hub.hub.worker.run_once()  # steps run side by side: the webhook goes on the next tick
    assert [json.loads(raw)["event"] for _, raw in receiver.received] == ["payment.paid"]


async def test_other_clients_cannot_read_a_payment(hub, upstream) -> None:
    payment = (await create(hub, hub.client())).json()["data"]
    response = await hub.http.get(
        f"/v1/payments/{payment['id']}", headers=hub.headers(hub.client())
    )
    assert response.status_code == 404


async def test_reconciliation_reports_each_kind_of_difference(hub, upstream) -> None:
    key = hub.client()
    ok = (await create(hub, key, idem="a")).json()["data"]
    wrong_status = (await create(hub, key, idem="b")).json()["data"]
    wrong_amount = (await create(hub, key, idem="c")).json()["data"]
    missing = (await create(hub, key, idem="d")).json()["data"]
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
    entry = {"amount": 150000, "status": "pending"}
    upstream.reconciliation = [
        {**entry, "reference": ok["id"], "transaction_id": ok["transaction_id"]},
        {**entry, "reference": wrong_status["id"], "transaction_id": "t", "status": "paid"},
        {**entry, "reference": wrong_amount["id"], "transaction_id": "t", "amount": 1},
        {**entry, "reference": "pay_elsewhere", "transaction_id": "t"},
    ]
    report = await hub.hub.payments.get().reconcile(today)
    assert not report.clean
    assert report.hub_count == 4 and report.upstream_count == 4
    assert [d["reference"] for d in report.status_mismatch] == [wrong_status["id"]]
    assert [d["reference"] for d in report.amount_mismatch] == [wrong_amount["id"]]
    assert [d["reference"] for d in report.missing_upstream] == [missing["id"]]
    assert [d["reference"] for d in report.unknown_to_hub] == ["pay_elsewhere"]


async def test_a_callback_and_a_query_settling_at_once_notify_once(hub, upstream) -> None:
    """The query read the payment as pending; the callback settles it before the query
    writes. The query's change is refused, and only one webhook is queued."""
    from sqlmodel import Session

    from hub.capabilities.payments.settle import settle
    from hub.core.models import Payment, utcnow

    key = hub.client()
    body = {**ORDER, "callback_url": "http://agency.test/hook"}
    payment = (await create(hub, key, body)).json()["data"]
    with Session(hub.hub.engine, expire_on_commit=False) as session:
        stale = session.get(Payment, payment["id"])
        assert stale is not None and stale.status == "pending"
        assert (await ipn(hub, notification(payment))).status_code == 200  # meanwhile
        assert settle(session, stale, "failed", None, utcnow()) is False
        session.commit()
    assert await status_of(hub, key, payment["id"]) == "paid"
    with hub.hub.engine.connect() as conn:
        events = conn.execute(text("SELECT event FROM webhook_deliveries")).scalars().all()
    assert events == ["payment.paid"]


def _age_payments(hub: RunningHub, **delta: float) -> None:
    then = dt.datetime.now(dt.UTC) - dt.timedelta(**delta)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with hub.hub.engine.begin() as conn:
        conn.execute(
            text("UPDATE payments SET created_at = :c, next_query_at = :q"), {"c": then, "q": past}
        )


async def test_a_payment_the_platform_lost_ends_failed(hub, upstream) -> None:
    key = hub.client()
    payment = (await create(hub, key)).json()["data"]
    upstream.payments.clear()
    _age_payments(hub, seconds=5)
    await hub.hub.worker.run_once()
    assert await status_of(hub, key, payment["id"]) == "pending"  # maybe the platform's lag
    _age_payments(hub, hours=2)
    await hub.hub.worker.run_once()
    assert await status_of(hub, key, payment["id"]) == "failed"


async def test_an_abandoned_payment_is_no_longer_queried(hub, upstream) -> None:
    key = hub.client()
    payment = (await create(hub, key)).json()["data"]
    _age_payments(hub, days=8)  # the payer never paid; the platform still says pending
    await hub.hub.worker.run_once()
    assert await status_of(hub, key, payment["id"]) == "pending"
    with hub.hub.engine.connect() as conn:
        assert conn.execute(text("SELECT next_query_at FROM payments")).scalar() is None
