"""Subscriptions: what a client asks to be told, checked as a call is, and PULL delivery.

A subscription names one event type (`SERVICE:NAME`), its delivery (`push` to a callback
URL, or `pull`), optional province codes to filter on, a time to live for undelivered
events and, for personal data, the purpose it serves (the caller's `X-Purpose`), which
must be granted to the client as the event type must. One subscription per client and
event type (as the GovStack IM PubSub API has it).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select

from hub.capabilities.events.delivery import audit_delivery, body_of, event_type_of, may_receive
from hub.capabilities.events.metrics import EventMetrics
from hub.capabilities.events.models import Event, EventDelivery, Subscription
from hub.capabilities.events.store import oldest_pending, replay
from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import aware, iso, utcnow
from hub.core.registry import AdapterRegistry
from hub.errors import (
    BadRequest,
    Forbidden,
    SchemaViolation,
    SubscriptionExists,
    UnknownEvent,
    UnknownEventType,
    UnknownSubscription,
)
from hub.events import EventType
from hub.provinces import PROVINCES
from hub.security.auth import Principal

#: Longest time to live of an undelivered event: 30 days.
MAX_TTL_S = 30 * 86400

#: Checks a callback URL as the webhooks' are (hub.capabilities.webhooks.check_callback_url).
UrlCheck = Callable[[Any], str | None]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provinces: list[str] | None = Field(None, max_length=63)
    ttl_s: int | None = Field(None, ge=60, le=MAX_TTL_S)
    replay_from: int | None = Field(None, ge=1, description="Queue again from this sequence")

    @field_validator("provinces")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(code not in PROVINCES for code in value):
            raise ValueError("each province must be a three-digit province code")
        return None if value is None else sorted(set(value))


class NewSubscription(_Options):
    """`POST /v1/subscriptions`."""

    event_type: str = Field(max_length=130)
    delivery: Literal["push", "pull", "PUSH", "PULL"] = "push"
    callback_url: str | None = None


class SubscriptionChange(_Options):
    """`PATCH /v1/subscriptions/{id}`: the fields to change."""

    callback_url: str | None = None
    active: bool | None = None


def parse(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise SchemaViolation("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SchemaViolation.from_errors(exc.errors()) from None


def view(row: Subscription, backlog: int | None = None) -> dict[str, Any]:
    """A subscription as its owner reads it."""
    data = {
        "id": row.id,
        "event_type": row.event_type,
        "delivery": row.delivery,
        "callback_url": row.callback_url,
        "purpose": row.purpose,
        "provinces": row.provinces,
        "ttl_s": row.ttl_s,
        "active": row.active,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if backlog is not None:
        data["backlog"] = backlog
    return data


class Subscriptions:
    """The subscription routes' logic, over the database."""

    def __init__(
        self,
        engine: Engine,
        registry: AdapterRegistry,
        gateway: Gateway,
        metrics: EventMetrics,
        *,
        default_ttl_s: int,
    ) -> None:
        self._engine, self._registry, self._gateway = engine, registry, gateway
        self._metrics, self.default_ttl_s = metrics, default_ttl_s

    def event_type(self, qualified: str) -> tuple[str, EventType]:
        """(service, type) of a subscribable name; 404 when no installed adapter has it."""
        kind = event_type_of(self._registry, qualified)
        if kind is None:
            raise UnknownEventType("no such event type (GET /v1/services lists them)")
        return qualified.partition(":")[0], kind

    def authorize(self, principal: Principal, caller: CallerHeaders, qualified: str) -> EventType:
        """The grant of the event type and of the caller's purpose, as for a call."""
        service, kind = self.event_type(qualified)
        principal.authorize(
            service,
            kind.name,
            personal_data=kind.personal_data,
            purpose=caller.purpose,
            officer_id=caller.officer_id,
            dossier_id=caller.dossier_id,
        )
        return kind

    async def create(
        self, principal: Principal, caller: CallerHeaders, body: Any, check_url: UrlCheck
    ) -> dict[str, Any]:
        request: NewSubscription = parse(NewSubscription, body)
        kind = self.authorize(principal, caller, request.event_type)
        delivery = request.delivery.lower()
        url = check_url(request.callback_url)
        if delivery == "push" and url is None:
            raise BadRequest("a push subscription needs a callback_url")
        if delivery == "pull" and url is not None:
            raise BadRequest("a pull subscription takes no callback_url")
        row = Subscription(
            id="sub_" + secrets.token_hex(10),
            client_id=principal.client_id,
            event_type=request.event_type,
            delivery=delivery,
            callback_url=url,
            purpose=caller.purpose if kind.personal_data else None,
            provinces=request.provinces or [],
            ttl_s=request.ttl_s or self.default_ttl_s,
        )
        return await asyncio.to_thread(self._insert, row, request.replay_from)

    def _insert(self, row: Subscription, replay_from: int | None) -> dict[str, Any]:
        with Session(self._engine, expire_on_commit=False) as session:
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise SubscriptionExists(
                    "this client already subscribes to this event type (PATCH it)"
                ) from None
            if replay_from is not None:
                replay(session, row, replay_from)
            session.commit()
            return view(row)

    def _own(self, session: Session, principal: Principal, subscription_id: str) -> Subscription:
        row = session.get(Subscription, subscription_id) if len(subscription_id) <= 40 else None
        if row is None or row.client_id != principal.client_id:
            raise UnknownSubscription("no such subscription of this client")
        return row

    def find(self, principal: Principal, event_type: str) -> str:
        """The id of the client's subscription to an event type (GovStack paths)."""
        with Session(self._engine) as session:
            found = session.exec(
                select(Subscription.id)
                .where(Subscription.client_id == principal.client_id)
                .where(Subscription.event_type == event_type)
            ).first()
        if found is None:
            raise UnknownSubscription("this client has no subscription to this event type")
        return found

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(Subscription)
                .where(Subscription.client_id == principal.client_id)
                .order_by(col(Subscription.created_at))
            ).all()
            return [view(row) for row in rows]

    def get(self, principal: Principal, subscription_id: str) -> dict[str, Any]:
        with Session(self._engine) as session:
            row = self._own(session, principal, subscription_id)
            return view(row, backlog=_backlog(session, row.id))

    async def change(
        self,
        principal: Principal,
        caller: CallerHeaders,
        subscription_id: str,
        body: Any,
        check_url: UrlCheck,
    ) -> dict[str, Any]:
        request: SubscriptionChange = parse(SubscriptionChange, body)
        url = check_url(request.callback_url)

        def apply() -> dict[str, Any]:
            with Session(self._engine, expire_on_commit=False) as session:
                row = self._own(session, principal, subscription_id)
                if request.active or request.replay_from is not None:
                    self.authorize(principal, caller, row.event_type)  # grants still hold
                if url is not None:
                    if row.delivery != "push":
                        raise BadRequest("a pull subscription takes no callback_url")
                    row.callback_url = url
                if request.provinces is not None:
                    row.provinces = request.provinces
                if request.ttl_s is not None:
                    row.ttl_s = request.ttl_s
                if request.active is not None:
                    row.active = request.active
                row.updated_at = utcnow()
                session.add(row)
                if request.replay_from is not None:
                    replay(session, row, request.replay_from)
                session.commit()
                return view(row, backlog=_backlog(session, row.id))

        return await asyncio.to_thread(apply)

    def remove(self, principal: Principal, subscription_id: str) -> None:
        with Session(self._engine) as session:
            row = self._own(session, principal, subscription_id)
            session.exec(delete(EventDelivery).where(col(EventDelivery.subscription_id) == row.id))  # type: ignore[call-overload]
            session.delete(row)
            session.commit()

    # -- PULL ----------------------------------------------------------------------------

    async def pull(
        self, principal: Principal, caller: CallerHeaders, subscription_id: str
    ) -> dict[str, Any] | None:
        """The subscription's oldest unacknowledged event (None: nothing waiting), audited
        as a delivery about each of its subjects. It stays the next until acknowledged."""
        found = await asyncio.to_thread(self._pull_head, principal, subscription_id)
        if found is None:
            return None
        subscription, event = found
        service, kind = self.event_type(event.type)
        purpose = caller.purpose or subscription.purpose
        if not may_receive(principal, kind, service, purpose):
            raise Forbidden("this client may no longer receive this event type for this purpose")
        body = body_of(event, subscription, principal)
        await audit_delivery(
            self._gateway, caller.request_id, principal.client_id, event, "pull", purpose, body
        )
        self._metrics.deliveries.labels(subscription.id, "pulled").inc()
        return body

    def _pull_head(
        self, principal: Principal, subscription_id: str
    ) -> tuple[Subscription, Event] | None:
        now = utcnow()
        with Session(self._engine, expire_on_commit=False) as session:
            subscription = self._own(session, principal, subscription_id)
            if subscription.delivery != "pull":
                raise BadRequest("this is a push subscription: its events are sent to it")
            delivery = oldest_pending(session, subscription.id, now)
            if delivery is None:
                return None
            event = session.exec(select(Event).where(Event.id == delivery.event_id)).one()
            return subscription, event

    def acknowledge(self, principal: Principal, subscription_id: str, event_id: str) -> None:
        """Mark the event received; 404 unless it is this client's subscription's."""
        with Session(self._engine) as session:
            subscription = self._own(session, principal, subscription_id)
            row = _delivery_of(session, subscription, event_id)
            if row is None or row.status not in ("pending", "delivered"):
                raise UnknownEvent("no such event waiting for this subscription")
            if row.status == "pending":  # acknowledging twice is not an error
                row.status, row.delivered_at = "delivered", utcnow()
                row.attempts += 1
                session.add(row)
                session.commit()

    def event(self, principal: Principal, subscription_id: str, event_id: str) -> dict[str, Any]:
        """The delivery state of one event of the client's subscription (no payload)."""
        with Session(self._engine) as session:
            subscription = self._own(session, principal, subscription_id)
            row = _delivery_of(session, subscription, event_id)
            if row is None:
                raise UnknownEvent("no such event for this subscription")
            return {
                "id": row.event_id,
                "sequence": row.event_seq,
                "event_type": subscription.event_type,
                "status": row.status,
                "attempts": row.attempts,
                "delivered_at": iso(row.delivered_at),
                "expires_at": iso(row.expires_at),
            }


