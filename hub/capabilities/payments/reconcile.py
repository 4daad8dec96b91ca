"""Reconciliation: a provider's daily list of transactions against the hub's payments."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import Payment
from hub.security.auth import Principal

VIETNAM = dt.timezone(dt.timedelta(hours=7))


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


async def reconcile(
    gateway: Gateway, engine: Engine, service: str, day: dt.date
) -> ReconciliationReport:
    """Compare provider `service`'s list for `day` (Vietnam time) with the hub's payments
    through it."""
    caller = CallerHeaders(request_id=f"reconcile-{day.isoformat()}", authorization=None)
    principal = Principal("hub", "hub-reconcile", frozenset(), frozenset())
    result = await gateway.call(
        caller,
        service,
        "reconciliation",
        {"date": day.isoformat()},
        principal=principal,
        authorize=False,
        trim=False,
    )
    upstream = {entry["reference"]: entry for entry in result.data["entries"]}
    ours = await asyncio.to_thread(_payments_of, engine, service, day)
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


def _payments_of(engine: Engine, service: str, day: dt.date) -> dict[str, Payment]:
    start = dt.datetime.combine(day, dt.time(), VIETNAM).astimezone(dt.UTC)
    end = start + dt.timedelta(days=1)
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(
            select(Payment)
            .where(Payment.service == service)
            .where(col(Payment.created_at) >= start)
            .where(col(Payment.created_at) < end)
        ).all()
        for row in rows:
            session.expunge(row)
    return {row.id: row for row in rows}
