"""Reading the audit trail: the auditors' search (`GET /admin/audit`) and the access report
for a data subject (`GET /v1/citizens/{personal_id}/access-log`): who accessed this person's
data, when, and for what purpose.

Both read the database only: records moved to archives past retention are out of reach here
(the archive files are for `hub audit verify` and for an auditor's own tools).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from hub.audit.chain import canonical_time
from hub.core.models import AuditRecord, AuditSubject, Client
from hub.errors import BadRequest, echoed

MAX_PAGE = 500

#: The longest value of each text filter: the column's size (a subject filter also becomes
#: the subject of the search's own audit record).
FILTER_LIMITS = {
    "client_id": 40,
    "service": 64,
    "operation": 64,
    "subject_id": 64,
    "request_id": 128,
}


@dataclass(frozen=True)
class AuditQuery:
    """Filters of `GET /admin/audit`; every one optional. Pages go by record id: `after` is
    the `next_after` of the previous page."""

    client_id: str | None = None
    service: str | None = None
    operation: str | None = None
    subject_id: str | None = None
    request_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    after: int = 0
    limit: int = 100

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> AuditQuery:
        """From query parameters; 400 naming the parameter on a bad value."""
        known = {
            "client_id",
            "service",
            "operation",
            "subject_id",
            "request_id",
            "since",
            "until",
            "after",
            "limit",
        }
        unknown = sorted(set(params) - known)
        if unknown:
            raise BadRequest(
                echoed(unknown[0], "unknown query parameter {!r}", "unknown query parameter")
            )
        texts = {}
        for name in ("client_id", "service", "operation", "subject_id", "request_id"):
            value = params.get(name)
            if value:
                if len(value) > FILTER_LIMITS[name]:
                    raise BadRequest(f"{name} is at most {FILTER_LIMITS[name]} characters")
                texts[name] = value
        return cls(
            **texts,
            since=parse_time(params.get("since"), "since"),
            until=parse_time(params.get("until"), "until"),
            after=parse_int(params.get("after"), "after", 0, 0, 2**62),
            limit=parse_int(params.get("limit"), "limit", 100, 1, MAX_PAGE),
        )


def parse_time(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)  # overflows at the ends of the calendar
    except (ValueError, OverflowError):
        raise BadRequest(f"{name} must be an ISO 8601 date or time") from None


def parse_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _fields(value: str | None) -> list[str] | None:
    return None if value is None else orjson.loads(value)


def about(personal_id: str) -> Any:
    """The records whose subject is this person, or that disclosed them among others (the
    `audit_subjects` index, hub.audit.subjects): two index look-ups."""
    records = AuditRecord.__table__  # type: ignore[attr-defined]
    index = AuditSubject.__table__  # type: ignore[attr-defined]
    listed = select(index.c.record_id).where(index.c.subject_id == personal_id)
    return or_(records.c.subject_id == personal_id, records.c.id.in_(listed))


def search(engine: Engine, query: AuditQuery) -> dict[str, Any]:
    """One page of records matching every filter given, oldest first."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    statement = select(table).where(table.c.id > query.after)
    for name in ("client_id", "service", "operation", "request_id"):
        value = getattr(query, name)
        if value is not None:
            statement = statement.where(table.c[name] == value)
    if query.subject_id is not None:
        statement = statement.where(about(query.subject_id))
    if query.since is not None:
        statement = statement.where(table.c.at >= query.since)
    if query.until is not None:
        statement = statement.where(table.c.at < query.until)
    statement = statement.order_by(table.c.id).limit(query.limit)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(statement)]
    records = []
    for row in rows:
        row["at"] = canonical_time(row["at"])
        row["fields"] = _fields(row["fields"])
        row["subjects"] = _fields(row.get("subjects"))
        records.append(row)
    full = len(records) == query.limit
    return {"records": records, "next_after": records[-1]["id"] if full else None}


def access_report(
    engine: Engine,
    personal_id: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """Who accessed this person's data: each call about them, newest last, with the agency
    and application that made it, the purpose stated, the dossier it served and what came
    of it; the records that disclosed them beside another subject too (a spouse's marriage
    record, the parcel they own). The civil servant's own identifier is left out (it is
    theirs, and the agency answers for its staff); an auditor finds it under `GET /admin/audit`."""
    records = AuditRecord.__table__  # type: ignore[attr-defined]
    clients = Client.__table__  # type: ignore[attr-defined]
    statement = (
        select(
            records.c.id,
            records.c.at,
            records.c.service,
            records.c.operation,
            records.c.purpose,
            records.c.dossier_id,
            records.c.status,
            records.c.code,
            records.c.fields,
            clients.c.name,
            clients.c.agency,
        )
        .select_from(records.outerjoin(clients, clients.c.id == records.c.client_id))
        .where(about(personal_id))
        .where(records.c.id > after)
    )
    if since is not None:
        statement = statement.where(records.c.at >= since)
    if until is not None:
        statement = statement.where(records.c.at < until)
    statement = statement.order_by(records.c.id).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    entries = []
    for row in rows:
        fields = _fields(row.fields)
        if 200 <= row.status < 300:
            outcome = "disclosed" if fields else "no data"
        elif 400 <= row.status < 500:
            outcome = "refused"
        else:
            outcome = "failed"
        entries.append(
            {
                "id": row.id,
                "at": canonical_time(row.at),
                "agency": row.agency,
                "application": row.name,
                "service": row.service,
                "operation": row.operation,
                "purpose": row.purpose,
                "dossier_id": row.dossier_id,
                "outcome": outcome,
                "fields": fields,
            }
        )
    full = len(entries) == limit
    return {
        "personal_id": personal_id,
        "entries": entries,
        "next_after": entries[-1]["id"] if full else None,
    }
