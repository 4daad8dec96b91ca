"""What a payment looks like to its client, and what a client sends to open one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from hub.canonical.common import CanonicalModel, PersonalIdStr
from hub.capabilities.payments.models import MAX_AMOUNT_VND
from hub.core.models import Payment, aware, iso, utcnow
from hub.errors import BadRequest, IdempotencyKeyRequired
from hub.security.fields import trim_view

_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


class PaymentRequest(CanonicalModel):
    """What an agency sends to open a payment (`POST /v1/payments`)."""

    amount: int = Field(gt=0, le=MAX_AMOUNT_VND, strict=True, description="Whole VND")
    currency: str = Field("VND", pattern="^VND$")
    description: str = Field(min_length=1, max_length=200)
    procedure_code: str = Field(min_length=1, max_length=50, description="MaTTHC")
    dossier_id: str = Field(
        min_length=1,
        max_length=50,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$",  # a code, never a name (as X-Dossier-ID)
        description="MaHoSo",
    )
    payer_name: str = Field(min_length=1, max_length=100)
    payer_personal_id: PersonalIdStr | None = None
    return_url: str | None = Field(None, max_length=500)
    callback_url: str | None = Field(None, max_length=500, description="Webhook for the outcome")


#: The keys of a payment's view that are the hub's own bookkeeping, or what the client
#: itself sent, kept whatever its field grant; the others (`transaction_id`, `pay_url`)
#: are upstream's canonical fields, cut with it (hub.security.fields).
PAYMENT_HUB_KEYS = frozenset(
    {
        "id",
        "provider",
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
        "provider": payment.service,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "description": payment.description,
        "procedure_code": payment.procedure_code,
        "dossier_id": payment.dossier_id,
        "transaction_id": payment.transaction_id,
        "pay_url": payment.pay_url,
        "callback_url": payment.callback_url,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
        "paid_at": iso(payment.paid_at),
    }
    return trim_view(view, fields, hub_keys=PAYMENT_HUB_KEYS)


def age_s(created_at: dt.datetime | None) -> float:
    """Seconds since `created_at` (0 for none)."""
    when = aware(created_at)
    return 0.0 if when is None else (utcnow() - when).total_seconds()


def check_key(key: str | None) -> str:
    """The Idempotency-Key header's value, checked."""
    if not key:
        raise IdempotencyKeyRequired("POST /v1/payments needs an Idempotency-Key header")
    if len(key) > 255 or not set(key) <= _KEY_CHARS:
        raise BadRequest("the Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key
