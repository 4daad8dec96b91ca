"""Settling a payment: the one place its outcome is written and its client told."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlmodel import Session, col

from hub.adapter import PaymentProvider
from hub.capabilities.events.store import publish
from hub.capabilities.payments.views import payment_view
from hub.capabilities.webhooks import enqueue
from hub.core.models import Payment, iso
from hub.events import PaymentSettled, UpstreamEvent
from hub.security.fields import granted_fields

#: `PROVIDER:settled`, as every PaymentProvider declares it.
SETTLED = next(e for e in PaymentProvider.event_types if e.name == "settled")


def settle(
    session: Session,
    payment: Payment,
    status: str,
    transaction_id: str | None,
    now: dt.datetime,
) -> bool:
    """Move an unsettled payment to its outcome and queue the client's webhook, in the
    caller's transaction. A conditional UPDATE claims the change first, so a callback and a
    background query settling it at once cannot both notify: False when another one got
    there first (nothing is changed then)."""
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
    _publish(session, payment, now)
    if payment.callback_url:
        # Cut now, with the client's grant as it stands: the outbox row never holds more
        # than the client may receive.
        fields = granted_fields(session, payment.client_id, payment.service)
        enqueue(
            session,
            client_id=payment.client_id,
            url=payment.callback_url,
            event=f"payment.{status}",
            data=payment_view(payment, fields),
            service=payment.service,  # no subject: the hub keeps no payer's ID
        )
    return True


def _publish(session: Session, payment: Payment, now: dt.datetime) -> None:
    """`PROVIDER:settled` to the client that opened the payment, with its outcome."""
    if payment.status not in ("paid", "failed"):
        return
    payload = PaymentSettled(
        id=payment.id,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        procedure_code=payment.procedure_code,
        dossier_id=payment.dossier_id,
        transaction_id=payment.transaction_id,
        paid_at=iso(payment.paid_at),
    )
    event = UpstreamEvent(SETTLED.name, f"payment:{payment.id}", payload, now)
    publish(session, payment.service, SETTLED, event, audience=payment.client_id)
