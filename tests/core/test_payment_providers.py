"""Payments are a capability: any number of PaymentProvider adapters, none named by the core.

A throwaway second provider (a bank gateway, defined here and installed beside the fake
platform) gets the whole payment machinery with no core edit: opened through `POST
/v1/payments` by the body's `provider`, read back from the provider it was opened through,
its callback at `/v1/payments/ipn/{name}`, its own reconciliation. A provider's callback
never settles another provider's payment, and an adapter that breaks the contract, or a
set-up that leaves the default provider ambiguous, stops the hub at start-up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from hub.adapter import CallContext, Health, PaymentProvider, operation
from hub.app import create_app
from hub.capabilities.payments.models import (
    PaymentInitiated,
    PaymentNotification,
    PaymentOrder,
    PaymentStatus,
    PaymentStatusQuery,
    Receipt,
    ReceiptQuery,
    ReconciliationList,
    ReconciliationQuery,
)
from hub.core.config import Settings
from hub.core.registry import AdapterLoadError
from hub.errors import InvalidSignature, NotFound
from tests.conftest import RunningHub, running_hub
from tests.core import fakes
from tests.core.fakes import FakePaymentAdapter, WebhookReceiver, push_signature
from tests.core.test_payments import ORDER, notification

BANK_KEY = b"bank-gateway-key"
BANK: dict[str, dict[str, Any]] = {}  # the bank gateway's own transactions, by reference


def bank_signature(body: bytes) -> str:
    return hmac.new(BANK_KEY, body, hashlib.sha256).hexdigest()


class BankGateway(PaymentProvider):
    """A second provider, as an outside package would ship it."""

    name = "bank-gateway"
    version = "0.1.0"

    @operation(idempotent=False, subject="payer_personal_id")
    async def init(self, request: PaymentOrder, ctx: CallContext) -> PaymentInitiated:
        """Open a payment at the bank."""
        BANK[request.reference] = {"status": "pending", "amount": request.amount}
        return PaymentInitiated(
            reference=request.reference,
            transaction_id="B-" + request.reference,
            pay_url=f"http://bank.test/pay/{request.reference}",
        )

    @operation(personal_data=False)
    async def query(self, request: PaymentStatusQuery, ctx: CallContext) -> PaymentStatus:
        """A payment's state at the bank."""
        found = BANK.get(request.reference)
        if found is None:
            raise NotFound()
        return PaymentStatus(
            reference=request.reference,
            transaction_id="B-" + request.reference,
            status=found["status"],
            amount=found["amount"],
        )

    @operation()
    async def receipt(self, request: ReceiptQuery, ctx: CallContext) -> Receipt:
        """The bank's receipt."""
        return Receipt(reference=request.reference, number="BANK-1", pdf_base64="JVBERi0xLjQK")

    @operation(personal_data=False)
    async def reconciliation(
        self, request: ReconciliationQuery, ctx: CallContext
    ) -> ReconciliationList:
        """The bank's list of a day."""
        entries = [
            {"reference": ref, "transaction_id": "B-" + ref, **state} for ref, state in BANK.items()
        ]
        return ReconciliationList.model_validate({"date": request.date, "entries": entries})

    def parse_notification(self, body: bytes, headers: Mapping[str, str]) -> PaymentNotification:
        if not hmac.compare_digest(headers.get("x-bank-signature", ""), bank_signature(body)):
            raise InvalidSignature()
        return PaymentNotification.model_validate(json.loads(body))

    async def health(self) -> Health:
        return Health(ok=True)


@pytest.fixture
def upstream() -> fakes.FakeUpstream:
    BANK.clear()
    return fakes.reset()


@pytest.fixture
async def hub(settings: Settings, upstream: fakes.FakeUpstream) -> AsyncIterator[RunningHub]:
    settings.adapters = {
        "payment": {"base_url": "http://unused.test"},
        "bank-gateway": {"base_url": "http://unused.test"},
    }
    settings.payment_provider = "payment"
    async with running_hub(
        settings,
        adapters=[FakePaymentAdapter, BankGateway],
        webhook_transport=httpx.ASGITransport(app=WebhookReceiver().app()),
    ) as running:
        yield running


