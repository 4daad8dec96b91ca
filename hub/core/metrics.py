"""Prometheus metrics of one app (its own registry, so several apps can live in one test run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hub.resilience.circuit import STATE_VALUES

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class OperationMetrics:
    """The labelled children of one service operation, looked up once (labels() is not free)."""

    duration: Any
    upstream: Any
    retries: Any


class Metrics:
    """The hub's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "hub_requests",
            "Calls through the hub by outcome code",
            ["client", "service", "operation", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "hub_request_duration_seconds",
            "Time the hub took to answer a call",
            ["service", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "hub_upstream_duration_seconds",
            "Time upstream took, per attempt",
            ["service", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "hub_upstream_retries",
            "Upstream attempts retried",
            ["service", "operation"],
            registry=r,
        )
        self.jobs_unfinished = Gauge(
            "hub_jobs_unfinished",
            "Asynchronous requests not final yet (the job queue), every hub process together",
            ["service"],
            registry=r,
        )
        self.payments_pending = Gauge(
            "hub_payments_pending", "Payments opened and not yet paid or failed", registry=r
        )
        self.webhooks_queued = Gauge(
            "hub_webhooks_queued", "Webhooks not yet delivered nor given up", registry=r
        )
        self._jobs_seen: set[str] = set()
        self.verify_alerts = Counter(
            "hub_verify_alerts",
            "Enumeration patterns seen on verifications (hub.security.verification)",
            ["client", "pattern"],
            registry=r,
        )
        self.auth_failures = Counter(
            "hub_auth_failures", "Calls refused for a missing or bad credential", registry=r
        )
        self.audit_commit = Histogram(
            "hub_audit_commit_seconds",
            "Time to commit one batch of audit records",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.audit_records = Counter("hub_audit_records", "Audit records committed", registry=r)
        self.audit_chain_broken = Gauge(
            "hub_audit_chain_broken",
            "1 when this process found records cut off the end of the audit chain (it then "
            "writes no audit record and every call answers 503); alert on it",
            registry=r,
        )
        self.circuit_state = Gauge(
            "hub_circuit_state",
            "Each upstream's circuit as this process applies it (decided here, or adopted "
            "from another process through Redis): 0 closed, 1 half-open, 2 open",
            ["service"],
            registry=r,
        )
        self.rate_limited = Counter(
            "hub_rate_limited", "Calls refused with 429 by a rate limit", ["client"], registry=r
        )
        self.rate_limit_errors = Counter(
            "hub_rate_limit_errors",
            "Rate-limit counts Redis failed (rate limits are then counted in process memory "
            "for a back-off)",
            registry=r,
        )
        self.circuit_sync_errors = Counter(
            "hub_circuit_sync_errors",
            "Exchanges of circuit state with Redis that failed (circuits then work per process)",
            registry=r,
        )
        self.circuit_refusals = Counter(
            "hub_circuit_refusals",
            "Calls refused at once: circuit open, or too many in flight (bulkhead)",
            ["service"],
            registry=r,
        )
        self.adapter_errors = Counter(
            "hub_adapter_errors",
            "Calls failed by an adapter's own bug (500 ADAPTER_ERROR): an exception that is not "
            "upstream's, or an answer off the operation's output model",
            ["service"],
            registry=r,
        )
        self._per_operation: dict[tuple[str, str], OperationMetrics] = {}

    def for_operation(self, service: str, operation: str) -> OperationMetrics:
        key = (service, operation)
        found = self._per_operation.get(key)
        if found is None:
            found = self._per_operation[key] = OperationMetrics(
                self.duration.labels(service, operation),
                self.upstream_duration.labels(service, operation),
                self.retries.labels(service, operation),
            )
        return found

    def on_rate_limited(self, client_id: str) -> None:
        self.rate_limited.labels(client_id).inc()

    def on_circuit_change(self, service: str, state: str) -> None:
        self.circuit_state.labels(service).set(STATE_VALUES[state])  # type: ignore[index]

    def on_audit_commit(self, seconds: float, size: int) -> None:
        self.audit_commit.observe(seconds)
        self.audit_records.inc(size)

    def on_audit_chain_broken(self) -> None:
        self.audit_chain_broken.set(1)

    def set_backlog(self, jobs: dict[str, int], payments: int, webhooks: int) -> None:
        """The queues of background work, as the database holds them for every process."""
        for service in set(self._jobs_seen) | set(jobs):
            self.jobs_unfinished.labels(service).set(jobs.get(service, 0))
        self._jobs_seen.update(jobs)
        self.payments_pending.set(payments)
        self.webhooks_queued.set(webhooks)

    def render(self) -> bytes:
        return generate_latest(self.registry)
