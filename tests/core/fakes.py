"""In-memory stand-ins for an asynchronous and a payment adapter, and a webhook receiver.

They let the core's job, payment and webhook machinery be tested exactly (every upstream
answer chosen by the test); the real adapters against their mocks are tested elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.judicial_records.models import (
    CertificateApplication,
    CertificateStatus,
    CertificateStatusQuery,
    CertificateSubmission,
)
from hub.adapter import AsyncAdapter, CallContext, Health, PaymentProvider, operation
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
from hub.errors import InvalidSignature, NotFound, SchemaViolation

PUSH_KEY = b"fake-push-key"

CERTIFICATE = {
    "number": "25HN2013/00001",
    "issued_on": "2026-11-21",
    "certificate_type": 1,
    "has_criminal_record": False,
    "convictions": [],
    "pdf_base64": "JVBERi0xLjQK",
}


def push_signature(body: bytes) -> str:
    return hmac.new(PUSH_KEY, body, hashlib.sha256).hexdigest()


@dataclass
class FakeUpstream:
    """What the fake upstream systems hold; shared by every hub app built in a test."""

    requests: dict[str, str] = field(default_factory=dict)
    submit_error: Exception | None = None
    status_error: Exception | None = None
    submits: int = 0
    status_calls: int = 0
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    init_error: Exception | None = None
    inits: list[dict[str, Any]] = field(default_factory=list)
    reconciliation: list[dict[str, Any]] = field(default_factory=list)


UPSTREAM = FakeUpstream()


def reset() -> FakeUpstream:
    global UPSTREAM
    UPSTREAM.__init__()  # type: ignore[misc]
    return UPSTREAM


class FakeJudicialAdapter(AsyncAdapter):
    name = "judicial-records"
    version = "0.0.1"
    push_route = "/v1/judicial-records/results"

    @operation(idempotent=False, subject="personal_id", route="POST /v1/judicial-records/requests")
    async def submit(
        self, request: CertificateApplication, ctx: CallContext
    ) -> CertificateSubmission:
        """Submit."""
        UPSTREAM.submits += 1
        if UPSTREAM.submit_error is not None:
            raise UPSTREAM.submit_error
        reference = f"REF{len(UPSTREAM.requests) + 1:04d}"
        UPSTREAM.requests[reference] = "received"
        return CertificateSubmission(reference=reference, status="received")

    @operation(route="GET /v1/judicial-records/requests/{id}")
    async def status(self, request: CertificateStatusQuery, ctx: CallContext) -> CertificateStatus:
        """Status."""
        UPSTREAM.status_calls += 1
        if UPSTREAM.status_error is not None:
            raise UPSTREAM.status_error
        state = UPSTREAM.requests.get(request.reference)
        if state is None:
            raise NotFound()
        return CertificateStatus.model_validate(
            {
                "reference": request.reference,
                "status": state,
                "certificate": CERTIFICATE if state == "issued" else None,
            }
        )

    def parse_push(self, body: bytes, headers: Mapping[str, str]) -> CertificateStatus:
        if not hmac.compare_digest(headers.get("x-signature", ""), push_signature(body)):
            raise InvalidSignature()
        try:
            return CertificateStatus.model_validate(json.loads(body))
        except ValueError:
            raise SchemaViolation("bad push") from None

    async def health(self) -> Health:
        return Health(ok=True)


class FakePaymentAdapter(PaymentProvider):
    name = "payment"
    version = "0.0.2"

    @operation(idempotent=False, subject="payer_personal_id")
    async def init(self, request: PaymentOrder, ctx: CallContext) -> PaymentInitiated:
        """Init."""
        UPSTREAM.inits.append(request.model_dump(mode="json"))
        if UPSTREAM.init_error is not None:
            raise UPSTREAM.init_error
        transaction = "T-" + request.reference
        UPSTREAM.payments.setdefault(
            request.reference, {"status": "pending", "amount": request.amount, "tx": transaction}
        )
        return PaymentInitiated(
            reference=request.reference,
            transaction_id=transaction,
            pay_url=f"http://pay.test/{transaction}",
        )

    @operation(personal_data=False)
    async def query(self, request: PaymentStatusQuery, ctx: CallContext) -> PaymentStatus:
        """Query."""
        found = UPSTREAM.payments.get(request.reference)
        if found is None:
            raise NotFound()
        return PaymentStatus(
            reference=request.reference,
            transaction_id=found["tx"],
            status=found["status"],
            amount=found["amount"],
        )

    @operation()
    async def receipt(self, request: ReceiptQuery, ctx: CallContext) -> Receipt:
        """Receipt."""
        if UPSTREAM.payments.get(request.reference, {}).get("status") != "paid":
            raise NotFound()
        return Receipt(reference=request.reference, number="R-1", pdf_base64="JVBERi0xLjQK")

    @operation(personal_data=False)
    async def reconciliation(
        self, request: ReconciliationQuery, ctx: CallContext
    ) -> ReconciliationList:
        """Reconciliation."""
        return ReconciliationList.model_validate(
            {"date": request.date, "entries": UPSTREAM.reconciliation}
        )

    def parse_notification(self, body: bytes, headers: Mapping[str, str]) -> PaymentNotification:
        if not hmac.compare_digest(headers.get("x-signature", ""), push_signature(body)):
            raise InvalidSignature()
        return PaymentNotification.model_validate(json.loads(body))

    async def health(self) -> Health:
        return Health(ok=True)


@dataclass
class WebhookReceiver:
    """An agency's webhook endpoint: records what arrives, answers the statuses queued."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])
