"""The catalogue and the generic, uniform call route every adapter is reachable by."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import caller_headers, envelope, get_hub, json_body, string_path_param
from hub.api.middleware import request_id_of

router = APIRouter(prefix="/v1", tags=["services"])

_GENERIC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "The operation's input; its JSON Schema is in GET /v1/services.",
                }
            }
        },
    }
}


@router.get("/services", summary="The catalogue: services, operations, schemas, live status")
async def list_services(request: Request) -> Response:
    hub = get_hub(request)
    await hub.gateway.authenticator.authenticate(request.headers.get("authorization"))
    statuses = await hub.health.adapters()
    services: list[dict[str, Any]] = []
    for loaded in hub.registry:
        entry = loaded.cls.describe()
        health = statuses.get(loaded.cls.name)
        entry["status"] = "up" if health and health.ok else "down"
        services.append(entry)
    body = {"data": services, "meta": {"request_id": request_id_of(request.scope)}}
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/services/{service}/{operation}",
    summary="Call any operation of any service",
    openapi_extra={
        **_GENERIC_BODY,
        "parameters": [
            *string_path_param("service", "Service name, as in the catalogue")["parameters"],
            *string_path_param("operation", "Operation name, as in the catalogue")["parameters"],
        ],
    },
)
async def call_operation(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    body = json_body(request, hub.settings.max_body_bytes)
    service, operation = request.path_params["service"], request.path_params["operation"]
    result = await hub.gateway.call(caller, service, operation, body, generic=True)
    return envelope(result, caller.request_id)
