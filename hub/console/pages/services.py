"""Services: each adapter's state live (ready, circuit, latency and errors over 5 and 60
minutes, the last error), its catalogue entry, and, when its upstream is one of our mocks,
a switch to inject a fault and clear it (the mocks' `PUT/DELETE /_mock/faults`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import weakref
from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.responses import RedirectResponse, Response

from hub.audit.chain import canonical_time
from hub.console import web
from hub.core.models import AuditRecord, utcnow
from hub.core.registry import LoadedAdapter
from hub.errors import BadRequest, HubUnavailable, NotFound

router = APIRouter(include_in_schema=False)

#: Most audit records read for the figures: the newest of the last hour, every service
#: together (the 5-minute figures are whole below 20,000 calls in 5 minutes).
MAX_ROWS = 20_000
WINDOWS_MIN = (5, 60)
FAULT_PATH = "/_mock/faults"
MOCK_TIMEOUT_S = 1.0
#: The switch's faults -> the mocks' short form (mocks/_faults.py, parse_fault_body).
FAULT_KINDS = ("down", "slow", "error", "malformed")


def _percentile(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def all_figures(engine: Engine, services: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per service: calls, p50/p95 latency and error rate (answers of 500 and over) over the
    last 5 and 60 minutes, and the last error, from the audit trail (so every hub process's
    calls count). One range read of the hour (the `at` index), at most MAX_ROWS records,
    the columns reduced in the database."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    now = utcnow()
    recent = now - dt.timedelta(minutes=min(WINDOWS_MIN))
    statement = (
        select(
            table.c.service,
            table.c.duration_ms,
            (table.c.status >= 500).label("failed"),
            (table.c.at >= recent).label("recent"),
        )
        .where(table.c.at >= now - dt.timedelta(minutes=max(WINDOWS_MIN)))
        .where(table.c.service.in_(list(services) or [""]))
        .order_by(table.c.id.desc())
        .limit(MAX_ROWS)
    )
    last = (
        select(table.c.service, table.c.code, table.c.at)
        .where(table.c.at >= now - dt.timedelta(minutes=max(WINDOWS_MIN)))
        .where(table.c.status >= 500)
        .order_by(table.c.id.desc())
        .limit(len(services) * 50)
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
        errors = conn.execute(last).all()
    durations: dict[tuple[str, int], list[float]] = {}
    failures: dict[tuple[str, int], int] = {}
    for service, duration, failed, is_recent in rows:
        for minutes in WINDOWS_MIN if is_recent else WINDOWS_MIN[1:]:
            durations.setdefault((service, minutes), []).append(duration)
            failures[(service, minutes)] = failures.get((service, minutes), 0) + bool(failed)
    figures: dict[str, dict[str, Any]] = {}
    for service in services:
        windows = {}
        for minutes in WINDOWS_MIN:
            values = sorted(durations.get((service, minutes), []))
            windows[minutes] = {
                "calls": len(values),
                "p50": _percentile(values, 0.5),
                "p95": _percentile(values, 0.95),
                "error_rate": round(100 * failures[(service, minutes)] / len(values), 1)
                if values
                else None,
            }
        error = next((e for e in errors if e.service == service), None)
        figures[service] = {
            "windows": windows,
            "last_error": None
            if error is None
            else {"code": error.code, "at": canonical_time(error.at)},
        }
    return figures


def _fault_url(loaded: LoadedAdapter) -> str:
    return str(httpx.URL(loaded.instance.http.base_url).copy_with(path=FAULT_PATH, query=None))


#: An upstream found not to be one of our mocks is not asked again for this long: the live
#: table must not send a request a national system does not know every few seconds.
NOT_A_MOCK_S = 600.0
_not_mocks: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


async def mock_faults(loaded: LoadedAdapter, *, production: bool = False) -> dict[str, Any] | None:
    """The faults the upstream's mock has on, or None when the upstream is not our mock (in
    production no upstream is taken for one: the switch is for testers)."""
    if production:
        return None
    checked = _not_mocks.get(loaded.instance)
    if checked is not None and time.monotonic() - checked < NOT_A_MOCK_S:
        return None
    found = await _ask_mock(loaded)
    if found is None:
        _not_mocks[loaded.instance] = time.monotonic()
    return found


async def _ask_mock(loaded: LoadedAdapter) -> dict[str, Any] | None:
    try:
        response = await loaded.instance.http.get(_fault_url(loaded), timeout=MOCK_TIMEOUT_S)
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, OSError):
        return None
    if not isinstance(body, dict) or "latency_ms" not in body:
        return None
    defaults = {"latency_ms": 0, "error_rate": 0.0, "fault_rate": 1.0}
    return {key: value for key, value in body.items() if value != defaults.get(key, False)}


async def _state(page: web.Page) -> list[dict[str, Any]]:
    hub = page.hub
    loaded = list(hub.registry)
    health = await hub.health.adapters()
    names = [a.cls.name for a in loaded]
    production = hub.settings.environment == "production"
    figures_by_name, faults = await asyncio.gather(
        asyncio.to_thread(all_figures, hub.engine, names),
        asyncio.gather(*(mock_faults(a, production=production) for a in loaded)),
    )
    figures = [figures_by_name[name] for name in names]
    services = []
    for adapter, figure, fault in zip(loaded, figures, faults, strict=True):
        probe = health.get(adapter.cls.name)
        circuit = adapter.circuit.state
        ready = bool(probe and probe.ok)
        services.append(
            {
                "name": adapter.cls.name,
                "title": adapter.cls.title,
                "version": adapter.cls.version,
                "ready": ready,
                "probe": probe.detail if probe else None,
                "circuit": circuit,
                "healthy": ready and circuit == "closed",
                "mock": fault is not None,
                "faults": fault or {},
                **figure,
            }
        )
    return services


@router.get(web.PREFIX + "/services")
@web.page("operator", "viewer")
async def services_page(page: web.Page) -> Response:
    return page.render("services.html", title="Services", services=await _state(page))


@router.get(web.PREFIX + "/services/live")
@web.page("operator", "viewer")
async def services_live(page: web.Page) -> Response:
    """The state table alone, which the page re-reads every few seconds (htmx)."""
    return page.render("services_live.html", title="Services", services=await _state(page))


@router.get(web.PREFIX + "/services/{name}")
@web.page("operator", "viewer")
async def service_detail(page: web.Page) -> Response:
    loaded = _adapter(page)
    entry = loaded.cls.describe()
    for operation in entry["operations"]:
        for key in ("input_schema", "output_schema"):
            operation[key] = json.dumps(operation[key], indent=2, ensure_ascii=False)
    return page.render("service.html", title="Services", entry=entry)


def _adapter(page: web.Page) -> LoadedAdapter:
    name = str(page.request.path_params["name"])
    if name not in page.hub.registry:
        raise NotFound("no such service")
    return page.hub.registry.get(name)


def fault_body(form: dict[str, str]) -> dict[str, Any]:
    """The mock's `PUT /_mock/faults` body for the switch's form (400 on a bad value)."""
    kind = web.one_of(form, "kind", FAULT_KINDS)
    if kind == "down":
        return {"fault": "http_503"}
    if kind == "malformed":
        return {"fault": "malformed"}
    if kind == "slow":
        ms = form.get("ms", "")
        if not (ms.isascii() and ms.isdigit()) or not 1 <= int(ms) <= 60_000:
            raise BadRequest("the delay is a whole number of milliseconds, 1 to 60000")
        return {"fault": "latency", "ms": int(ms)}
    try:
        rate = float(form.get("rate", ""))
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 1:
        raise BadRequest("the error rate is a share above 0 and at most 1, e.g. 0.5")
    return {"fault": "error", "rate": rate}


async def _send_fault(page: web.Page, method: str, body: dict[str, Any] | None) -> None:
    loaded = _adapter(page)
    production = page.hub.settings.environment == "production"
    if await mock_faults(loaded, production=production) is None:
        raise BadRequest("this service's upstream is not one of the hub's mocks")
    try:
        response = await loaded.instance.http.request(
            method, _fault_url(loaded), json=body, timeout=MOCK_TIMEOUT_S
        )
    except (httpx.HTTPError, OSError):
        raise HubUnavailable("the mock did not answer") from None
    if response.status_code != 200:
        raise BadRequest("the mock refused the fault")


@router.post(web.PREFIX + "/services/{name}/fault")
@web.page("operator", action="set-fault")
async def set_fault(page: web.Page) -> Response:
    loaded = _adapter(page)

    async def work() -> tuple[dict[str, Any], str | None]:
        body = fault_body(page.form)
        await _send_fault(page, "PUT", body)
        return {"service": loaded.cls.name, **body}, None

    await page.audited("set-fault", work)
    return RedirectResponse(web.PREFIX + "/services", status_code=303)


@router.post(web.PREFIX + "/services/{name}/fault/clear")
@web.page("operator", action="clear-fault")
async def clear_fault(page: web.Page) -> Response:
    loaded = _adapter(page)

    async def work() -> tuple[dict[str, Any], str | None]:
        await _send_fault(page, "DELETE", None)
        return {"service": loaded.cls.name}, None

    await page.audited("clear-fault", work)
    return RedirectResponse(web.PREFIX + "/services", status_code=303)
