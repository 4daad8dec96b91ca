"""Traffic: calls a minute over the last hour by service, agency and outcome, latency, and
the top refusal codes. Charts (uPlot) where people would rather look; the same figures as
tables underneath, which is what a reader with JavaScript off gets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.responses import Response

from hub.audit.chain import canonical_time
from hub.console import web
from hub.core.models import AuditRecord, Client, aware, utcnow
from hub.security.auth import HUB_SERVICES

router = APIRouter(include_in_schema=False)

MINUTES = 60
#: Most audit records read (the newest of the hour): the page's cost stays bounded.
MAX_ROWS = 50_000
#: The hub's own records (the console's, the admin API's) are not traffic.
NOT_TRAFFIC = frozenset({web.SERVICE, *HUB_SERVICES})


def outcome(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "failed"


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)


def traffic(engine: Engine, now: dt.datetime | None = None) -> dict[str, Any]:
    """The last hour's calls, minute by minute, from the audit trail (every hub process)."""
    now = now or utcnow()
    start = (now - dt.timedelta(minutes=MINUTES - 1)).replace(second=0, microsecond=0)
    records = AuditRecord.__table__  # type: ignore[attr-defined]
    clients = Client.__table__  # type: ignore[attr-defined]
    statement = (
        select(
            records.c.at,
            records.c.client_id,
            records.c.service,
            records.c.status,
            records.c.code,
            records.c.duration_ms,
        )
        .where(records.c.at >= start)
        .where(records.c.service.not_in(sorted(NOT_TRAFFIC)))
        .order_by(records.c.id.desc())
        .limit(MAX_ROWS)
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
        names = {
            row.id: row.agency or row.name
            for row in conn.execute(select(clients.c.id, clients.c.name, clients.c.agency))
        }
    minutes = [start + dt.timedelta(minutes=i) for i in range(MINUTES)]
    by_service: dict[str, list[int]] = defaultdict(lambda: [0] * MINUTES)
    by_outcome: dict[str, list[int]] = {name: [0] * MINUTES for name in ("ok", "refused", "failed")}
    latency: list[list[float]] = [[] for _ in range(MINUTES)]
    agencies: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for row in rows:
        at = aware(row.at)
        assert at is not None
        slot = int((at - start).total_seconds() // 60)
        if not 0 <= slot < MINUTES:
            continue
        by_service[row.service][slot] += 1
        by_outcome[outcome(row.status)][slot] += 1
        latency[slot].append(row.duration_ms)
        agencies[names.get(row.client_id, row.client_id)] += 1
        if row.status >= 400:
            refusals[row.code] += 1
    return {
        "since": canonical_time(start),
        "calls": len(rows),
        "truncated": len(rows) == MAX_ROWS,
        "minutes": [int(m.timestamp()) for m in minutes],
        "by_service": dict(sorted(by_service.items())),
        "by_outcome": by_outcome,
        "p95_ms": [_p95(values) for values in latency],
        "agencies": agencies.most_common(20),
        "refusals": refusals.most_common(10),
    }


@router.get(web.PREFIX + "/traffic")
@web.page("operator", "viewer")
async def traffic_page(page: web.Page) -> Response:
    figures = await asyncio.to_thread(traffic, page.hub.engine)
    return page.render("traffic.html", title="Traffic", figures=figures)
