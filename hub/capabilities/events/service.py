"""The events capability as one app holds it: built by `event_services` in the app factory."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy.engine import Engine

from hub.capabilities.events.admin import prune
from hub.capabilities.events.delivery import EventSender
from hub.capabilities.events.feed import FeedPoller
from hub.capabilities.events.metrics import EventMetrics
from hub.capabilities.events.subscriptions import Subscriptions, backlog_by_subscription
from hub.core.config import Settings
from hub.core.gateway import Gateway
from hub.core.metrics import Metrics
from hub.core.registry import AdapterRegistry
from hub.core.worker import Step

#: How often each process looks for events past retention.
PRUNE_EVERY_S = 3600.0


@dataclass
class Events:
    """The feed poller, the PUSH sender and the subscriptions, with their metrics."""

    engine: Engine
    metrics: EventMetrics
    subscriptions: Subscriptions
    sender: EventSender
    feeds: FeedPoller
    retention_days: float = 30.0
    _pruned_at: float = field(default=-PRUNE_EVERY_S, repr=False)
    _gauged: set[str] = field(default_factory=set, repr=False)

    @property
    def steps(self) -> list[Step]:
        """The background work: read change feeds, push due events, gauge the backlogs."""
        return [
            ("read change feeds", self.feeds.run_once),
            ("push events", self.sender.run_once),
            ("gauge event backlogs", self.gauge_once),
            ("prune old events", self.prune_once),
        ]

    async def prune_once(self) -> int:
        """Events past retention go, at most once every PRUNE_EVERY_S per process."""
        if self.retention_days <= 0 or time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return 0
        self._pruned_at = time.monotonic()
        return await asyncio.to_thread(prune, self.engine, self.retention_days)

    async def gauge_once(self) -> int:
        backlogs = await asyncio.to_thread(backlog_by_subscription, self.engine)
        for sid, (count, age) in backlogs.items():
            self.metrics.backlog.labels(sid).set(count)
            self.metrics.oldest_age.labels(sid).set(age)
        for gone in self._gauged - set(backlogs):  # ended subscriptions leave the metrics
            for gauge in (self.metrics.backlog, self.metrics.oldest_age):
                with contextlib.suppress(KeyError):
                    gauge.remove(gone)
        self._gauged = set(backlogs)
        return 0

    async def aclose(self) -> None:
        await self.sender.aclose()


def event_services(
    registry: AdapterRegistry,
    gateway: Gateway,
    engine: Engine,
    metrics: Metrics,
    settings: Settings,
    secret: bytes,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Events:
    event_metrics = EventMetrics(metrics.registry)
    sender = EventSender(
        engine,
        registry,
        gateway,
        event_metrics,
        secret,
        max_attempts=settings.webhook_max_attempts,
        initial_backoff_s=settings.webhook_initial_backoff_s,
        max_backoff_s=settings.webhook_max_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        lease_s=settings.event_lease_s,
        transport=transport,
        public_only=settings.callbacks_public_only,
    )
    feeds = FeedPoller(
        engine,
        registry,
        event_metrics,
        page_size=settings.event_feed_page_size,
        lease_s=settings.event_lease_s,
        timeout_s=settings.retry_deadline_s,
    )
    subscriptions = Subscriptions(
        engine, registry, gateway, event_metrics, default_ttl_s=settings.event_ttl_s
    )
    return Events(
        engine, event_metrics, subscriptions, sender, feeds, settings.event_retention_days
    )