async def open_payment(
    hub: RunningHub, key: str, idem: str, provider: str | None = None
) -> dict[str, Any]:
    headers = {**hub.headers(key), "idempotency-key": idem}
    params = {"provider": provider} if provider else {}
    response = await hub.http.post("/v1/payments", json=ORDER, params=params, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def callback(hub: RunningHub, path: str, payload: dict[str, Any], header: str, sign: Any):
    body = json.dumps(payload).encode()
    return await hub.http.post(path, content=body, headers={header: sign(body)})


async def test_each_payment_goes_through_the_provider_it_names(hub, upstream) -> None:
    key = hub.client()
    default = await open_payment(hub, key, "a")
    bank = await open_payment(hub, key, "b", provider="bank-gateway")
    assert default["provider"] == "payment" and bank["provider"] == "bank-gateway"
    assert default["pay_url"].startswith("http://pay.test/")
    assert bank["pay_url"] == f"http://bank.test/pay/{bank['id']}"
    assert [i["reference"] for i in upstream.inits] == [default["id"]]
    assert list(BANK) == [bank["id"]]
    read = await hub.http.get(f"/v1/payments/{bank['id']}", headers=hub.headers(key))
    assert read.status_code == 200 and read.json()["data"]["provider"] == "bank-gateway"
    assert read.json()["meta"]["service"] == "bank-gateway"

    rows = [r for r in hub.audit_rows() if r["operation"] in ("create", "init")]
    assert [(r["service"], r["operation"]) for r in rows] == [
        ("payment", "init"),  # the upstream call inside is recorded first
        ("payment", "create"),
        ("bank-gateway", "init"),
        ("bank-gateway", "create"),
    ]


async def test_a_providers_callback_settles_only_its_own_payments(hub, upstream) -> None:
    key = hub.client()
    default = await open_payment(hub, key, "a")
    bank = await open_payment(hub, key, "b", provider="bank-gateway")

    # The bank's (validly signed) callback naming the platform's payment changes nothing.
    wrong = await callback(
        hub,
        "/v1/payments/ipn/bank-gateway",
        notification(default),
        "x-bank-signature",
        bank_signature,
    )
    assert wrong.status_code == 404 and wrong.json()["code"] == "NOT_FOUND"
    # The platform's signature is no good at the bank's endpoint, nor the bank's at the
    # default endpoint.
    forged = await callback(
        hub,
        "/v1/payments/ipn/bank-gateway",
        notification(bank),
        "x-bank-signature",
        push_signature,
    )
    assert forged.status_code == 401
    misrouted = await callback(
        hub, "/v1/payments/ipn", notification(bank), "x-signature", bank_signature
    )
    assert misrouted.status_code == 401

    settled = await callback(
        hub,
        "/v1/payments/ipn/bank-gateway",
        notification(bank),
        "x-bank-signature",
        bank_signature,
    )
    assert settled.json()["data"] == {"id": bank["id"], "status": "paid", "applied": True}
    states = {}
    for payment in (default, bank):
        answer = await hub.http.get(f"/v1/payments/{payment['id']}", headers=hub.headers(key))
        states[payment["provider"]] = answer.json()["data"]["status"]
    assert states == {"payment": "pending", "bank-gateway": "paid"}


async def test_unknown_or_non_provider_names_are_404_and_change_nothing(hub, upstream) -> None:
    key = hub.client()
    headers = {**hub.headers(key), "idempotency-key": "x"}
    for name in ("nowhere", "x" * 2000):
        answer = await hub.http.post(
            "/v1/payments", json=ORDER, params={"provider": name}, headers=headers
        )
        assert answer.status_code == 404 and answer.json()["code"] == "UNKNOWN_SERVICE"
        assert "x" * 100 not in answer.text  # the caller's text is not echoed
    # The provider is named in the URL only: the body is the payment, as before.
    in_body = await hub.http.post(
        "/v1/payments", json={**ORDER, "provider": "bank-gateway"}, headers=headers
    )
    assert in_body.status_code == 422
    answer = await callback(hub, "/v1/payments/ipn/nowhere", {}, "x-signature", push_signature)
    assert answer.status_code == 404 and answer.json()["code"] == "UNKNOWN_SERVICE"
    assert upstream.inits == [] and BANK == {}
    with hub.hub.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM payments").scalar() == 0


async def test_each_provider_reconciles_its_own_payments(hub, upstream) -> None:
    key = hub.client()
    await open_payment(hub, key, "a")
    bank = await open_payment(hub, key, "b", provider="bank-gateway")
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
    report = await hub.hub.payments.get("bank-gateway").reconcile(today)
    assert report.clean and report.hub_count == 1 and report.upstream_count == 1
    assert [p.service for p in hub.hub.payments] == ["payment", "bank-gateway"]
    assert bank["id"] in BANK


def test_several_providers_and_no_default_stop_the_hub(settings) -> None:
    settings.adapters = {
        "payment": {"base_url": "http://u.test"},
        "bank-gateway": {"base_url": "http://u.test"},
    }
    with pytest.raises(AdapterLoadError, match="HUB_PAYMENT_PROVIDER"):
        create_app(settings, adapters=[FakePaymentAdapter, BankGateway])
    settings.payment_provider = "nowhere"
    with pytest.raises(AdapterLoadError, match="not an installed payment provider"):
        create_app(settings, adapters=[FakePaymentAdapter, BankGateway])


async def test_the_only_provider_is_the_default(settings, upstream) -> None:
    settings.adapters = {"bank-gateway": {"base_url": "http://u.test"}}
    async with running_hub(settings, adapters=[BankGateway]) as hub:
        payment = await open_payment(hub, hub.client(), "a")
        assert payment["provider"] == "bank-gateway"
        settled = await callback(
            hub, "/v1/payments/ipn", notification(payment), "x-bank-signature", bank_signature
        )
        assert settled.json()["data"]["status"] == "paid"


def test_a_provider_that_breaks_the_contract_is_refused(settings) -> None:
    class NoReceipt(PaymentProvider):
        name = "no-receipt"
        version = "0.1.0"
        init = BankGateway.init
        query = BankGateway.query
        reconciliation = BankGateway.reconciliation

    class WrongModels(BankGateway):
        name = "wrong-models"

        @operation(personal_data=False)
        async def query(self, request: ReceiptQuery, ctx: CallContext) -> Receipt:  # type: ignore[override]
            """Not a status query."""
            raise NotImplementedError

    settings.adapters = {"no-receipt": {"base_url": "http://u.test"}}
    with pytest.raises(AdapterLoadError, match="'receipt' is required and missing"):
        create_app(settings, adapters=[NoReceipt])
    settings.adapters = {"wrong-models": {"base_url": "http://u.test"}}
    with pytest.raises(AdapterLoadError, match="'query' must take PaymentStatusQuery"):
        create_app(settings, adapters=[WrongModels])


async def test_nothing_of_the_body_is_read_before_authentication(hub, upstream) -> None:
    """The provider comes from the URL, so the body is still read only after the caller is
    authenticated and its grant and purpose checked: a stranger's bad JSON is a 401."""
    answer = await hub.http.post(
        "/v1/payments?provider=bank-gateway",
        content=b"{not json",
        headers={"idempotency-key": "k", "content-type": "application/json"},
    )
    assert answer.status_code == 401
    key = hub.client()
    no_purpose = await hub.http.post(
        "/v1/payments",
        content=b"{not json",
        headers={**hub.headers(key, purpose=None), "idempotency-key": "k"},
    )
    assert no_purpose.json()["code"] == "PURPOSE_REQUIRED"


async def test_one_key_cannot_open_the_same_payment_at_two_providers(hub, upstream) -> None:
    key = hub.client()
    first = await open_payment(hub, key, "same")
    headers = {**hub.headers(key), "idempotency-key": "same"}
    again = await hub.http.post(
        "/v1/payments", json=ORDER, params={"provider": "bank-gateway"}, headers=headers
    )
    assert again.status_code == 409 and again.json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert BANK == {} and [i["reference"] for i in upstream.inits] == [first["id"]]
