"""The hub's own routes about a citizen: the profile that draws on several services at once
(its sections declared by the adapters) and the access report from the audit trail. The
population service's own routes (`GET /v1/citizens/{personal_id}`, `POST
/v1/citizens/verify`) are declared by its adapter (hub.api.routes.resources)."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub import __version__
from hub.api.deps import caller_headers, envelope, get_hub, string_path_param
from hub.audit.search import MAX_PAGE, access_report, parse_int, parse_time
from hub.core.gateway import CallResult
from hub.core.state import Hub
from hub.errors import (
    BadRequest,
    Forbidden,
    HubError,
    InvalidPersonalId,
    UpstreamTimeout,
    echoed,
)
from hub.identifiers import InvalidIdentifier, parse_personal_id
from hub.security.auth import Principal

router = APIRouter(prefix="/v1/citizens", tags=["citizens"])


@dataclass(frozen=True)
class _Section:
    name: str
    service: str
    operation: str


def profile_sections(hub: Hub) -> list[_Section]:
    """The profile's sections: every installed operation that declares one (`profile=`)."""
    return [
        _Section(spec.profile, loaded.cls.name, spec.name)
        for loaded in hub.registry
        for spec in loaded.cls.operations.values()
        if spec.profile
    ]


@router.get(
    "/{personal_id}/profile",
    summary="A citizen's profile from several national systems at once",
    description="Every section an installed adapter declares (`@operation(profile=…)`: the "
    "population record, civil-status records, the enterprises the citizen represents…), "
    "fetched concurrently. A section whose system fails, times out or is not granted to the "
    "caller is marked so; the others still come back, and the status is 200.",
    openapi_extra=string_path_param("personal_id", "12-digit personal ID (CCCD)"),
)
async def get_profile(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    personal_id = request.path_params["personal_id"]

    async def fan_out(principal: Principal) -> tuple[dict[str, Any], str | None]:
        try:
            parse_personal_id(personal_id)
        except InvalidIdentifier as exc:
            raise InvalidPersonalId(str(exc)) from None
        sections = profile_sections(hub)
        granted = [s for s in sections if principal.may_call(s.service, s.operation)]
        if not granted:
            raise Forbidden("this client may call none of the services the profile draws on")
        # One purpose check up front: without it every section would fail the same way.
        principal.authorize(
            granted[0].service,
            granted[0].operation,
            personal_data=True,
            purpose=caller.purpose,
            officer_id=caller.officer_id,
            dossier_id=caller.dossier_id,
        )
        payload = {"personal_id": personal_id}
        tasks = {
            s.name: asyncio.create_task(
                hub.gateway.call(caller, s.service, s.operation, payload, principal=principal)
            )
            for s in granted
        }
        try:
            await asyncio.wait(tasks.values(), timeout=hub.settings.profile_timeout_s)
        finally:  # past the deadline, or the caller went away: stop asking about the person
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        data: dict[str, Any] = {"personal_id": personal_id}
        for section in sections:
            data[section.name] = _section_body(tasks.get(section.name))
        return data, personal_id

    # Audited as profile:profile (refusals included); each section's call is audited too.
    # The grants checked are the sections' own, above.
    result = await hub.gateway.local(
        caller, "profile", "profile", fan_out, personal_data=True, authorize=False
    )
    return envelope(dataclasses.replace(result, adapter_version=__version__), caller.request_id)


def _section_body(task: asyncio.Task[CallResult] | None) -> dict[str, Any]:
    if task is None:
        return _section_error("not_permitted", Forbidden("not granted to this client"))
    if task.cancelled():
        return _section_error("error", UpstreamTimeout("no answer within the profile's deadline"))
    exc = task.exception()
    if exc is None:
        return {"status": "ok", "data": task.result().data}
    if isinstance(exc, HubError):
        return _section_error("error", exc)
    return _section_error("error", HubError())


def _section_error(status: str, error: HubError) -> dict[str, Any]:
    return {
        "status": status,
        "error": {"status": error.status, "code": error.code, "title": error.title},
    }


#: The access report is served from the hub's own audit trail; clients are granted it as
#: `audit:access-log` (the citizens' portal of a province, say).
ACCESS_LOG = ("audit", "access-log")


@router.get(
    "/{personal_id}/access-log",
    summary="Who accessed this citizen's data, when and for what purpose",
    openapi_extra={
        "parameters": [
            *string_path_param("personal_id", "12-digit personal ID (CCCD)")["parameters"],
            *(
                {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
                for name, kind in (
                    ("since", "string"),
                    ("until", "string"),
                    ("after", "integer"),
                    ("limit", "integer"),
                )
            ),
        ]
    },
)
async def access_log(request: Request) -> Response:
    """Every call the hub made about this person, from its audit trail: the agency and
    application, the time, the purpose and dossier stated, what came of it and the fields
    disclosed. Reading it is itself a personal-data call, audited like any other."""
    hub, caller = get_hub(request), caller_headers(request)
    personal_id = request.path_params["personal_id"]
    params = request.query_params

    async def report(principal: Principal) -> tuple[dict[str, Any], str | None]:
        try:
            parse_personal_id(personal_id)
        except InvalidIdentifier as exc:
            raise InvalidPersonalId(str(exc)) from None
        unknown = sorted(set(params) - {"since", "until", "after", "limit"})
        if unknown:
            raise BadRequest(
                echoed(unknown[0], "unknown query parameter {!r}", "unknown query parameter")
            )
        data = await asyncio.to_thread(
            access_report,
            hub.engine,
            personal_id,
            since=parse_time(params.get("since"), "since"),
            until=parse_time(params.get("until"), "until"),
            after=parse_int(params.get("after"), "after", 0, 0, 2**62),
            limit=parse_int(params.get("limit"), "limit", 100, 1, MAX_PAGE),
        )
        return data, personal_id

    service, operation = ACCESS_LOG
    result = await hub.gateway.local(caller, service, operation, report, personal_data=True)
    return envelope(result, caller.request_id)
