"""Data reused: the seeds' headline measure of an LGSP, how many documents citizens no
longer had to bring because an agency looked them up. Each successful look-up or
verification counts, by day and month, procedure (the dossier's procedure code where a
payment names it), agency and national system; with the share of dossiers served by at
least one reused record. Also as CSV. Days are UTC days."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections import Counter
from typing import Any

from fastapi import APIRouter
from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.engine import Engine
from starlette.responses import Response

from hub.console import web
from hub.core.models import AuditRecord, Client, Payment, utcnow
from hub.errors import BadRequest

router = APIRouter(include_in_schema=False)

#: Operations that hand an agency a record the citizen would otherwise have brought.
REUSE_OPERATIONS = ("lookup", "verify", "records", "record", "marital-status", "by-representative")
DEFAULT_DAYS = 30
MAX_DAYS = 366
CSV_COLUMNS = ("day", "agency", "client", "system", "procedure", "reused")


def period(params: Any) -> tuple[dt.date, dt.date]:
    """[since, until] in days from the form: the last 30 days by default, at most 366."""
    today = utcnow().date()
    try:
        until = dt.date.fromisoformat(params.get("until") or today.isoformat())
        since = dt.date.fromisoformat(
            params.get("since") or (until - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        )
    except ValueError:
        raise BadRequest("since and until are dates, YYYY-MM-DD") from None
    if since > until or (until - since).days >= MAX_DAYS:
        raise BadRequest(f"the period is 1 to {MAX_DAYS} days, since before until")
    return since, until


def _bounds(since: dt.date, until: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(since, dt.time(), dt.UTC)
    return start, dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)


def reused(engine: Engine, systems: list[str], since: dt.date, until: dt.date) -> dict[str, Any]:
    """The counts, grouped in the database (one row per day, client, system and procedure)."""
    records = AuditRecord.__table__  # type: ignore[attr-defined]
    payments = Payment.__table__  # type: ignore[attr-defined]
    clients = Client.__table__  # type: ignore[attr-defined]
    start, end = _bounds(since, until)
    in_period = and_(
        records.c.at >= start, records.c.at < end, records.c.service.in_(systems or [""])
    )
    success = and_(
        in_period,
        records.c.status >= 200,
        records.c.status < 300,
        records.c.operation.in_(REUSE_OPERATIONS),
    )
    procedures = (
        select(payments.c.dossier_id, func.min(payments.c.procedure_code).label("procedure"))
        .group_by(payments.c.dossier_id)
        .subquery()
    )
    # SQLite keeps timestamps as `YYYY-MM-DD HH:MM:SS…` text: a prefix is its cheapest day
    day = (
        func.substr(records.c.at, 1, 10)
        if engine.dialect.name == "sqlite"
        else func.date(records.c.at)
    )
    grouped = (
        select(day, records.c.client_id, records.c.service, procedures.c.procedure, func.count())
        .select_from(records.outerjoin(procedures, procedures.c.dossier_id == records.c.dossier_id))
        .where(success)
        .group_by(day, records.c.client_id, records.c.service, procedures.c.procedure)
    )
    # both counts of dossiers in one pass: all of the period's, and those served
    dossiers = select(
        func.count(distinct(records.c.dossier_id)),
        func.count(distinct(case((success, records.c.dossier_id)))),
    ).where(in_period, records.c.dossier_id.is_not(None))
    with engine.connect() as conn:
        rows = conn.execute(grouped).all()
        wanted = sorted({row.client_id for row in rows})
        names = {
            row.id: (row.agency or "", row.name)
            for row in conn.execute(
                select(clients.c.id, clients.c.name, clients.c.agency).where(
                    clients.c.id.in_(wanted)
                )
            )
        }
        all_dossiers, served = conn.execute(dossiers).one()
    lines = []
    for when, client_id, system, procedure, count in rows:
        agency, client = names.get(client_id, ("", client_id))
        lines.append(
            {
                "day": str(when)[:10],
                "agency": agency,
                "client": client,
                "system": system,
                "procedure": procedure or "",
                "reused": count,
            }
        )
    lines.sort(key=lambda line: (line["day"], line["agency"], line["system"]))
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "lines": lines,
        "total": sum(line["reused"] for line in lines),
        "dossiers": all_dossiers,
        "dossiers_served": served,
        "share": None if not all_dossiers else round(100 * served / all_dossiers, 1),
        **{key: _totals(lines, key) for key in ("day", "agency", "system", "procedure")},
        "month": sorted(_by_month(lines).items()),
    }


def _totals(lines: list[dict[str, Any]], key: str) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for line in lines:
        counts[line[key]] += line["reused"]
    return sorted(counts.items())


def _by_month(lines: list[dict[str, Any]]) -> Counter[str]:
    months: Counter[str] = Counter()
    for line in lines:
        months[line["day"][:7]] += line["reused"]
    return months


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (names are typed by people)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def as_csv(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for line in figures["lines"]:
        writer.writerow([_cell(line[column]) for column in CSV_COLUMNS])
    return out.getvalue()


async def _figures(page: web.Page) -> dict[str, Any]:
    since, until = period(page.request.query_params)
    systems = page.hub.registry.names()
    return await asyncio.to_thread(reused, page.hub.engine, list(systems), since, until)


@router.get(web.PREFIX + "/reused")
@web.page("operator", "viewer")
async def reused_page(page: web.Page) -> Response:
    return page.render("reused.html", title="Data reused", figures=await _figures(page))


@router.get(web.PREFIX + "/reused.csv")
@web.page("operator", "viewer")
async def reused_csv(page: web.Page) -> Response:
    figures = await _figures(page)
    name = f"data-reused-{figures['since']}-{figures['until']}.csv"
    return Response(
        as_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
