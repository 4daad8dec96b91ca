"""The operator's view of events (CLI `hub events …`, `hub subscriptions list`): lists
without personal data (an event's subjects are counted, never shown), replay and the
re-drive of dead letters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from hub.capabilities.events.models import Event, EventDelivery, Subscription
from hub.capabilities.events.store import replay
from hub.core.models import Client, iso, utcnow

__all__ = ["list_events", "list_subscriptions", "prune", "redrive", "replay_subscription"]


def list_events(
    engine: Engine, *, event_type: str | None = None, after: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """Events from sequence number `after` on, oldest first, with their deliveries' states."""
    with Session(engine) as session:
        query = select(Event).where(col(Event.seq) > after)
        if event_type:
            query = query.where(Event.type == event_type)
        events = session.exec(query.order_by(col(Event.seq)).limit(limit)).all()
        ids = [e.id for e in events]
        counts: dict[str, dict[str, int]] = {}
        if ids:
            for event_id, status, count in session.exec(
                select(EventDelivery.event_id, EventDelivery.status, func.count())
                .where(col(EventDelivery.event_id).in_(ids))
                .group_by(col(EventDelivery.event_id), col(EventDelivery.status))
            ).all():
                counts.setdefault(event_id, {})[status] = int(count)
        return [
            {
                "sequence": e.seq,
                "id": e.id,
                "type": e.type,
                "province": e.province,
                "subjects": len(e.subjects),
                "for_one_client": e.audience is not None,
                "published_at": iso(e.created_at),
                "deliveries": counts.get(e.id, {}),
            }
            for e in events
        ]


def list_subscriptions(engine: Engine, *, client: str | None = None) -> list[dict[str, Any]]:
    """Every subscription (or one client's, by name) with its deliveries by state."""
    with Session(engine) as session:
        query = select(Subscription, Client.name).join(
            Client, col(Client.id) == Subscription.client_id, isouter=True
        )
        if client:
            query = query.where(Client.name == client)
        rows = session.exec(query.order_by(col(Subscription.created_at))).all()
        counts: dict[str, dict[str, int]] = {}
        for sid, status, count in session.exec(
            select(EventDelivery.subscription_id, EventDelivery.status, func.count()).group_by(
                col(EventDelivery.subscription_id), col(EventDelivery.status)
            )
        ).all():
            counts.setdefault(sid, {})[status] = int(count)
        return [
            {
                "id": sub.id,
                "client": name,
                "event_type": sub.event_type,
                "delivery": sub.delivery,
                "callback_url": sub.callback_url,
                "active": sub.active,
                "deliveries": counts.get(sub.id, {}),
            }
            for sub, name in rows
        ]


def replay_subscription(engine: Engine, subscription_id: str, from_seq: int) -> int:
    """Queue the subscription's events again from sequence `from_seq`; how many (None: no
    such subscription raises LookupError)."""
    with Session(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        if subscription is None:
            raise LookupError(subscription_id)
        count = replay(session, subscription, from_seq)
        session.commit()
        return count


def redrive(engine: Engine, subscription_id: str) -> int:
    """Give a subscription's dead letters a fresh set of attempts, in their order."""
    now = utcnow()
    with Session(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        if subscription is None:
            raise LookupError(subscription_id)
        dead = session.exec(
            select(EventDelivery)
            .where(EventDelivery.subscription_id == subscription_id)
            .where(EventDelivery.status == "dead")
        ).all()
        for row in dead:
            row.status, row.attempts, row.next_attempt_at = "pending", 0, now
            row.expires_at = now + dt.timedelta(seconds=subscription.ttl_s)
            session.add(row)
        session.commit()
        return len(dead)


def prune(engine: Engine, retention_days: float) -> int:
    """Remove events older than the retention, with their deliveries, once none of them is
    pending: the hub keeps personal data no longer than it must (replay reaches back as
    far as the retention). Returns how many events went."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    with Session(engine) as session:
        old = session.exec(select(Event.id).where(col(Event.created_at) < cutoff)).all()
        if not old:
            return 0
        waiting = set(
            session.exec(
                select(EventDelivery.event_id)
                .where(col(EventDelivery.event_id).in_(old))
                .where(EventDelivery.status == "pending")
            ).all()
        )
        gone = [eid for eid in old if eid not in waiting]
        if gone:
            session.exec(delete(EventDelivery).where(col(EventDelivery.event_id).in_(gone)))  # type: ignore[call-overload]
            session.exec(delete(Event).where(col(Event.id).in_(gone)))  # type: ignore[call-overload]
            session.commit()
        return len(gone)
