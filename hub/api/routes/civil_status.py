"""Resource routes of the civil-status service, served by the same pipeline as the generic route."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import caller_headers, envelope, get_hub, query_params, string_path_param

router = APIRouter(prefix="/v1/civil-status", tags=["civil-status"])

SERVICE = "civil-status"
_PERSONAL_ID_QUERY = {
    "parameters": [
        {
            "name": "personal_id",
            "in": "query",
            "required": True,
            "description": "12-digit personal ID (CCCD)",
            "schema": {"type": "string"},
        }
    ]
}


@router.get(
    "/records",
    summary="A citizen's civil-status records (birth, marriage, death)",
    openapi_extra=_PERSONAL_ID_QUERY,
)
async def list_records(request: Request) -> Response:
    caller = caller_headers(request)
    payload = query_params(request, "personal_id")
    result = await get_hub(request).gateway.call(caller, SERVICE, "records", payload)
    return envelope(result, caller.request_id)


@router.get(
    "/records/{kind}/{number}",
    summary="One civil-status record by kind and registration number",
    openapi_extra={
        "parameters": [
            *string_path_param("kind", "birth, marriage or death")["parameters"],
            *string_path_param("number", "The record's registration number")["parameters"],
        ]
    },
)
async def get_record(request: Request) -> Response:
    caller = caller_headers(request)
    payload = {"kind": request.path_params["kind"], "number": request.path_params["number"]}
    result = await get_hub(request).gateway.call(caller, SERVICE, "record", payload)
    return envelope(result, caller.request_id)


@router.get(
    "/marital-status",
    summary="Confirmation of a citizen's marital status, derived from the records",
    openapi_extra=_PERSONAL_ID_QUERY,
)
async def marital_status(request: Request) -> Response:
    caller = caller_headers(request)
    payload = query_params(request, "personal_id")
    result = await get_hub(request).gateway.call(caller, SERVICE, "marital-status", payload)
    return envelope(result, caller.request_id)
