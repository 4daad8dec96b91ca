"""The catalogue and the generic, uniform call route every adapter is reachable by."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import CallerDep, HubDep, envelope, read_json

router = APIRouter(prefix="/v1", tags=["services"])

_GENERIC_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object",
            "description": "The operation's input; its JSON Schema is in GET /v1/services.",
        }}},
    }
}


@router.get("/services", summary="The catalogue: services, operations, schemas, live status")
async def list_services(hub: HubDep, caller: CallerDep) -> Response:
    await hub.gateway.authenticator.authenticate(caller.authorization)
    statuses = await hub.health.adapters()
    services: list[dict[str, Any]] = []
    for loaded in hub.registry:
        entry = loaded.cls.describe()
        health = statuses.get(loaded.cls.name)
        entry["status"] = "up" if health and health.ok else "down"
        services.append(entry)
    return Response(orjson.dumps({"data": services}), media_type="application/json")


@router.post(
    "/services/{service}/{operation}",
    summary="Call any operation of any service",
    openapi_extra=_GENERIC_BODY,
)
async def call_operation(
    service: str, operation: str, request: Request, hub: HubDep, caller: CallerDep
) -> Response:
    payload = await read_json(request, hub.settings.max_body_bytes)
    result = await hub.gateway.call(caller, service, operation, payload)
    return envelope(result, caller.request_id)
