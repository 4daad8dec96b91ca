"""Delivering events: PUSH by signed webhooks, FIFO per subscription, from any hub process.

A process takes a PUSH subscription that has a due event by leasing the subscription row
(one conditional UPDATE, atomic on SQLite and PostgreSQL, as the webhook outbox does), then
sends its events one at a time in sequence order: the next only after the one before was
delivered or dead-lettered, so an agency receives them in the order they happened. Two
processes never send to one subscription at once; a process killed mid-send leaves its
lease to lapse (`HUB_EVENT_LEASE_S`) and another sends that event again: delivery is
at-least-once, and `X-Hub-Delivery` is the event's stable id for the agency to de-duplicate.

Before each attempt the client is read again: a client deactivated, or no longer granted
the event type or the subscription's purpose, is told nothing (the delivery is `refused`).
The payload is cut to the client's field grant for the service, and an audit record per
subject is committed before the body leaves (a trail that cannot be written holds the
event back without counting the attempt).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.capabilities.events.metrics import EventMetrics
from hub.capabilities.events.models import Event, EventDelivery, Subscription
from hub.capabilities.events.store import oldest_pending
from hub.capabilities.webhooks import (
    SIGNATURE_HEADER,
    _check_resolves_public,
    lease,
    sign,
    unleased,
    webhook_secret,
)
from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import Client, aware, iso, utcnow
from hub.core.registry import AdapterRegistry
from hub.errors import HubError
from hub.events import EventType
from hub.resilience.retry import doubling_delay
from hub.security.auth import Principal
from hub.security.fields import trim

log = logging.getLogger("hub.events")

#: Events one lease sends at most before the subscription is given back.
PER_LEASE = 50


def principal_of(client: Client) -> Principal:
    """What a client is granted now, as its calls are checked."""
    return Principal(
        client.id,
        client.name,
        frozenset(client.allow),
        frozenset(client.purposes),
        client.rate_per_minute,
        tuple((svc, tuple(names)) for svc, names in sorted((client.fields or {}).items())),
    )


def event_type_of(registry: AdapterRegistry, qualified: str) -> EventType | None:
    """The declared event type named `SERVICE:NAME`, if an installed adapter has it."""
    service, _, name = qualified.partition(":")
    if service not in registry:
        return None
    return next((e for e in registry.get(service).cls.event_types if e.name == name), None)


def may_receive(principal: Principal, kind: EventType, service: str, purpose: str | None) -> bool:
    """The grant of the event type and, for personal data, of the purpose."""
    if not principal.may_call(service, kind.name):
        return False
    return not kind.personal_data or (purpose is not None and purpose in principal.purposes)


def body_of(event: Event, subscription: Subscription, principal: Principal) -> dict[str, Any]:
    """The event as the subscriber receives it, its payload cut to the field grant."""
    data = orjson.loads(event.payload)
    granted = principal.fields_for(event.service)
    return {
        "id": event.id,
        "sequence": event.seq,
        "event_type": event.type,
        "subscription": subscription.id,
        "occurred_at": iso(event.occurred_at),
        "published_at": iso(event.created_at),
        "data": data if granted is None else trim(data, granted),
    }


async def audit_delivery(
    gateway: Gateway,
    request_id: str,
    client_id: str,
    event: Event,
    how: str,
    purpose: str | None,
    body: Mapping[str, Any],
) -> None:
    """One audit record per subject of the event (one without a subject when it has none):
    operation `push:NAME` or `pull:NAME`, the fields the body discloses."""
    caller = CallerHeaders(request_id=request_id, authorization=None, purpose=purpose)
    operation = f"{how}:{event.type.partition(':')[2]}"[:64]
    subjects: list[str | None] = [*event.subjects] or [None]
    for subject in subjects:
        await gateway.record_event(
            caller, client_id, event.service, operation, subject_id=subject, disclosed=body["data"]
        )


@dataclass
class _Head:
    subscription: Subscription
    delivery: EventDelivery
    event: Event
    client: Client | None


class EventSender:
    """Sends due events of PUSH subscriptions; one `run_once()` per worker tick."""

    def __init__(
        self,
        engine: Engine,
        registry: AdapterRegistry,
        gateway: Gateway,
        metrics: EventMetrics,
        server_secret: bytes,
        *,
        max_attempts: int,
        initial_backoff_s: float,
        max_backoff_s: float,
        timeout_s: float,
        lease_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        public_only: bool = False,
        batch: int = 20,
    ) -> None:
        self._engine, self._registry, self._gateway = engine, registry, gateway
        self._metrics, self._secret = metrics, server_secret
        self.max_attempts, self.initial_backoff_s = max_attempts, initial_backoff_s
        # A send must end well inside the lease, or a second process could take the
        # subscription while the first is still sending to it.
        self.max_backoff_s, self.lease_s = max_backoff_s, lease_s
        self.timeout_s = timeout_s = min(timeout_s, lease_s / 3)
        self.public_only, self.batch = public_only, batch
        self._http = httpx.AsyncClient(
            transport=transport, timeout=timeout_s, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run_once(self) -> int:
        leased = await asyncio.to_thread(self._lease_due)
        counts = await asyncio.gather(*(self._drain(sid) for sid in leased))
        return sum(counts)

    def _lease_due(self) -> list[str]:
        now = utcnow()
        with Session(self._engine) as session:
            due = session.exec(
                select(Subscription.id)
                .join(EventDelivery, col(EventDelivery.subscription_id) == Subscription.id)
                .where(Subscription.delivery == "push")
                .where(col(Subscription.active).is_(True))
                .where(unleased(Subscription, now))
                .where(EventDelivery.status == "pending")
                .where(col(EventDelivery.next_attempt_at) <= now)
                .distinct()
                .limit(self.batch)
            ).all()
            leased = [
                sid for sid in due if lease(session, Subscription, sid, now, seconds=self.lease_s)
            ]
            session.commit()
        return leased

    async def _drain(self, subscription_id: str) -> int:
        """Send the subscription's events in order while its lease safely lasts."""
        started, sent = time.monotonic(), 0
        try:
            while sent < PER_LEASE and time.monotonic() - started < self.lease_s / 2:
                head = await asyncio.to_thread(self._head, subscription_id)
                if head is None:
                    break
                if not await self._push(head):
                    break
                sent += 1
        finally:
            await asyncio.to_thread(self._release, subscription_id)
        return sent

    def _head(self, subscription_id: str) -> _Head | None:
        """The subscription's oldest pending event, if due (expired ones are set aside)."""
        now = utcnow()
        with Session(self._engine, expire_on_commit=False) as session:
            subscription = session.get(Subscription, subscription_id)
            if subscription is None or not subscription.active:
                return None
            delivery = oldest_pending(session, subscription_id, now)
            if delivery is None:
                return None
            due = aware(delivery.next_attempt_at)
            if due is not None and due > now:
                return None  # FIFO: the head waits out its back-off, and so do the rest
            event = session.exec(select(Event).where(Event.id == delivery.event_id)).one()
            client = session.get(Client, subscription.client_id)
            return _Head(subscription, delivery, event, client)

    async def _push(self, head: _Head) -> bool:
        """One attempt at the head; True when the next event may follow at once."""
        sub, event = head.subscription, head.event
        kind = event_type_of(self._registry, event.type)
        principal = principal_of(head.client) if head.client and head.client.active else None
        if (
            kind is None
            or principal is None
            or not may_receive(principal, kind, event.service, sub.purpose)
        ):
            await asyncio.to_thread(self._finish, head.delivery, "refused", None)
            return True
        body = body_of(event, sub, principal)
        try:
            await audit_delivery(
                self._gateway,
                f"{event.id}:{sub.id}",
                sub.client_id,
                event,
                "push",
                sub.purpose,
                body,
            )
        except HubError as exc:
            log.warning("event %s held back: no audit record (%s)", event.id, exc.code)
            return False
        status = await self._send(sub, event, body)
        self._metrics.deliveries.labels(sub.id, "delivered" if _ok(status) else "failed").inc()
        if _ok(status):
            await asyncio.to_thread(self._finish, head.delivery, "delivered", status)
            return True
        return await asyncio.to_thread(self._failed, head.delivery, status)

    async def _send(self, sub: Subscription, event: Event, body: Mapping[str, Any]) -> int | None:
        content = orjson.dumps(body)
        headers = {
            "content-type": "application/json",
            "x-hub-event": event.type,
            "x-hub-delivery": event.id,
            SIGNATURE_HEADER: sign(
                webhook_secret(self._secret, sub.client_id), content, int(time.time())
            ),
        }
        try:
            return await asyncio.wait_for(
                self._post(str(sub.callback_url), content, headers), self.timeout_s
            )
        except Exception as exc:  # any failure counts as one failed attempt
            log.info("event %s not delivered to %s: %s", event.id, sub.id, type(exc).__name__)
            return None

    async def _post(self, url: str, content: bytes, headers: Mapping[str, str]) -> int:
        if self.public_only:
            await _check_resolves_public(url)
        async with self._http.stream("POST", url, content=content, headers=headers) as response:
            return response.status_code

    def _finish(self, delivery: EventDelivery, status: str, http_status: int | None) -> None:
        with Session(self._engine) as session:
            row = session.get(EventDelivery, delivery.id)
            if row is None or row.status != "pending":
                return
            row.status, row.last_status = status, http_status
            row.attempts += 1 if http_status is not None else 0
            row.delivered_at = utcnow() if status == "delivered" else None
            session.add(row)
            session.commit()

    def _failed(self, delivery: EventDelivery, http_status: int | None) -> bool:
        """Count a failed attempt: back off, or dead-letter it after the last one (and then
        the next event may go)."""
        with Session(self._engine) as session:
            row = session.get(EventDelivery, delivery.id)
            if row is None or row.status != "pending":
                return True
            row.attempts += 1
            row.last_status = http_status
            dead = row.attempts >= self.max_attempts
            if dead:
                row.status = "dead"
                self._metrics.deliveries.labels(row.subscription_id, "dead").inc()
                log.warning("event %s dead-lettered after %d attempts", row.event_id, row.attempts)
            else:
                row.next_attempt_at = utcnow() + dt.timedelta(seconds=self.backoff(row.attempts))
            session.add(row)
            session.commit()
            return dead

    def _release(self, subscription_id: str) -> None:
        with Session(self._engine) as session:
            row = session.get(Subscription, subscription_id)
            if row is not None:
                row.lease_until = None
                session.add(row)
                session.commit()

    def backoff(self, attempts: int) -> float:
        """Full-jitter exponential back-off before attempt `attempts + 1`."""
        ceiling = doubling_delay(self.initial_backoff_s, self.max_backoff_s, attempts - 1)
        return random.uniform(0, ceiling)  # jitter, not security


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300
