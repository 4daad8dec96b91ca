"""Operational endpoints: /health, /ready (no credential needed), /metrics (for the
networks in HUB_METRICS_NETWORKS, loopback by default, or with HUB_METRICS_TOKEN as a
Bearer token: its labels name the clients and their calls, issue 18 finding 8)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging

import orjson
from fastapi import APIRouter, Request
from pydantic import SecretStr
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select
from starlette.responses import Response

from hub.api.deps import HubDep, get_hub
from hub.core.metrics import CONTENT_TYPE
from hub.core.models import Job, Payment, WebhookDelivery
from hub.errors import Forbidden, Unauthenticated

log = logging.getLogger("hub.metrics")

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="The database and each upstream, as seen now")
async def ready(hub: HubDep) -> Response:
    """200 when the hub can serve (its database answers, its audit chain is whole);
    upstreams are reported, not gating.

    A national system being down must not take every hub process out of the load balancer:
    the other services still work, and calls to the failing one get a clear 503.
    """
    database, adapters = await asyncio.gather(hub.health.database(), hub.health.adapters())
    # A writer that found the audit chain cut off refuses every call: out of the pool.
    audit_ok = hub.audit.broken is None
    serving = database.ok and audit_ok
    body = {
        "status": "ready" if serving else "unavailable",
        "database": {
            "ok": database.ok,
            "detail": database.detail,
            "latency_ms": database.latency_ms,
        },
        "audit": {
            "ok": audit_ok,
            "detail": None if audit_ok else "the audit chain was cut off: see the hub's log",
        },
        "services": {
            name: {
                "ok": h.ok,
                "detail": h.detail,
                "latency_ms": h.latency_ms,
                "circuit": hub.registry.get(name).circuit.state,
                # the state is exchanged with the other hub processes through Redis, and
                # the last exchange worked (false: this process judges the upstream alone)
                "circuit_shared": hub.registry.get(name).circuit.shared,
            }
            for name, h in adapters.items()
        },
    }
    if serving and not all(h.ok for h in adapters.values()):
        body["status"] = "degraded"
    return Response(
        orjson.dumps(body), status_code=200 if serving else 503, media_type="application/json"
    )


@router.get("/metrics", summary="Prometheus metrics (loopback, HUB_METRICS_NETWORKS or the token)")
async def metrics(request: Request) -> Response:
    hub = get_hub(request)
    check_scraper(request, hub.settings.metrics_networks, hub.settings.metrics_token)
    try:
        hub.metrics.set_backlog(*await asyncio.to_thread(backlog, hub.engine))
    except SQLAlchemyError as exc:  # the rest of the metrics are still worth having
        log.warning("backlog metrics unavailable: %s", type(exc).__name__)
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE)


def check_scraper(request: Request, networks: list[str], token: SecretStr | None) -> None:
    """Let a scrape through from an allowed network or with the token; 401/403 otherwise."""
    if _from_networks(request.client.host if request.client else None, networks):
        return
    if token is None:
        raise Forbidden("metrics are served to HUB_METRICS_NETWORKS only")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthenticated("send Authorization: Bearer <HUB_METRICS_TOKEN>")


def _from_networks(host: str | None, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:  # no address (a Unix socket) or a test client's name
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def backlog(engine: Engine) -> tuple[dict[str, int], int, int]:
    """Unfinished jobs by service, pending payments, queued webhooks: three indexed counts."""
    with engine.connect() as conn:
        jobs = dict(
            conn.execute(
                select(Job.service, func.count()).where(Job.final == False).group_by(Job.service)  # noqa: E712
            ).all()
        )
        payments = conn.execute(
            select(func.count()).where(col(Payment.status).in_(("initiating", "pending")))
        ).scalar_one()
        webhooks = conn.execute(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(col(WebhookDelivery.delivered_at).is_(None))
            .where(col(WebhookDelivery.gave_up_at).is_(None))
        ).scalar_one()
    return jobs, int(payments), int(webhooks)
