"""Audit: search the trail (subject, client, officer, dossier, purpose, service, operation,
outcome, time range; paged and bounded), one record's detail, the chain's verification
status with a button to verify now, and the citizen access report for one personal ID,
printable.

Every search, record and report shows personal IDs: each is audited under the auditor, about
the subject searched for (as `GET /admin/audit` is), with the purpose the auditor states.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.responses import Response

from hub.audit.chain import canonical_time, signing_key
from hub.audit.search import FILTER_LIMITS, access_report, parse_int, parse_time
from hub.audit.verify import verify
from hub.console import web
from hub.core.models import AuditRecord
from hub.errors import AuditChainBroken, BadRequest, InvalidPersonalId, NotFound
from hub.identifiers import parse_personal_id

router = APIRouter(include_in_schema=False)

PAGE_MAX = 200
PAGE_DEFAULT = 50
#: The console's text filters -> their column and longest value.
TEXT_FILTERS = {
    "subject_id": 64,
    "client_id": FILTER_LIMITS["client_id"],
    "officer_id": 128,
    "dossier_id": 128,
    "purpose": 64,
    "service": FILTER_LIMITS["service"],
    "operation": FILTER_LIMITS["operation"],
}
OUTCOMES = {"ok": (0, 400), "refused": (400, 500), "failed": (500, 1000)}
KNOWN = {*TEXT_FILTERS, "outcome", "since", "until", "after", "limit", "why", "q"}
DEFAULT_WHY = "inspection"
#: How far back the "last verified" look-up reads (records, newest first).
VERIFY_LOOKBACK = 100_000


@dataclass(frozen=True)
class Search:
    texts: Mapping[str, str]
    outcome: str | None
    since: Any
    until: Any
    after: int
    limit: int

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Search:
        """From the search form; 400 naming the field on an unknown, too long or bad value."""
        unknown = sorted(set(params) - KNOWN)
        if unknown:
            raise BadRequest(f"unknown search field {unknown[0]!r}")
        texts = {}
        for name, limit in TEXT_FILTERS.items():
            value = params.get(name, "").strip()
            if value:
                if len(value) > limit:
                    raise BadRequest(f"{name} is at most {limit} characters")
                texts[name] = value
        outcome = params.get("outcome") or None
        if outcome is not None and outcome not in OUTCOMES:
            raise BadRequest("outcome must be ok, refused or failed")
        return cls(
            texts,
            outcome,
            parse_time(params.get("since"), "since"),
            parse_time(params.get("until"), "until"),
            parse_int(params.get("after"), "after", 0, 0, 2**62),
            parse_int(params.get("limit"), "limit", PAGE_DEFAULT, 1, PAGE_MAX),
        )


def run_search(engine: Engine, search: Search) -> dict[str, Any]:
    """One page, newest first, of the records matching every filter."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    statement = select(table)
    if search.after:
        statement = statement.where(table.c.id < search.after)
    for name, value in search.texts.items():
        statement = statement.where(table.c[name] == value)
    if search.outcome is not None:
        low, high = OUTCOMES[search.outcome]
        statement = statement.where(table.c.status >= low).where(table.c.status < high)
    if search.since is not None:
        statement = statement.where(table.c.at >= search.since)
    if search.until is not None:
        statement = statement.where(table.c.at < search.until)
    statement = statement.order_by(table.c.id.desc()).limit(search.limit)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(statement)]
    for row in rows:
        row["at"] = canonical_time(row["at"])
    full = len(rows) == search.limit
    return {"records": rows, "next_after": rows[-1]["id"] if full else None}


def _why(params: Mapping[str, str]) -> str:
    why = (params.get("why") or DEFAULT_WHY).strip()
    if len(why) > 64:
        raise BadRequest("the purpose is at most 64 characters")
    return why


