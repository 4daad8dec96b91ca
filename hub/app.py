"""The app factory: `create_app(settings)` builds everything; nothing is built at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from hub import __version__
from hub.adapter import Adapter, AsyncAdapter, PaymentProvider
from hub.api import problems
from hub.api.direct import DirectRoutes, HubApp
from hub.api.middleware import RequestIdMiddleware
from hub.api.routes import (
    admin,
    catalogue,
    citizens,
    directory,
    govstack,
    oauth,
    operations,
    payments,
    resources,
    subscriptions,
)
from hub.api.routes import jobs as job_routes
from hub.audit.archive import AuditRetention
from hub.audit.chain import signing_key
from hub.audit.writer import AuditWriter
from hub.capabilities.events.service import event_services
from hub.capabilities.jobs.service import job_services
from hub.capabilities.payments.desk import default_provider, payment_services
from hub.capabilities.webhooks import WebhookSender, audit_by
from hub.console import install as install_console
from hub.core.config import Settings
from hub.core.db import make_engine, prepare
from hub.core.gateway import Gateway
from hub.core.health import HealthMonitor
from hub.core.memory import tune_allocator
from hub.core.metrics import Metrics
from hub.core.registry import AdapterLoadError, AdapterRegistry, classes_from, discover
from hub.core.sealed import install_sealer
from hub.core.state import Hub
from hub.core.worker import BackgroundWorker, Step
from hub.resilience.circuit_sync import CircuitSync
from hub.resilience.retry import RetryPolicy
from hub.security.auth import Authenticator
from hub.security.ratelimit import MemoryCounters, RateLimiter, RedisCounters
from hub.security.verification import VerificationGuard, VerificationPolicy

log = logging.getLogger("hub")


#: The request headers a browser may send cross-origin when HUB_CORS_ORIGINS allows it.
CORS_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "x-dossier-id",
    "x-officer-id",
    "x-purpose",
    "x-request-id",
)


def _adapter_routers(registry: AdapterRegistry) -> list[APIRouter]:
    """The resource routes that installed adapters name for themselves."""
    routers = []
    for loaded in registry:
        if not issubclass(loaded.cls, AsyncAdapter):
            continue
        if router := job_routes.adapter_routes(loaded.cls):
            routers.append(router)
    return routers


def _default_payment_provider(registry: AdapterRegistry, settings: Settings) -> str | None:
    providers = [loaded.cls.name for loaded in registry if issubclass(loaded.cls, PaymentProvider)]
    try:
        return default_provider(providers, settings.payment_provider)
    except ValueError as exc:
        raise AdapterLoadError(str(exc)) from None


def create_app(
    settings: Settings | None = None,
    *,
    adapters: Iterable[type[Adapter]] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build a hub app.

    - `adapters`: use these adapter classes instead of the installed `hub.adapters` entry points.
    - `transports`: per-adapter httpx transports (tests route upstream calls to in-process mocks).
    - `webhook_transport`: the transport webhooks to clients go out by (tests).

    Raises AdapterLoadError (bad adapter, mapping or configuration) before anything is served.
    """
    settings = settings or Settings()
    settings.check()
    classes = (
        classes_from(adapters) if adapters is not None else discover(settings.enabled_adapters)
    )
    registry = AdapterRegistry.build(settings, classes, transports)
    default_payment = _default_payment_provider(registry, settings)
    engine = make_engine(settings.database_url)
    install_sealer(engine, settings.sealer())
    metrics = Metrics()
    for loaded in registry:
        loaded.circuit.on_change = metrics.on_circuit_change
        metrics.on_circuit_change(loaded.cls.name, loaded.circuit.state)
    secret = settings.secret_key.get_secret_value().encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tune_allocator()  # large upstream answers give their memory back (hub.core.memory)
        await asyncio.to_thread(prepare, engine, migrate=settings.migrate_on_start)
        audit = AuditWriter(
            engine,
            key=signing_key(secret),
            batch_max=settings.audit_batch_max,
            checkpoint_every=settings.audit_checkpoint_every,
            checkpoint_interval_s=settings.audit_checkpoint_interval_s,
            witness=settings.audit_witness_path,
            on_commit=metrics.on_audit_commit,
            on_broken=metrics.on_audit_chain_broken,
            fsync=settings.audit_fsync_on,
        )
        audit.start()
        counters = (
            RedisCounters(settings.redis_url, settings.redis_prefix, settings.redis_timeout_s)
            if settings.redis_url
            else MemoryCounters()
        )
        limiter = RateLimiter(
            counters,
            global_per_minute=settings.rate_limit_per_minute,
            on_refused=metrics.on_rate_limited,
            on_error=metrics.rate_limit_errors.inc,
        )
        gateway = Gateway(
            registry=registry,
            authenticator=Authenticator(
                engine, secret, settings.client_cache_ttl_s, token_ttl=settings.oauth_token_ttl_s
            ),
            audit=audit,
            metrics=metrics,
            retry=RetryPolicy(
                attempts=settings.retry_attempts,
                deadline_s=settings.retry_deadline_s,
                initial_s=settings.retry_initial_backoff_s,
                max_s=settings.retry_max_backoff_s,
            ),
            pseudonym_key=secret,
            limiter=limiter,
        )
        gateway.verifications = VerificationGuard(
            limiter,
            VerificationPolicy(
                per_subject=settings.verify_per_subject,
                subject_window_s=settings.verify_subject_window_s,
                per_minute=settings.verify_per_minute,
                mismatch_alert=settings.verify_mismatch_alert,
            ),
            pseudonym=gateway.pseudonym,
            on_alert=lambda client, pattern: metrics.verify_alerts.labels(client, pattern).inc(),
        )
        circuits = (
            CircuitSync(
                [loaded.circuit for loaded in registry],
                counters.client,
                prefix=settings.redis_prefix,
                interval_s=settings.circuit_sync_s,
                call_s=settings.retry_deadline_s,  # no call to upstream lasts longer
                on_error=metrics.circuit_sync_errors.inc,
            )
            if isinstance(counters, RedisCounters)
            else None
        )
        health = HealthMonitor(registry, engine, settings.health_cache_s)
        jobs = job_services(registry, gateway, engine, settings)
        payments = payment_services(registry, gateway, engine, settings, default_payment)
        webhooks = WebhookSender(
            engine,
            secret,
            max_attempts=settings.webhook_max_attempts,
            initial_backoff_s=settings.webhook_initial_backoff_s,
            max_backoff_s=settings.webhook_max_backoff_s,
            timeout_s=settings.webhook_timeout_s,
            transport=webhook_transport,
            public_only=settings.callbacks_public_only,
            audit=audit_by(gateway),
        )
        steps: list[Step] = [(f"poll {name}", job.poll_once) for name, job in jobs.items()]
        steps += [(f"query {p.service} payments", p.query_once) for p in payments]
        steps.append(("deliver webhooks", webhooks.run_once))
        events = event_services(
            registry, gateway, engine, metrics, settings, secret, webhook_transport
        )
        steps += events.steps
        if settings.audit_retention_days > 0:
            retention = AuditRetention(
                engine,
                signing_key(secret),
                settings.audit_archive_dir,
                settings.audit_retention_days,
                settings.audit_archive_interval_s,
            )
            steps.append(("archive audit records", retention.run_once))
        worker = BackgroundWorker(steps, settings.worker_interval_s)
        app.state.hub = Hub(
            settings,
            engine,
            registry,
            gateway,
            audit,
            metrics,
            health,
            jobs,
            payments,
            webhooks,
            worker,
            circuits,
            events,
        )
        await registry.startup()
        if circuits is not None:
            circuits.start()
        # Everything built so far lives as long as the process: move it out of the garbage
        # collector's generations so each collection scans only per-request objects.
        gc.collect()
        gc.freeze()
        log.info("hub started with adapters: %s", ", ".join(registry.names()) or "(none)")
        if settings.background_tasks:
            worker.start()
        try:
            yield
        finally:
            await worker.aclose()
            if circuits is not None:
                await circuits.aclose()  # before the Redis client closes with the counters
            if gateway.limiter is not None:
                await gateway.limiter.counters.aclose()
            await webhooks.aclose()
            await events.aclose()
            await audit.aclose()
            await registry.aclose()
            engine.dispose()

    app = HubApp(
        title="LGSP Hub",
        version=__version__,
        description="One authenticated, audited REST API in front of the national systems.",
        lifespan=lifespan,
    )
    problems.install(app)
    if settings.cors_origins:  # off by default; inside RequestIdMiddleware, so preflights
        app.add_middleware(  # get the request id and security headers too
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=[
                "x-request-id",
                "retry-after",
                "location",
                "idempotent-replayed",
                "www-authenticate",
            ],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    routers = [
        operations.router,
        catalogue.router,
        citizens.router,
        job_routes.router,
        payments.router,
        subscriptions.router,
        govstack.router,
        directory.router,
        admin.router,
        oauth.router,
        resources.resource_routes(registry),
        *_adapter_routers(registry),
    ]
    own_routes = list(app.routes)  # the docs and the OpenAPI document, before ours join
    for router in routers:
        app.include_router(router)
    install_console(app)  # /console/: server-rendered pages, not on the direct path
    # With CORS on, every answer goes through its middleware.
    if settings.direct_path and not settings.cors_origins:
        app.serve_directly(
            DirectRoutes([*own_routes, *(r for router in routers for r in router.routes)])
        )
    return app
