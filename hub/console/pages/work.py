"""Work in flight: asynchronous requests (judicial records) not final, payments awaiting
their callback, webhook deliveries failing or given up, and the payment reconciliation
report for a day. Each list is bounded; none shows a data subject's personal ID."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from starlette.responses import Response

from hub.capabilities.payments.reconcile import reconcile
from hub.console import web
from hub.core.models import Job, Payment, WebhookDelivery, iso
from hub.errors import BadRequest

router = APIRouter(include_in_schema=False)

LIST_MAX = 100


def _listed(engine: Engine, statement: Any, columns: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(statement.subquery())).scalar()
        rows = conn.execute(statement.limit(LIST_MAX)).all()
    listed = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        listed.append({k: iso(v) if isinstance(v, dt.datetime) else v for k, v in values.items()})
    return {"total": total or 0, "rows": listed}


def in_flight(engine: Engine) -> dict[str, Any]:
    """The three queues, oldest first, at most LIST_MAX rows each with the full count."""
    jobs = ["id", "service", "client_id", "status", "dossier_id", "created_at", "next_poll_at"]
    payments = [
        "id",
        "service",
        "client_id",
        "status",
        "amount",
        "procedure_code",
        "dossier_id",
        "created_at",
        "query_attempts",
        "last_error",
    ]
    hooks = ["id", "client_id", "event", "attempts", "last_status", "next_attempt_at", "gave_up_at"]

    def chosen(model: Any, names: list[str]) -> list[Any]:
        table = model.__table__
        return [table.c[name] for name in names]

    job_table = Job.__table__  # type: ignore[attr-defined]
    pay_table = Payment.__table__  # type: ignore[attr-defined]
    hook_table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    return {
        "jobs": _listed(
            engine,
            select(*chosen(Job, jobs))
            .where(job_table.c.final.is_(False))
            .order_by(job_table.c.created_at),
            jobs,
        ),
        "payments": _listed(
            engine,
            select(*chosen(Payment, payments))
            .where(pay_table.c.status.in_(["initiating", "pending"]))
            .order_by(pay_table.c.created_at),
            payments,
        ),
        "webhooks": _listed(
            engine,
            select(*chosen(WebhookDelivery, hooks))
            .where(hook_table.c.delivered_at.is_(None))
            .where(or_(hook_table.c.attempts > 0, hook_table.c.gave_up_at.is_not(None)))
            .order_by(hook_table.c.created_at),
            hooks,
        ),
    }


@router.get(web.PREFIX + "/work")
@web.page("operator")
async def work_page(page: web.Page) -> Response:
    queues = await asyncio.to_thread(in_flight, page.hub.engine)
    providers = [service.service for service in page.hub.payments]
    return page.render(
        "work.html", title="Work in flight", queues=queues, providers=providers, report=None
    )


@router.post(web.PREFIX + "/work/reconcile")
@web.page("operator", action="reconcile")
async def reconcile_day(page: web.Page) -> Response:
    providers = [service.service for service in page.hub.payments]
    provider = web.one_of(page.form, "provider", tuple(providers))
    try:
        day = dt.date.fromisoformat(page.form.get("date", ""))
    except ValueError:
        raise BadRequest("the day is a date, YYYY-MM-DD") from None

    async def work() -> tuple[dict[str, Any], str | None]:
        report = await reconcile(page.hub.gateway, page.hub.engine, provider, day)
        return report.as_dict(), None

    report = await page.audited("reconcile", work)
    queues = await asyncio.to_thread(in_flight, page.hub.engine)
    return page.render(
        "work.html", title="Work in flight", queues=queues, providers=providers, report=report
    )
