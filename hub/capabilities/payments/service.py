"""Payments, owned by the hub, through any payment provider (hub.adapter.PaymentProvider).

- create: `POST /v1/payments` with an `Idempotency-Key`. The same key and body give the
  same payment; the same key with another body is 409. The payment row (its id is the
  reference sent upstream, e.g. MaThamChieu) is written *before* upstream's INIT; if INIT
  fails the row stays `initiating` and a retry with the same key and body re-sends INIT
  with the same reference, which the provider treats as the same transaction.
- callback (IPN): verified by the adapter (checksum in constant time, partner, timestamp),
  then checked here against the payment (provider, reference, amount, transaction id) and
  applied once: a byte-identical replay is refused, news of an outcome already applied
  changes nothing, a contradicting outcome is refused. State change, replay digest and the
  client's webhook commit together (hub.capabilities.payments.settle).
- no callback: pending payments are queried upstream in the background with back-off
  (hub.capabilities.payments.queries).
- reconciliation: upstream's daily list against the hub's payments (`hub payments
  reconcile`, hub.capabilities.payments.reconcile).

Upstream's answers reach the hub whole; the payment's view, answered by the routes and sent
in the webhook, and the receipt are cut to the client's field grant (hub.security.fields).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hub.adapter import PaymentProvider
from hub.canonical.common import INVALID_PERSONAL_ID_ERROR
from hub.capabilities.payments.queries import PendingQueries
from hub.capabilities.payments.reconcile import ReconciliationReport, reconcile
from hub.capabilities.payments.settle import settle
from hub.capabilities.payments.views import PaymentRequest, check_key, payment_view
from hub.capabilities.webhooks import check_callback_url
from hub.core.gateway import CallerHeaders, CallResult, Gateway
from hub.core.models import InboundMessage, Payment, iso, utcnow
from hub.errors import (
    HubError,
    IdempotencyConflict,
    InvalidPersonalId,
    NotFound,
    PaymentMismatch,
    ReplayedMessage,
    SchemaViolation,
)
from hub.security.auth import Principal

log = logging.getLogger("hub.payments")


class PaymentService:
    """The hub's side of every payment through one provider (a PaymentProvider adapter,
    `service`): create, view, receipt, callback, background queries and reconciliation."""

    def __init__(
        self,
        gateway: Gateway,
        engine: Engine,
        *,
        service: str,
        https_callbacks_only: bool,
        query_after_s: float,
        public_callbacks_only: bool = False,
        query_max_s: float,
        lost_after_s: float = 3600.0,
        query_until_s: float = 7 * 86400.0,
        batch: int = 20,
    ) -> None:
        self.gateway, self.engine, self.service = gateway, engine, service
        self.https_callbacks_only = https_callbacks_only
        self.public_callbacks_only = public_callbacks_only
        self.query_after_s = query_after_s
        self.queries = PendingQueries(
            gateway,
            engine,
            service,
            query_after_s=query_after_s,
            query_max_s=query_max_s,
            lost_after_s=lost_after_s,
            query_until_s=query_until_s,
            batch=batch,
        )

    async def query_once(self) -> int:
        """Query upstream about due pending payments (no callback came); returns how many."""
        return await self.queries.run_once()

    async def reconcile(self, day: dt.date) -> ReconciliationReport:
        """Compare the provider's list for `day` (Vietnam time) with the hub's payments."""
        return await reconcile(self.gateway, self.engine, self.service, day)

    # -- create ------------------------------------------------------------------------------

    async def create(
        self,
        caller: CallerHeaders,
        principal: Principal,
        idempotency_key: str | None,
        body: Any,
    ) -> tuple[dict[str, Any], bool]:
        """Open (or find again) the payment for this key; returns (view, created_now)."""
        key = check_key(idempotency_key)
        if not isinstance(body, dict):
            raise SchemaViolation("the request body must be a JSON object")
        try:
            request = PaymentRequest.model_validate(body)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False, include_context=False)
            if any(e["type"] == INVALID_PERSONAL_ID_ERROR for e in errors):
                raise InvalidPersonalId("payer_personal_id is not a valid personal ID") from None
            raise SchemaViolation.from_errors(errors) from None
        check_callback_url(request.return_url, https_only=False)
        check_callback_url(
            request.callback_url,
            https_only=self.https_callbacks_only,
            public_only=self.public_callbacks_only,
        )
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        payment = await asyncio.to_thread(self._reserve, principal.client_id, key, digest, request)
        fields = principal.fields_for(self.service)
        if payment.status != "initiating":
            return payment_view(payment, fields), False
        order = {
            "reference": payment.id,
            "amount": request.amount,
            "description": request.description,
            "procedure_code": request.procedure_code,
            "dossier_id": request.dossier_id,
            "payer_name": request.payer_name,
            "payer_personal_id": request.payer_personal_id,
            "created_at": iso(payment.created_at),
            "return_url": request.return_url,
        }
        try:
            # Whole (trim=False): the hub keeps the transaction id and the pay URL whatever
            # the client's field grant; the payment's view it answers is cut to that grant.
            result = await self.gateway.call(
                caller,
                self.service,
                "init",
                order,
                principal=principal,
                authorize=False,
                trim=False,
            )
        except HubError as exc:
            await asyncio.to_thread(self._init_failed, payment.id, exc.code)
            raise
        return await asyncio.to_thread(self._initiated, payment.id, result.data, fields), True

    def _reserve(self, client_id: str, key: str, digest: str, request: PaymentRequest) -> Payment:
        for _ in range(2):  # a concurrent first use of the key may win the insert
            with Session(self.engine, expire_on_commit=False) as session:
                found = session.exec(
                    select(Payment)
                    .where(Payment.client_id == client_id)
                    .where(Payment.idempotency_key == key)
                ).first()
                if found is not None:
                    if found.request_hash != digest or found.service != self.service:
                        raise IdempotencyConflict(
                            "this Idempotency-Key was used with a different request body "
                            "or payment provider"
                        )
                    session.expunge(found)
                    return found
                payment = Payment(
                    id="pay_" + secrets.token_hex(10),
                    service=self.service,
                    client_id=client_id,
                    idempotency_key=key,
                    request_hash=digest,
                    status="initiating",
                    amount=request.amount,
                    description=request.description,
                    procedure_code=request.procedure_code,
                    dossier_id=request.dossier_id,
                    callback_url=request.callback_url,
                )
                session.add(payment)
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue
                session.refresh(payment)
                session.expunge(payment)
                return payment
        raise IdempotencyConflict("this Idempotency-Key is being used by a concurrent request")

    def _init_failed(self, payment_id: str, code: str) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            payment = session.get(Payment, payment_id)
            if payment is not None and payment.status == "initiating":
                payment.last_error, payment.updated_at = code, utcnow()
                session.add(payment)
                session.commit()

    def _initiated(
        self, payment_id: str, data: dict[str, Any], fields: tuple[str, ...] | None
    ) -> dict[str, Any]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            payment = session.get(Payment, payment_id)
            if payment is None:  # pragma: no cover - rows are never deleted
                raise NotFound("no such payment")
            if payment.status == "initiating":
                payment.status = "pending"
                payment.transaction_id = str(data["transaction_id"])
                payment.pay_url = str(data["pay_url"])
                payment.last_error = None
                payment.updated_at = now
                payment.next_query_at = now + dt.timedelta(seconds=self.query_after_s)
                session.add(payment)
                session.commit()
                session.refresh(payment)
            return payment_view(payment, fields)

    # -- view ---------------------------------------------------------------------------------

    def view(self, principal: Principal, payment: Payment | None) -> dict[str, Any]:
        """A client's own payment (None, or another client's, is 404), cut to its field
        grant. The routes read the payment once, to know its provider (Payments.of_payment)."""
        if payment is None or not self._owns(payment, principal):
            raise NotFound("no such payment")
        return payment_view(payment, principal.fields_for(self.service))

    async def receipt(
        self, caller: CallerHeaders, principal: Principal, payment: Payment | None
    ) -> CallResult:
        """The platform's receipt of one of this client's paid payments (as the route read
        it): upstream's answer goes to the client as it is, so the pipeline cuts it to the
        client's field grant."""

        async def reference() -> dict[str, str]:  # after the grant and purpose checks
            if payment is None or not self._owns(payment, principal):
                raise NotFound("no such payment")
            if payment.status != "paid":
                raise NotFound("there is no receipt: the payment is not paid")
            return {"reference": payment.id}

        return await self.gateway.call(
            caller, self.service, "receipt", reference, principal=principal
        )

    def _owns(self, payment: Payment, principal: Principal) -> bool:
        return payment.client_id == principal.client_id and payment.service == self.service

    # -- callback -----------------------------------------------------------------------------

    async def accept_callback(
        self, request_id: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """Verify and apply the platform's IPN; raises for anything not to be applied."""
        adapter = self.gateway.registry.get(self.service).instance
        assert isinstance(adapter, PaymentProvider)  # only providers get a PaymentService
        try:
            try:
                note = adapter.parse_notification(body, headers)
            except (ValidationError, ValueError):  # an adapter that let a parse error out
                raise SchemaViolation("the callback does not have the expected shape") from None
        except HubError as exc:
            log.warning("payment callback refused: %s", exc.code)
            raise
        data = note.model_dump(mode="json")
        signed = data.get("message_id")
        digest = hashlib.sha256(signed.encode() if signed else body).hexdigest()
        payment, changed, error = await asyncio.to_thread(self._apply, data, digest)
        if payment is not None:
            await self.gateway.record_event(
                CallerHeaders(request_id=request_id, authorization=None),
                payment.client_id,
                self.service,
                "callback",
                error=error,
            )
        if error is not None:
            log.warning("payment callback not applied: %s", error.code)
            raise error
        assert payment is not None
        return {"id": payment.id, "status": payment.status, "applied": changed}

    def _apply(
        self, note: dict[str, Any], digest: str
    ) -> tuple[Payment | None, bool, HubError | None]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            payment = session.get(Payment, str(note["reference"])[:40])
            if payment is None or payment.service != self.service:  # not the provider's
                return None, False, NotFound("no payment with that reference")
            session.expunge(payment)
            seen = session.exec(
                select(InboundMessage.id)
                .where(InboundMessage.source == self.service)
                .where(InboundMessage.digest == digest)
            ).first()
            if seen is not None:
                return payment, False, ReplayedMessage("this callback was already received")
            if note["amount"] != payment.amount or (
                payment.transaction_id is not None
                and note["transaction_id"] != payment.transaction_id
            ):
                return payment, False, PaymentMismatch("amount or transaction does not match")
            if payment.status in ("paid", "failed"):
                if payment.status == note["status"]:
                    return payment, False, None  # the same news again: nothing to do
                return payment, False, PaymentMismatch("the payment is already settled")
            session.add(payment)
            session.add(InboundMessage(source=self.service, digest=digest))
            if not settle(session, payment, note["status"], note.get("transaction_id"), now):
                # Settled by a query or another callback since it was read: as above.
                session.rollback()
                settled = session.get(Payment, payment.id, populate_existing=True)
                assert settled is not None
                session.expunge(settled)
                if settled.status == note["status"]:
                    return settled, False, None
                return settled, False, PaymentMismatch("the payment is already settled")
            session.commit()
            session.refresh(payment)
            session.expunge(payment)
            return payment, True, None
