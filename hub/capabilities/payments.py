"""Payments through the national public-service payment platform, owned by the hub.

- create: `POST /v1/payments` with an `Idempotency-Key`. The same key and body give the
  same payment; the same key with another body is 409. The payment row (its id is the
  reference sent upstream, MaThamChieu) is written *before* upstream's INIT; if INIT fails the
  row stays `initiating` and a retry with the same key and body re-sends INIT with the same
  reference, which the platform treats as the same transaction.
- callback (IPN): verified by the adapter (checksum in constant time, partner, timestamp),
  then checked here against the payment (reference, amount, transaction id) and applied
  once: a byte-identical replay is refused, news of an outcome already applied changes
  nothing, a contradicting outcome is refused. State change, replay digest and the client's
  webhook commit together.
- no callback: pending payments are queried upstream in the background with back-off.
- reconciliation: upstream's daily list against the hub's payments (`hub payments reconcile`).

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
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import Field, ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.canonical.common import INVALID_PERSONAL_ID_ERROR, CanonicalModel, PersonalIdStr
from hub.canonical.payment import MAX_AMOUNT_VND
from hub.capabilities.webhooks import check_callback_url, enqueue, lease, unleased
from hub.core.gateway import CallerHeaders, CallResult, Gateway
from hub.core.models import InboundMessage, Payment, utcnow
from hub.errors import (
    BadRequest,
    HubError,
    IdempotencyConflict,
    IdempotencyKeyRequired,
    InvalidPersonalId,
    NotFound,
    PaymentMismatch,
    ReplayedMessage,
    SchemaViolation,
)
from hub.resilience.retry import doubling_delay
from hub.security.auth import Principal
from hub.security.fields import granted_fields, trim_view

log = logging.getLogger("hub.payments")

SERVICE = "payment"
VIETNAM = dt.timezone(dt.timedelta(hours=7))
_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


class PaymentRequest(CanonicalModel):
    """What an agency sends to open a payment (`POST /v1/payments`)."""

    amount: int = Field(gt=0, le=MAX_AMOUNT_VND, strict=True, description="Whole VND")
    currency: str = Field("VND", pattern="^VND$")
    description: str = Field(min_length=1, max_length=200)
    procedure_code: str = Field(min_length=1, max_length=50, description="MaTTHC")
    dossier_id: str = Field(min_length=1, max_length=50, description="MaHoSo")
    payer_name: str = Field(min_length=1, max_length=100)
    payer_personal_id: PersonalIdStr | None = None
    return_url: str | None = Field(None, max_length=500)
    callback_url: str | None = Field(None, max_length=500, description="Webhook for the outcome")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    aware = _aware(value)
    return None if aware is None else aware.isoformat()


#: The keys of a payment's view that are the hub's own bookkeeping, or what the client
#: itself sent, kept whatever its field grant; the others (`transaction_id`, `pay_url`)
#: are upstream's canonical fields, cut with it (hub.security.fields).
PAYMENT_HUB_KEYS = frozenset(
    {
        "id",
        "status",
        "amount",
        "currency",
        "description",
        "procedure_code",
        "dossier_id",
        "callback_url",
        "created_at",
        "updated_at",
        "paid_at",
    }
)


def payment_view(payment: Payment, fields: tuple[str, ...] | None) -> dict[str, Any]:
    """A payment as its client sees it, cut to the client's field grant for the service
    (`fields`; None: in full)."""
    view = {
        "id": payment.id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "description": payment.description,
        "procedure_code": payment.procedure_code,
        "dossier_id": payment.dossier_id,
        "transaction_id": payment.transaction_id,
        "pay_url": payment.pay_url,
        "callback_url": payment.callback_url,
        "created_at": _iso(payment.created_at),
        "updated_at": _iso(payment.updated_at),
        "paid_at": _iso(payment.paid_at),
    }
    return trim_view(view, fields, hub_keys=PAYMENT_HUB_KEYS)


@dataclass
class ReconciliationReport:
    """Differences between the hub's payments and upstream's list for one day."""

    date: dt.date
    hub_count: int = 0
    upstream_count: int = 0
    unknown_to_hub: list[dict[str, Any]] = field(default_factory=list)
    missing_upstream: list[dict[str, Any]] = field(default_factory=list)
    status_mismatch: list[dict[str, Any]] = field(default_factory=list)
    amount_mismatch: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.unknown_to_hub
            or self.missing_upstream
            or self.status_mismatch
            or self.amount_mismatch
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "clean": self.clean,
            "hub_count": self.hub_count,
            "upstream_count": self.upstream_count,
            "unknown_to_hub": self.unknown_to_hub,
            "missing_upstream": self.missing_upstream,
            "status_mismatch": self.status_mismatch,
            "amount_mismatch": self.amount_mismatch,
        }


class PaymentService:
    """The hub's side of every payment."""

    def __init__(
        self,
        gateway: Gateway,
        engine: Any,
        *,
        https_callbacks_only: bool,
        query_after_s: float,
        public_callbacks_only: bool = False,
        query_max_s: float,
        lost_after_s: float = 3600.0,
        query_until_s: float = 7 * 86400.0,
        batch: int = 20,
    ) -> None:
        self.gateway, self.engine = gateway, engine
        self.https_callbacks_only = https_callbacks_only
        self.public_callbacks_only = public_callbacks_only
        self.query_after_s, self.query_max_s, self.batch = query_after_s, query_max_s, batch
        self.lost_after_s, self.query_until_s = lost_after_s, query_until_s

    # -- create ------------------------------------------------------------------------------

    async def create(
        self,
        caller: CallerHeaders,
        principal: Principal,
        idempotency_key: str | None,
        body: Any,
    ) -> tuple[dict[str, Any], bool]:
        """Open (or find again) the payment for this key; returns (view, created_now)."""
        key = _check_key(idempotency_key)
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
        fields = principal.fields_for(SERVICE)
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
            "created_at": _iso(payment.created_at),
            "return_url": request.return_url,
        }
        try:
            # Whole (trim=False): the hub keeps the transaction id and the pay URL whatever
            # the client's field grant; the payment's view it answers is cut to that grant.
            result = await self.gateway.call(
                caller, SERVICE, "init", order, principal=principal, authorize=False, trim=False
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
                    if found.request_hash != digest:
                        raise IdempotencyConflict(
                            "this Idempotency-Key was used with a different request body"
                        )
                    session.expunge(found)
                    return found
                payment = Payment(
                    id="pay_" + secrets.token_hex(10),
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

    async def view(self, principal: Principal, payment_id: str) -> dict[str, Any]:
        """A client's own payment (another client's is 404), cut to its field grant."""
        payment = await asyncio.to_thread(self._get, payment_id)
        if payment is None or payment.client_id != principal.client_id:
            raise NotFound("no such payment")
        return payment_view(payment, principal.fields_for(SERVICE))

    async def receipt(
        self, caller: CallerHeaders, principal: Principal, payment_id: str
    ) -> CallResult:
        """The platform's receipt of one of this client's paid payments: upstream's answer
        goes to the client as it is, so the pipeline cuts it to the client's field grant."""

        async def reference() -> dict[str, str]:  # after the grant and purpose checks
            payment = await asyncio.to_thread(self._get, payment_id)
            if payment is None or payment.client_id != principal.client_id:
                raise NotFound("no such payment")
            if payment.status != "paid":
                raise NotFound("there is no receipt: the payment is not paid")
            return {"reference": payment.id}

        return await self.gateway.call(caller, SERVICE, "receipt", reference, principal=principal)

    def _get(self, payment_id: str) -> Payment | None:
        if len(payment_id) > 40:
            return None
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Payment, payment_id)

    # -- callback -----------------------------------------------------------------------------

    async def accept_callback(
        self, request_id: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """Verify and apply the platform's IPN; raises for anything not to be applied."""
        adapter = self.gateway.registry.get(SERVICE).instance
        try:
            try:
                note = adapter.parse_notification(body, headers)  # type: ignore[attr-defined]
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
                SERVICE,
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
            if payment is None:
                return None, False, NotFound("no payment with that reference")
            session.expunge(payment)
            seen = session.exec(
                select(InboundMessage.id)
                .where(InboundMessage.source == SERVICE)
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
            session.add(InboundMessage(source=SERVICE, digest=digest))
            if not self._settle(session, payment, note["status"], note.get("transaction_id"), now):
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

    @staticmethod
    def _settle(
        session: Session,
        payment: Payment,
        status: str,
        transaction_id: str | None,
        now: dt.datetime,
    ) -> bool:
        """Move an unsettled payment to its outcome and queue the client's webhook, in the
        caller's transaction. A conditional UPDATE claims the change first, so a callback
        and a background query settling it at once cannot both notify: False when another
        one got there first (nothing is changed then)."""
        claimed = session.execute(
            update(Payment)
            .where(col(Payment.id) == payment.id)
            .where(col(Payment.status).in_(("initiating", "pending")))
            .values(status=status, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return False
        payment.status = status
        payment.transaction_id = payment.transaction_id or transaction_id
        payment.updated_at, payment.next_query_at = now, None
        if status == "paid":
            payment.paid_at = now
        if payment.callback_url:
            # Cut now, with the client's grant as it stands: the outbox row never holds
            # more than the client may receive.
            fields = granted_fields(session, payment.client_id, SERVICE)
            enqueue(
                session,
                client_id=payment.client_id,
                url=payment.callback_url,
                event=f"payment.{status}",
                data=payment_view(payment, fields),
                service=SERVICE,  # no subject: the hub keeps no payer's ID
            )
        return True

    # -- background queries ----------------------------------------------------------------

    async def query_once(self) -> int:
        """Query upstream about due pending payments (no callback came); returns how many."""
        payments = await asyncio.to_thread(self._lease_due)
        await asyncio.gather(*(self._query(p) for p in payments))
        return len(payments)

    def _lease_due(self) -> list[Payment]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            pending = col(Payment.status) == "pending"
            due = session.exec(
                select(Payment.id)
                .where(pending)
                .where(col(Payment.next_query_at) <= now)
                .where(unleased(Payment, now))
                .order_by(col(Payment.next_query_at))
                .limit(self.batch)
            ).all()
            leased = [
                pid for pid in due if lease(session, Payment, pid, now, seconds=120, still=pending)
            ]
            session.commit()
            rows = [session.get(Payment, pid) for pid in leased]
            for row in rows:
                session.expunge(row)
        return [row for row in rows if row is not None]

    async def _query(self, payment: Payment) -> None:
        caller = CallerHeaders(
            request_id=f"{payment.id}.query{payment.query_attempts + 1}", authorization=None
        )
        principal = Principal(payment.client_id, "hub-worker", frozenset(), frozenset())
        data: dict[str, Any] | None = None
        try:
            result = await self.gateway.call(
                caller,
                SERVICE,
                "query",
                {"reference": payment.id},
                principal=principal,
                authorize=False,
                trim=False,
            )
            data = result.data
        except NotFound:
            # The platform does not know it: the payer cannot pay it. Just after opening
            # that may be the platform's lag; later, the payment has failed.
            log.info(
                "query of %s: the platform does not know it",
                payment.id,
                extra={"payment_id": payment.id},
            )
            if _age_s(payment.created_at) > self.lost_after_s:
                data = {"status": "failed"}
        except HubError as exc:
            log.info(
                "query of %s failed: %s", payment.id, exc.code, extra={"payment_id": payment.id}
            )
        await asyncio.to_thread(self._queried, payment.id, data)

    def _queried(self, payment_id: str, data: dict[str, Any] | None) -> None:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            payment = session.get(Payment, payment_id)
            if payment is None:
                return
            payment.query_attempts += 1
            payment.lease_until = None
            settled = data is not None and data.get("status") in ("paid", "failed")
            if payment.status == "pending" and settled and data is not None:
                if data.get("amount") not in (None, payment.amount):
                    log.warning(
                        "payment %s: upstream amount differs; left pending",
                        payment.id,
                        extra={"payment_id": payment.id},
                    )
                elif not self._settle(
                    session, payment, data["status"], data.get("transaction_id"), now
                ):
                    session.refresh(payment)  # a callback settled it meanwhile
            if payment.status == "pending" and _age_s(payment.created_at) > self.query_until_s:
                # The payer never paid: stop asking; it stays pending, reconciliation shows it.
                payment.next_query_at = None
                log.info(
                    "payment %s still pending; no more queries",
                    payment.id,
                    extra={"payment_id": payment.id},
                )
            elif payment.status == "pending":
                initial_s = max(self.query_after_s, 1.0)
                delay = doubling_delay(initial_s, self.query_max_s, payment.query_attempts)
                payment.next_query_at = now + dt.timedelta(seconds=delay)
            session.add(payment)
            session.commit()

    # -- reconciliation ---------------------------------------------------------------------

    async def reconcile(self, day: dt.date) -> ReconciliationReport:
        """Compare upstream's list for `day` (Vietnam time) with the hub's payments."""
        caller = CallerHeaders(request_id=f"reconcile-{day.isoformat()}", authorization=None)
        principal = Principal("hub", "hub-reconcile", frozenset(), frozenset())
        result = await self.gateway.call(
            caller,
            SERVICE,
            "reconciliation",
            {"date": day.isoformat()},
            principal=principal,
            authorize=False,
            trim=False,
        )
        upstream = {entry["reference"]: entry for entry in result.data["entries"]}
        ours = await asyncio.to_thread(self._payments_of, day)
        report = ReconciliationReport(day, hub_count=len(ours), upstream_count=len(upstream))
        for reference, entry in sorted(upstream.items()):
            payment = ours.get(reference)
            if payment is None:
                report.unknown_to_hub.append(entry)
                continue
            if entry["amount"] != payment.amount:
                report.amount_mismatch.append(
                    {"reference": reference, "hub": payment.amount, "upstream": entry["amount"]}
                )
            if entry["status"] != payment.status:
                report.status_mismatch.append(
                    {"reference": reference, "hub": payment.status, "upstream": entry["status"]}
                )
        for reference, payment in sorted(ours.items()):
            if reference not in upstream and payment.status != "initiating":
                report.missing_upstream.append(
                    {"reference": reference, "status": payment.status, "amount": payment.amount}
                )
        return report

    def _payments_of(self, day: dt.date) -> dict[str, Payment]:
        start = dt.datetime.combine(day, dt.time(), VIETNAM).astimezone(dt.UTC)
        end = start + dt.timedelta(days=1)
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(
                select(Payment)
                .where(col(Payment.created_at) >= start)
                .where(col(Payment.created_at) < end)
            ).all()
            for row in rows:
                session.expunge(row)
        return {row.id: row for row in rows}


def _age_s(created_at: dt.datetime | None) -> float:
    aware = _aware(created_at)
    return 0.0 if aware is None else (utcnow() - aware).total_seconds()


def _check_key(key: str | None) -> str:
    if not key:
        raise IdempotencyKeyRequired("POST /v1/payments needs an Idempotency-Key header")
    if len(key) > 255 or not set(key) <= _KEY_CHARS:
        raise BadRequest("the Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key
