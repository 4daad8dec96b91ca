"""Storing events and fanning them out to subscriptions, in the caller's transaction.

An event row and one delivery row per matching subscription are written together, so an
event is never stored without the deliveries it owes, and the feed's cursor (feed.py)
moves in that same transaction: nothing is lost between upstream and the agencies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence

import orjson
from sqlmodel import Session, col, select

from hub.capabilities.events.models import Event, EventDelivery, Subscription
from hub.core.models import aware, in_utc, utcnow
from hub.events import EventType, UpstreamEvent, value_at

#: Most events one replay re-queues (a subscriber replays more by calling again).
REPLAY_MAX = 10_000


def event_id(service: str, key: str) -> str:
    """The stable id of upstream's event `key` of `service`: the same on every read."""
    digest = hashlib.sha256(f"{service}\0{key}".encode()).hexdigest()
    return "evt_" + digest[:32]


def new_rows(
    session: Session,
    service: str,
    declared: Mapping[str, EventType],
    events: Sequence[UpstreamEvent],
    *,
    audience: str | None = None,
) -> list[Event]:
    """The events not stored yet (by id), as rows added to the session; the duplicates of a
    page (a repeat) are left out. `declared` maps local names to their types."""
    by_id: dict[str, UpstreamEvent] = {}
    for event in events:
        by_id.setdefault(event_id(service, event.key), event)
    if not by_id:
        return []
    stored = set(session.exec(select(Event.id).where(col(Event.id).in_(list(by_id)))).all())
    rows = []
    for eid, event in by_id.items():
        if eid in stored:
            continue
        kind = declared[event.type]
        data = event.payload.model_dump(mode="json")
        subjects = [str(v) for path in kind.subjects if (v := value_at(data, path))]
        province = value_at(data, kind.province) if kind.province else None
        row = Event(
            id=eid,
            type=kind.qualified(service),
            service=service,
            subjects=list(dict.fromkeys(subjects)),
            province=str(province)[:3] if province else None,
            payload=orjson.dumps(data).decode(),
            occurred_at=in_utc(event.occurred_at),  # upstream clocks run at +07:00
            audience=audience,
        )
        session.add(row)
        rows.append(row)
    session.flush()  # the rows get their sequence numbers
    return rows


def publish(
    session: Session,
    service: str,
    kind: EventType,
    event: UpstreamEvent,
    *,
    audience: str | None = None,
) -> bool:
    """Store one event that came by a push the hub received (a payment's callback, a
    request's result) and queue its deliveries, in the caller's transaction; False when an
    event of that key is stored already. `audience`: the only client it is for."""
    rows = new_rows(session, service, {kind.name: kind}, [event], audience=audience)
    fan_out(session, rows)
    return bool(rows)


def fan_out(session: Session, events: Iterable[Event]) -> int:
    """Queue each event for every active subscription it matches; returns how many."""
    events = list(events)
    types = {event.type for event in events}
    if not types:
        return 0
    subscriptions = session.exec(
        select(Subscription)
        .where(col(Subscription.active).is_(True))
        .where(col(Subscription.event_type).in_(types))
    ).all()
    queued = 0
    for event in events:
        for subscription in subscriptions:
            if subscription.event_type == event.type and matches(subscription, event):
                session.add(_delivery(subscription, event, utcnow()))
                queued += 1
    return queued


def matches(subscription: Subscription, event: Event) -> bool:
    """Whether the subscription's filters (province codes) let the event through, and the
    event is for anyone or for the subscription's client."""
    if event.audience is not None and event.audience != subscription.client_id:
        return False
    return not subscription.provinces or event.province in subscription.provinces


def _delivery(subscription: Subscription, event: Event, now: dt.datetime) -> EventDelivery:
    assert event.seq is not None
    return EventDelivery(
        subscription_id=subscription.id,
        event_id=event.id,
        event_seq=event.seq,
        next_attempt_at=now,
        expires_at=now + dt.timedelta(seconds=subscription.ttl_s),
    )


def replay(session: Session, subscription: Subscription, from_seq: int) -> int:
    """Queue again, in order, every event of the subscription's type from sequence number
    `from_seq` on (those already delivered too); returns how many."""
    now = utcnow()
    events = session.exec(
        select(Event)
        .where(Event.type == subscription.event_type)
        .where(col(Event.seq) >= from_seq)
        .order_by(col(Event.seq))
        .limit(REPLAY_MAX)
    ).all()
    events = [e for e in events if matches(subscription, e)]
    if not events:
        return 0
    existing = {
        d.event_id: d
        for d in session.exec(
            select(EventDelivery)
            .where(EventDelivery.subscription_id == subscription.id)
            .where(col(EventDelivery.event_id).in_([e.id for e in events]))
        ).all()
    }
    for event in events:
        row = existing.get(event.id)
        if row is None:
            session.add(_delivery(subscription, event, now))
            continue
        row.status, row.attempts, row.last_status = "pending", 0, None
        row.next_attempt_at, row.delivered_at = now, None
        row.expires_at = now + dt.timedelta(seconds=subscription.ttl_s)
        session.add(row)
    return len(events)


def expired(delivery: EventDelivery, now: dt.datetime) -> bool:
    """Past the subscription's time to live: no longer delivered."""
    until = aware(delivery.expires_at)
    return until is not None and until < now


def oldest_pending(
    session: Session, subscription_id: str, now: dt.datetime
) -> EventDelivery | None:
    """A subscription's oldest pending delivery (FIFO), setting aside as `expired` (and
    committing) the ones past its time to live on the way; None when nothing is pending.
    Push delivery and PULL both take their next event this way."""
    while True:
        delivery = session.exec(
            select(EventDelivery)
            .where(EventDelivery.subscription_id == subscription_id)
            .where(EventDelivery.status == "pending")
            .order_by(col(EventDelivery.event_seq))
            .limit(1)
        ).first()
        if delivery is None or not expired(delivery, now):
            return delivery
        delivery.status = "expired"
        session.add(delivery)
        session.commit()
