"""Resource routes of the population service, served by the same pipeline as the generic route."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import caller_headers, envelope, get_hub, json_body, string_path_param

router = APIRouter(prefix="/v1/citizens", tags=["citizens"])

SERVICE = "population"


@router.get(
    "/{personal_id}",
    summary="A citizen's record from the National Population Database",
    openapi_extra=string_path_param("personal_id", "12-digit personal ID (CCCD)"),
)
async def get_citizen(request: Request) -> Response:
    caller = caller_headers(request)
    payload = {"personal_id": request.path_params["personal_id"]}
    result = await get_hub(request).gateway.call(caller, SERVICE, "lookup", payload)
    return envelope(result, caller.request_id)


@router.post("/verify", summary="Check a citizen's stated details against the national record")
async def verify_citizen(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    body = json_body(request, hub.settings.max_body_bytes)
    result = await hub.gateway.call(caller, SERVICE, "verify", body)
    return envelope(result, caller.request_id)
