"""Traffic: calls a minute over the last hour by service, agency and outcome, latency (mean
and longest a minute), and the top refusal codes. Charts (uPlot) where people would rather
look; the same figures as tables underneath, which is what a reader with JavaScript off
gets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from fastapi import APIRouter
from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine
from starlette.responses import Response

from hub.audit.chain import canonical_time
from hub.console import web
from hub.core.models import AuditRecord, Client, utcnow
from hub.security.auth import HUB_SERVICES

router = APIRouter(include_in_schema=False)

MINUTES = 60
#: The most active clients listed.
TOP = 20
#: The hub's own records (the console's, the admin API's) are not traffic.
NOT_TRAFFIC = frozenset({web.SERVICE, *HUB_SERVICES})


def _minute(engine: Engine, column: Any) -> Any:
    """The minute a timestamp falls in, as text `YYYY-MM-DD HH:MM` (UTC), in SQL: SQLite
    keeps timestamps as that text already, so a prefix is the cheapest bucket there."""
    if engine.dialect.name == "sqlite":
        return func.substr(column, 1, 16)
    return func.to_char(column, "YYYY-MM-DD HH24:MI")


def traffic(engine: Engine, now: dt.datetime | None = None) -> dict[str, Any]:
    """The last hour's calls, minute by minute, from the audit trail (every hub process),
    counted in the database: the answer's size depends on minutes, services and outcomes,
    never on the number of calls."""
    now = now or utcnow()
    start = (now - dt.timedelta(minutes=MINUTES - 1)).replace(second=0, microsecond=0)
    first = int(start.timestamp() // 60)
    records = AuditRecord.__table__  # type: ignore[attr-defined]
    clients = Client.__table__  # type: ignore[attr-defined]
    hour = and_(records.c.at >= start, records.c.service.not_in(sorted(NOT_TRAFFIC)))
    minute = _minute(engine, records.c.at).label("minute")
    kind = case(
        (records.c.status < 400, "ok"), (records.c.status < 500, "refused"), else_="failed"
    ).label("kind")
    # One pass over the hour, grouped finely enough to give every figure: the groups are
    # bounded by minutes x services x outcomes x clients x codes, all few.
    grouped_by = (minute, records.c.service, kind, records.c.client_id, records.c.code)
    per_minute = (
        select(
            *grouped_by,
            func.count(),
            func.sum(records.c.duration_ms),
            func.max(records.c.duration_ms),
        )
        .where(hour)
        .group_by(*grouped_by)
    )
    with engine.connect() as conn:
        grouped = conn.execute(per_minute).all()
        wanted = sorted({row.client_id for row in grouped})
        names = {
            row.id: row.agency or row.name
            for row in conn.execute(
                select(clients.c.id, clients.c.name, clients.c.agency).where(
                    clients.c.id.in_(wanted)
                )
            )
        }
    by_service: dict[str, list[int]] = defaultdict(lambda: [0] * MINUTES)
    by_outcome = {name: [0] * MINUTES for name in ("ok", "refused", "failed")}
    calls, total_ms = [0] * MINUTES, [0.0] * MINUTES
    max_ms: list[float | None] = [None] * MINUTES
    agencies: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    slots: dict[str, int] = {}
    for at_minute, service, outcome, client_id, code, number, summed, longest in grouped:
        slot = slots.get(at_minute)
        if slot is None:
            when = dt.datetime.strptime(str(at_minute), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
            slot = slots[at_minute] = int(when.timestamp() // 60) - first
        if not 0 <= slot < MINUTES:
            continue
        by_service[service][slot] += number
        by_outcome[outcome][slot] += number
        calls[slot] += number
        total_ms[slot] += summed or 0.0
        max_ms[slot] = max(max_ms[slot] or 0.0, longest or 0.0)
        agencies[names.get(client_id, client_id)] += number
        if outcome != "ok":
            refusals[code] += number
    return {
        "since": canonical_time(start),
        "calls": sum(calls),
        "minutes": [(first + i) * 60 for i in range(MINUTES)],
        "by_service": dict(sorted(by_service.items())),
        "by_outcome": by_outcome,
        "latency_ms": {
            "mean": [round(t / c, 1) if c else None for t, c in zip(total_ms, calls, strict=True)],
            "max": [None if m is None else round(m, 1) for m in max_ms],
        },
        "agencies": agencies.most_common(TOP),
        "refusals": refusals.most_common(10),
    }


@router.get(web.PREFIX + "/traffic")
@web.page("operator", "viewer")
async def traffic_page(page: web.Page) -> Response:
    figures = await asyncio.to_thread(traffic, page.hub.engine)
    return page.render("traffic.html", title="Traffic", figures=figures)
