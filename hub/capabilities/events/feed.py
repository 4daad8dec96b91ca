"""Polling upstream change feeds: any hub process, one at a time per feed (a leased cursor).

Each tick, for every adapter with feed event types: lease its cursor row, read one page
of `changes(cursor, limit)`, check it, then store its new events with their deliveries and
move the cursor, in one transaction that only commits while the cursor is still the one
read (another process that took over a lapsed lease and moved it wins; ours is dropped,
and its events, having the same ids, are not stored twice). A page that breaks the
contract (garbage, an unknown event type) or an upstream failure stores nothing, leaves
the cursor, and counts in `hub_event_feed_errors_total`; events already stored that come
again count in `hub_event_feed_repeats_total`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from hub.capabilities.events.metrics import EventMetrics
from hub.capabilities.events.models import EventCursor
from hub.capabilities.events.store import fan_out, new_rows
from hub.capabilities.webhooks import lease
from hub.core.models import utcnow
from hub.core.registry import AdapterRegistry, LoadedAdapter
from hub.errors import HubError
from hub.events import ChangePage, EventType, UpstreamEvent

log = logging.getLogger("hub.events")

#: Pages one feed is read in one tick at most, when upstream says more is waiting.
PAGES_PER_TICK = 5


class FeedGarbage(Exception):
    """A change-feed page that breaks the contract (its kind only: never its content)."""


@dataclass(frozen=True)
class _Feed:
    loaded: LoadedAdapter
    declared: Mapping[str, EventType]

    @property
    def service(self) -> str:
        return self.loaded.cls.name


class FeedPoller:
    """Reads every adapter's change feed; one `run_once()` per worker tick."""

    def __init__(
        self,
        engine: Engine,
        registry: AdapterRegistry,
        metrics: EventMetrics,
        *,
        page_size: int,
        lease_s: float,
        timeout_s: float,
    ) -> None:
        self._engine, self._metrics = engine, metrics
        self.page_size, self.lease_s, self.timeout_s = page_size, lease_s, timeout_s
        self.feeds = [
            _Feed(loaded, {e.name: e for e in loaded.cls.event_types})
            for loaded in registry
            if any(e.source == "feed" for e in loaded.cls.event_types)
        ]

    async def run_once(self) -> int:
        counts = await asyncio.gather(*(self._poll(feed) for feed in self.feeds))
        return sum(counts)

    async def _poll(self, feed: _Feed) -> int:
        stored = 0
        for _ in range(PAGES_PER_TICK):
            held = await asyncio.to_thread(self._lease, feed.service)
            if held is None:
                return stored
            cursor = held[0]
            try:
                page = await asyncio.wait_for(
                    feed.loaded.instance.changes(cursor, self.page_size), self.timeout_s
                )
                events = _checked(feed, page)
            except Exception as exc:  # upstream down, garbage, an adapter's bug: same here
                # The stable code, as hub_requests has it (UPSTREAM_BAD_RESPONSE…); the type
                # of anything that is not a HubError (a timeout, an adapter's bug).
                kind = exc.code if isinstance(exc, HubError) else type(exc).__name__
                self._metrics.feed_errors.labels(feed.service, kind).inc()
                log.warning("change feed of %s not read: %s", feed.service, kind)
                await asyncio.to_thread(self._release, feed.service, failed=True)
                return stored
            added = await asyncio.to_thread(self._commit, feed, cursor, page, events)
            stored += added
            if not page.more or page.cursor in (None, cursor):
                break
        return stored

    def _lease(self, service: str) -> tuple[str | None] | None:
        """The feed's cursor, leased to this process (None: another process holds it)."""
        now = utcnow()
        with Session(self._engine) as session:  # type: ignore[call-overload]
            if session.get(EventCursor, service) is None:
                session.add(EventCursor(id=service))
                try:
                    session.commit()
                except IntegrityError:  # another process made it first
                    session.rollback()
            if not lease(session, EventCursor, service, now, seconds=self.lease_s):
                return None
            session.commit()
            row = session.get(EventCursor, service)
            return (row.cursor if row else None,)

    def _release(self, service: str, *, failed: bool) -> None:
        with Session(self._engine) as session:  # type: ignore[call-overload]
            row = session.get(EventCursor, service)
            if row is not None:
                row.lease_until = None
                row.errors += 1 if failed else 0
                session.add(row)
                session.commit()

    def _commit(
        self, feed: _Feed, cursor: str | None, page: ChangePage, events: Sequence[UpstreamEvent]
    ) -> int:
        with Session(self._engine) as session:  # type: ignore[call-overload]
            rows = new_rows(session, feed.service, feed.declared, events)
            fan_out(session, rows)
            types = [row.type for row in rows]  # read now: the commit expires the rows
            column = col(EventCursor.cursor)
            unchanged = column.is_(None) if cursor is None else column == cursor
            moved = session.execute(
                update(EventCursor)
                .where(col(EventCursor.id) == feed.service)
                .where(unchanged)
                .values(
                    cursor=page.cursor if page.cursor is not None else cursor,
                    updated_at=utcnow(),
                    errors=0,
                    lease_until=None,
                )
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                session.rollback()  # another process moved it: its page stands
                return 0
            session.commit()
        if len(types) < len(events):
            self._metrics.feed_repeats.labels(feed.service).inc(len(events) - len(types))
        for kind in types:
            self._metrics.published.labels(kind).inc()
        return len(types)


def _checked(feed: _Feed, page: object) -> Sequence[UpstreamEvent]:
    """The page's events, after checking they are what the contract says."""
    if not isinstance(page, ChangePage):
        raise FeedGarbage("not a ChangePage")
    if page.cursor is not None and (not isinstance(page.cursor, str) or len(page.cursor) > 1000):
        raise FeedGarbage("bad cursor")
    for event in page.events:
        if not isinstance(event, UpstreamEvent) or event.type not in feed.declared:
            raise FeedGarbage("unknown event type")
        if not isinstance(event.key, str) or not event.key or len(event.key) > 200:
            raise FeedGarbage("bad key")
        if not isinstance(event.payload, feed.declared[event.type].payload):
            raise FeedGarbage("payload of another model")
    return page.events
