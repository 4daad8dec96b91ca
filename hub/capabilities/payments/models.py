"""Canonical payment models: the payment capability's contract with any payment provider.

The hub owns the payment's lifecycle (hub.capabilities.payments): it assigns the reference,
stores the payment, verifies the platform's signed callback and queries status when none arrives.
A provider (a `hub.adapter.PaymentProvider`, such as `adapters.payment`) speaks its platform's
protocol with these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from hub.canonical.common import CanonicalModel, PersonalIdStr

PaymentState = Literal["pending", "paid", "failed"]
#: The most a single public-service fee can be; guards against a typo of three zeros.
MAX_AMOUNT_VND = 10_000_000_000


class PaymentOrder(CanonicalModel):
    """Ask the platform to open a payment (upstream INIT)."""

    reference: str = Field(
        min_length=1, max_length=50, description="The hub's payment reference (MaThamChieu)"
    )
    amount: int = Field(gt=0, le=MAX_AMOUNT_VND, description="Whole VND")
    currency: Literal["VND"] = "VND"
    description: str = Field(min_length=1, max_length=200)
    procedure_code: str = Field(min_length=1, max_length=50, description="MaTTHC")
    dossier_id: str = Field(min_length=1, max_length=50, description="MaHoSo")
    payer_name: str = Field(min_length=1, max_length=100)
    payer_personal_id: PersonalIdStr | None = None
    created_at: dt.datetime = Field(description="ThoiGianGD")
    return_url: str | None = Field(None, max_length=500)


class PaymentInitiated(CanonicalModel):
    """The platform opened the payment: the payer goes to `pay_url`."""

    reference: str
    transaction_id: str
    pay_url: str


class PaymentStatusQuery(CanonicalModel):
    """Ask the platform about a payment (upstream QUERY)."""

    reference: str = Field(min_length=1, max_length=50)


class PaymentStatus(CanonicalModel):
    """What the platform says of a payment."""

    reference: str
    transaction_id: str | None = None
    status: PaymentState
    amount: int | None = None
    paid_at: dt.datetime | None = None


class PaymentNotification(CanonicalModel):
    """A verified callback (IPN) from the platform."""

    reference: str
    transaction_id: str
    amount: int
    status: Literal["paid", "failed"]
    occurred_at: dt.datetime = Field(description="ThoiGianGD of the callback")
    error_code: str = Field(description="MaLoi, '00' on success")
    message_id: str | None = Field(
        None,
        description="What identifies the signed message (its checksum), so that a replay is "
        "recognised however its JSON is re-written; the raw body's hash when absent",
    )


class ReconciliationQuery(CanonicalModel):
    """The platform's list of transactions for one day."""

    date: dt.date


class ReconciliationEntry(CanonicalModel):
    reference: str
    transaction_id: str
    amount: int
    status: PaymentState
    settled_at: dt.datetime | None = None


class ReconciliationList(CanonicalModel):
    date: dt.date
    entries: list[ReconciliationEntry]


class ReceiptQuery(CanonicalModel):
    reference: str = Field(min_length=1, max_length=50)


class Receipt(CanonicalModel):
    """The platform's receipt (biên lai) of a paid payment."""

    reference: str
    number: str | None = None
    pdf_base64: str
