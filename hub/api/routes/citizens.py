"""Resource routes of the population service, served by the same pipeline as the generic route."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import CallerDep, HubDep, envelope, read_json

router = APIRouter(prefix="/v1/citizens", tags=["citizens"])

SERVICE = "population"


@router.get("/{personal_id}", summary="A citizen's record from the National Population Database")
async def get_citizen(personal_id: str, hub: HubDep, caller: CallerDep) -> Response:
    result = await hub.gateway.call(caller, SERVICE, "lookup", {"personal_id": personal_id})
    return envelope(result, caller.request_id)


@router.post("/verify", summary="Check a citizen's stated details against the national record")
async def verify_citizen(request: Request, hub: HubDep, caller: CallerDep) -> Response:
    payload = await read_json(request, hub.settings.max_body_bytes)
    result = await hub.gateway.call(caller, SERVICE, "verify", payload)
    return envelope(result, caller.request_id)
