"""The events capability's metrics, on the app's own Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.published = Counter(
            "hub_events_published", "Events stored from upstream, by type", ["type"], registry=r
        )
        self.feed_errors = Counter(
            "hub_event_feed_errors",
            "Change-feed pages not taken (upstream failed, or answered garbage), by cause",
            ["service", "kind"],
            registry=r,
        )
        self.feed_repeats = Counter(
            "hub_event_feed_repeats",
            "Events a change feed sent again (stored once, ignored after)",
            ["service"],
            registry=r,
        )
        self.deliveries = Counter(
            "hub_event_deliveries",
            "Event deliveries by subscription and outcome (delivered, failed, dead, pulled)",
            ["subscription", "outcome"],
            registry=r,
        )
        self.backlog = Gauge(
            "hub_event_backlog",
            "Events not yet delivered nor acknowledged, by subscription",
            ["subscription"],
            registry=r,
        )
        self.oldest_age = Gauge(
            "hub_event_oldest_undelivered_seconds",
            "Age of the oldest event not yet delivered, by subscription",
            ["subscription"],
            registry=r,
        )
