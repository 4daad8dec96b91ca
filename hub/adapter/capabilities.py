"""The capability bases: adapters whose upstream the core serves the same way for each.

`AsyncAdapter` (an upstream that answers later: the core keeps each request as a job) and
`PaymentProvider` (a payment platform or bank gateway: the core owns each payment). Each
names the operations its subclasses must declare (`required_operations`).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from typing import ClassVar

from pydantic import BaseModel

from hub.adapter.base import Adapter
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
from hub.events import EventType, PaymentSettled, RequestEnded

__all__ = ["AsyncAdapter", "PaymentProvider"]


class AsyncAdapter(Adapter):
    """An adapter whose upstream answers later: a capability the core serves for any of them.

    Declare a `submit` operation (starts a request upstream; its answer names upstream's
    `reference`) and a `status` operation (reads a request's state; its answer has
    `reference` and `status`), and implement `parse_push`. The core then keeps each request
    as a job owned by the client that made it (hub.capabilities.jobs): it serves
    `POST /v1/jobs/{name}` (submit, 202), `GET /v1/jobs/{name}/{job_id}` (the job, with the
    result once final) and `POST /v1/jobs/{name}/results` (upstream's signed push, no API
    key), polls jobs no push has finished, and notifies the client's `callback_url` by a
    signed webhook. `route=` on `submit` and `status` keeps the generic call route off them.
    """

    required_operations: ClassVar[
        MappingABC[str, tuple[type[BaseModel], type[BaseModel]] | None]
    ] = {"submit": None, "status": None}
    #: Where upstream pushes results, beside `POST /v1/jobs/{name}/results` (optional; e.g.
    #: the path the real system is configured to call).
    push_route: ClassVar[str | None] = None
    #: The statuses that end a job (after them, nothing is polled or applied).
    final_statuses: ClassVar[frozenset[str]] = frozenset(
        {"issued", "rejected", "completed", "failed"}
    )
    #: The events a request's end publishes to its owner, by final status: `{"issued":
    #: "certificate-issued"}`, each declared in `event_types` with `source="push"` and the
    #: payload hub.events.RequestEnded (subject `personal_id`).
    final_events: ClassVar[MappingABC[str, str]] = {}

    @classmethod
    def contract_problems(cls) -> list[str]:
        problems = super().contract_problems()
        declared = {e.name: e for e in cls.event_types}
        for status, name in cls.final_events.items():
            kind = declared.get(name)
            if status not in cls.final_statuses:
                problems.append(f"final_events: {status!r} is not a final status")
            if kind is None or kind.source != "push" or kind.payload is not RequestEnded:
                problems.append(
                    f"final_events: {name!r} must be a push event type with RequestEnded"
                )
        return problems

    def parse_push(self, body: bytes, headers: MappingABC[str, str]) -> BaseModel:
        """Verify and read a result upstream pushed to the hub: the model `status` answers.

        Raise `hub.errors.InvalidSignature` (or StaleMessage) for a push that does not
        verify and `SchemaViolation` for one that is not a result; replays are the core's
        business. The answer's `reference` names the job (or `portal_reference`, the job id
        the adapter sent upstream as `CallContext.correlation_id`)."""
        raise NotImplementedError


class PaymentProvider(Adapter):
    """A payment platform or bank gateway: a capability the core serves for any of them.

    Declare the four operations below with the canonical payment models
    (hub.capabilities.payments.models) and implement `parse_notification`. The core owns
    each payment (hub.capabilities.payments): the Idempotency-Key, the reference sent upstream, the
    verified callback applied once, background queries when no callback comes, the
    client's signed webhook and the daily reconciliation (`hub payments reconcile
    --provider NAME`). Agencies reach every provider through `POST /v1/payments` (its body's
    `provider`, or HUB_PAYMENT_PROVIDER's by default); the provider's callback lands at
    `POST /v1/payments/ipn/{name}` (and the default provider's at `/v1/payments/ipn`).

    - `init(PaymentOrder) -> PaymentInitiated`: open a payment; the payer goes to `pay_url`.
    - `query(PaymentStatusQuery) -> PaymentStatus`: its state upstream.
    - `receipt(ReceiptQuery) -> Receipt`: the receipt of a paid payment.
    - `reconciliation(ReconciliationQuery) -> ReconciliationList`: a day's transactions.
    """

    #: `NAME:settled`, published to the paying client when a payment reaches its outcome.
    event_types = (
        EventType(
            "settled",
            payload=PaymentSettled,
            summary="A payment was paid or failed (to the client that opened it)",
            personal_data=False,
            source="push",
        ),
    )
    required_operations: ClassVar[
        MappingABC[str, tuple[type[BaseModel], type[BaseModel]] | None]
    ] = {
        "init": (PaymentOrder, PaymentInitiated),
        "query": (PaymentStatusQuery, PaymentStatus),
        "receipt": (ReceiptQuery, Receipt),
        "reconciliation": (ReconciliationQuery, ReconciliationList),
    }

    def parse_notification(self, body: bytes, headers: MappingABC[str, str]) -> PaymentNotification:
        """Verify and read the provider's callback (IPN).

        Raise `hub.errors.InvalidSignature` (or StaleMessage) for one that does not verify
        and `SchemaViolation` for one that is not a notification. Replays, and the match
        with the payment (reference, amount, transaction), are the core's business."""
        raise NotImplementedError
