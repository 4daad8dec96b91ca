"""Resource routes of the business-registration service."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import caller_headers, envelope, get_hub, query_params, string_path_param

router = APIRouter(prefix="/v1/enterprises", tags=["enterprises"])

SERVICE = "business-registration"


@router.get(
    "",
    summary="Search enterprises by name prefix, a page at a time",
    openapi_extra={
        "parameters": [
            {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}},
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "page_size", "in": "query", "schema": {"type": "integer", "maximum": 100}},
        ]
    },
)
async def search(request: Request) -> Response:
    caller = caller_headers(request)
    params = query_params(request, "name", "page", "page_size")
    if "name" in params:
        params["name_prefix"] = params.pop("name")
    result = await get_hub(request).gateway.call(caller, SERVICE, "search", params)
    return envelope(result, caller.request_id)


@router.get(
    "/{enterprise_code}",
    summary="An enterprise's registration record",
    openapi_extra=string_path_param("enterprise_code", "10-digit tax code, optionally -NNN"),
)
async def get_enterprise(request: Request) -> Response:
    caller = caller_headers(request)
    payload = {"enterprise_code": request.path_params["enterprise_code"]}
    result = await get_hub(request).gateway.call(caller, SERVICE, "lookup", payload)
    return envelope(result, caller.request_id)
