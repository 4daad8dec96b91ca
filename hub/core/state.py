"""`Hub`: everything one app holds, the type the routes and the app factory share.

It lives below both `hub.app` (which builds it) and `hub.api` (which reads it from
`request.app.state.hub`), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from hub.audit.writer import AuditWriter
from hub.capabilities.events.service import Events
from hub.capabilities.jobs.service import JobService
from hub.capabilities.payments.desk import Payments
from hub.capabilities.webhooks import WebhookSender
from hub.core.config import Settings
from hub.core.gateway import Gateway
from hub.core.health import HealthMonitor
from hub.core.metrics import Metrics
from hub.core.registry import AdapterRegistry
from hub.core.worker import BackgroundWorker
from hub.resilience.circuit_sync import CircuitSync


@dataclass
class Hub:
    """Everything one app holds; reached from routes as `request.app.state.hub`."""

    settings: Settings
    engine: Engine
    registry: AdapterRegistry
    gateway: Gateway
    audit: AuditWriter
    metrics: Metrics
    health: HealthMonitor
    jobs: dict[str, JobService]
    payments: Payments  # one service per installed payment provider
    webhooks: WebhookSender
    worker: BackgroundWorker
    circuits: CircuitSync | None  # circuit state shared through Redis (None: no Redis)
    events: Events | None = None  # the events capability (subscriptions, feeds, delivery)
