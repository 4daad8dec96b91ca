"""Payments no callback settled: queried upstream in the background, with back-off.

Each hub process leases the due payments it queries (a row lease), so several processes
share the work and none queries a payment another is querying.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.capabilities.payments.settle import settle
from hub.capabilities.payments.views import age_s
from hub.capabilities.webhooks import lease, unleased
from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import Payment, utcnow
from hub.errors import HubError, NotFound
from hub.resilience.retry import doubling_delay
from hub.security.auth import Principal

log = logging.getLogger("hub.payments")


class PendingQueries:
    """The background queries of one provider's pending payments."""

    def __init__(
        self,
        gateway: Gateway,
        engine: Engine,
        service: str,
        *,
        query_after_s: float,
        query_max_s: float,
        lost_after_s: float,
        query_until_s: float,
        batch: int,
    ) -> None:
        self.gateway, self.engine, self.service = gateway, engine, service
        self.query_after_s, self.query_max_s, self.batch = query_after_s, query_max_s, batch
        self.lost_after_s, self.query_until_s = lost_after_s, query_until_s

    async def run_once(self) -> int:
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
                .where(Payment.service == self.service)
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
                self.service,
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
            if age_s(payment.created_at) > self.lost_after_s:
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
                elif not settle(session, payment, data["status"], data.get("transaction_id"), now):
                    session.refresh(payment)  # a callback settled it meanwhile
            if payment.status == "pending" and age_s(payment.created_at) > self.query_until_s:
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