def last_verification(engine: Engine) -> dict[str, Any] | None:
    """The newest chain verification the audit trail holds (console or admin API)."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    statement = (
        select(table.c.at, table.c.code, table.c.officer_id)
        .where(table.c.operation == "audit-verify")
        .order_by(table.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        newest = conn.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)).scalar()
        if newest is None:
            return None
        row = conn.execute(statement.where(table.c.id > newest - VERIFY_LOOKBACK)).first()
    if row is None:
        return None
    return {"at": canonical_time(row.at), "intact": row.code == "OK", "by": row.officer_id}


@router.get(web.PREFIX + "/audit")
@web.page("auditor")
async def audit_page(page: web.Page) -> Response:
    params = dict(page.request.query_params)
    found = None
    if params.get("q"):
        search = Search.from_params(params)

        async def work() -> tuple[dict[str, Any], str | None]:
            result = await asyncio.to_thread(run_search, page.hub.engine, search)
            return result, search.texts.get("subject_id")

        found = await page.audited("audit-search", work, purpose=_why(params), personal_data=True)
    verified = await asyncio.to_thread(last_verification, page.hub.engine)
    return page.render(
        "audit.html",
        title="Audit",
        params=params,
        found=found,
        verified=verified,
        outcomes=list(OUTCOMES),
        next_query=_next_query(params, found),
    )


def _next_query(params: Mapping[str, str], found: dict[str, Any] | None) -> str | None:
    from urllib.parse import urlencode

    if not found or found["next_after"] is None:
        return None
    return urlencode({**params, "after": found["next_after"]})


@router.get(web.PREFIX + "/audit/records/{record_id}")
@web.page("auditor")
async def record_page(page: web.Page) -> Response:
    record_id = parse_int(str(page.request.path_params["record_id"]), "record", 0, 1, 2**62)
    table = AuditRecord.__table__  # type: ignore[attr-defined]

    async def work() -> tuple[dict[str, Any], str | None]:
        def read() -> dict[str, Any] | None:
            with page.hub.engine.connect() as conn:
                row = conn.execute(select(table).where(table.c.id == record_id)).first()
            return None if row is None else dict(row._mapping)

        row = await asyncio.to_thread(read)
        if row is None:
            raise NotFound("no such audit record")
        row["at"] = canonical_time(row["at"])
        return row, row["subject_id"]

    why = _why(page.request.query_params)
    record = await page.audited("audit-record", work, purpose=why, personal_data=True)
    return page.render("audit_record.html", title="Audit", record=record)


@router.post(web.PREFIX + "/audit/verify")
@web.page("auditor", action="audit-verify")
async def verify_now(page: web.Page) -> Response:
    settings = page.hub.settings
    secret = settings.secret_key.get_secret_value().encode()
    outcome: dict[str, Any] = {}

    async def work() -> tuple[dict[str, Any], str | None]:
        found = await asyncio.to_thread(
            functools.partial(
                verify,
                page.hub.engine,
                signing_key(secret),
                Path(settings.audit_archive_dir),
                witness_file=settings.audit_witness_path,
            )
        )
        outcome.update(
            intact=found.ok,
            records=found.records,
            archived=found.archived,
            checkpoints=found.checkpoints,
            first_problem=found.problems[0] if found.problems else None,
        )
        if not found.ok:
            raise AuditChainBroken("the chain does not verify: see the first problem")
        return dict(outcome), None

    with contextlib.suppress(AuditChainBroken):  # audited as AUDIT_CHAIN_BROKEN; shown below
        await page.audited("audit-verify", work)
    return page.render("audit_verify.html", title="Audit", outcome=outcome)


@router.get(web.PREFIX + "/audit/report")
@web.page("auditor")
async def report_page(page: web.Page) -> Response:
    params = page.request.query_params
    personal_id = params.get("personal_id", "").strip()
    if not personal_id:
        return page.render("access_report.html", title="Audit", report=None, why=DEFAULT_WHY)
    try:
        parse_personal_id(personal_id)
    except ValueError:
        raise InvalidPersonalId("not a valid personal ID (12 digits)") from None
    after = parse_int(params.get("after"), "after", 0, 0, 2**62)

    async def work() -> tuple[dict[str, Any], str | None]:
        report = await asyncio.to_thread(
            access_report, page.hub.engine, personal_id, after=after, limit=PAGE_MAX
        )
        return report, personal_id

    why = _why(params)
    report = await page.audited("access-report", work, purpose=why, personal_data=True)
    return page.render("access_report.html", title="Audit", report=report, why=why)
