"""The events capability as one app holds it: built by `event_services` in the app factory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from hub.capabilities.events.delivery import EventSender
from hub.capabilities.events.feed import FeedPoller
from hub.capabilities.events.metrics import EventMetrics
from hub.capabilities.events.subscriptions import Subscriptions, backlog_by_subscription
from hub.core.config import Settings
from hub.core.gateway import Gateway
from hub.core.metrics import Metrics
from hub.core.registry import AdapterRegistry
from hub.core.worker import Step


@dataclass
class Events:
    """The feed poller, the PUSH sender and the subscriptions, with their metrics."""

    engine: Engine
    metrics: EventMetrics
    subscriptions: Subscriptions
    sender: EventSender
    feeds: FeedPoller

    @property
    def steps(self) -> list[Step]:
        """The background work: read change feeds, push due events, gauge the backlogs."""
        return [
            ("read change feeds", self.feeds.run_once),
            ("push events", self.sender.run_once),
            ("gauge event backlogs", self.gauge_once),
        ]

    async def gauge_once(self) -> int:
        backlogs = await asyncio.to_thread(backlog_by_subscription, self.engine)
        for sid, (count, age) in backlogs.items():
            self.metrics.backlog.labels(sid).set(count)
            self.metrics.oldest_age.labels(sid).set(age)
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
    return Events(engine, event_metrics, subscriptions, sender, feeds)
