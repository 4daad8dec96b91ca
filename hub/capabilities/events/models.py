"""The tables of the events capability: events, feed cursors, subscriptions, deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.core.models import utcnow

#: A 64-bit sequence that SQLite numbers itself too (only its INTEGER key is the rowid).
SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")


def _when(*, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), index=index))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Event(SQLModel, table=True):
    """One event a national system published, stored before its feed's cursor moves.

    `seq` orders all events (replay starts from one); `id` is derived from the service and
    upstream's own key, so the same upstream event always has the same id: a feed that
    repeats itself adds nothing, and agencies de-duplicate on it."""

    __tablename__ = "events"

    seq: int | None = Field(
        default=None, sa_column=Column(SEQUENCE, primary_key=True, autoincrement=True)
    )
    id: str = Field(max_length=40, unique=True, index=True)
    type: str = Field(max_length=130, index=True, description="SERVICE:NAME")
    service: str = Field(max_length=64)
    subjects: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    province: str | None = Field(default=None, max_length=3)
    #: The one client an event is for (a payment's, a request's owner); None: any subscriber.
    audience: str | None = Field(default=None, max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    occurred_at: dt.datetime | None = _when()
    created_at: dt.datetime = _created()


class EventCursor(SQLModel, table=True):
    """Where the hub is in one service's change feed; leased by the process polling it."""

    __tablename__ = "event_cursors"

    id: str = Field(primary_key=True, max_length=64, description="the service")
    cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: dt.datetime | None = _when()
    errors: int = 0
    lease_until: dt.datetime | None = _when()


class Subscription(SQLModel, table=True):
    """A client's subscription to one event type, delivered by PUSH (signed webhooks to
    `callback_url`) or PULL (the client asks for the next unacknowledged event)."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("client_id", "event_type"),)

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(index=True, max_length=40)
    event_type: str = Field(max_length=130, index=True)
    delivery: str = Field(max_length=8, description="push|pull")
    callback_url: str | None = Field(default=None, max_length=500)
    purpose: str | None = Field(default=None, max_length=64)
    provinces: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ttl_s: int = 3600
    active: bool = True
    created_at: dt.datetime = _created()
    updated_at: dt.datetime | None = _when()
    lease_until: dt.datetime | None = _when()


class EventDelivery(SQLModel, table=True):
    """One event for one subscription: pending until pushed (2xx) or acknowledged (pull),
    `dead` after the last failed push attempt, `expired` past the subscription's TTL."""

    __tablename__ = "event_deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(index=True, max_length=40)
    event_id: str = Field(max_length=40)
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    status: str = Field(default="pending", max_length=10, index=True)
    attempts: int = 0
    next_attempt_at: dt.datetime | None = _when()
    expires_at: dt.datetime | None = _when()
    delivered_at: dt.datetime | None = _when()
    last_status: int | None = None
    created_at: dt.datetime = _created()