def _backlog(session: Session, subscription_id: str) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(EventDelivery)
            .where(EventDelivery.subscription_id == subscription_id)
            .where(EventDelivery.status == "pending")
        ).one()
    )


def backlog_by_subscription(engine: Engine) -> dict[str, tuple[int, float]]:
    """Each subscription's undelivered events and the age of its oldest (seconds)."""
    now = utcnow()
    with Session(engine) as session:
        rows = session.exec(
            select(
                Subscription.id,
                func.count(col(EventDelivery.id)),
                func.min(EventDelivery.created_at),
            )
            .join(
                EventDelivery,
                (col(EventDelivery.subscription_id) == Subscription.id)
                & (col(EventDelivery.status) == "pending"),
                isouter=True,
            )
            .group_by(Subscription.id)
        ).all()
    result = {}
    for sid, count, oldest in rows:
        since = aware(oldest)
        result[sid] = (int(count), (now - since).total_seconds() if since else 0.0)
    return result


def _delivery_of(
    session: Session, subscription: Subscription, event_id: str
) -> EventDelivery | None:
    """The subscription's delivery of one event, by the event's id as the caller sent it
    (cut to the ids' length: nothing longer can match)."""
    return session.exec(
        select(EventDelivery)
        .where(EventDelivery.subscription_id == subscription.id)
        .where(EventDelivery.event_id == event_id[:40])
    ).first()
