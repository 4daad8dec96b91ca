"""The resource routes adapters declare on their operations (`@operation(resource=…)`).

`GET /v1/citizens/{personal_id}` is population's `lookup`, `GET /v1/enterprises` is
business-registration's `search`, and so on: each adapter names its own, as datasette's
plugins register routes, so the core serves any adapter's resource routes, a third party's
too, with no route of its own per system. Each is served by the same pipeline as the
generic `POST /v1/services/{service}/{operation}`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.adapter import OperationSpec
from hub.api.deps import caller_headers, envelope, get_hub, json_body
from hub.core.registry import AdapterLoadError, AdapterRegistry

_PATH_PARAM = re.compile(r"{(\w+)}")


def resource_routes(registry: AdapterRegistry) -> APIRouter:
    """One router with every installed adapter's declared resource routes; two adapters
    declaring the same route stop the hub at start-up."""
    router, seen = APIRouter(), dict[str, str]()
    for loaded in registry:
        for spec in loaded.cls.operations.values():
            if spec.resource is None:
                continue
            owner = f"{loaded.cls.name}:{spec.name}"
            if spec.resource in seen:
                raise AdapterLoadError(
                    f"resource route {spec.resource!r} is declared by {seen[spec.resource]} "
                    f"and by {owner}"
                )
            seen[spec.resource] = owner
            _add(router, loaded.cls.name, spec)
    return router


def _add(router: APIRouter, service: str, spec: OperationSpec) -> None:
    assert spec.resource is not None
    method, _, path = spec.resource.partition(" ")
    in_path = _PATH_PARAM.findall(path)
    parameters = [_param(name, "path", True, spec) for name in in_path]
    if method == "GET":
        renamed = {field: query for query, field in spec.resource_query.items()}
        query = {
            renamed.get(field, field): field
            for field in spec.input_model.model_fields
            if field not in in_path
        }
        parameters += [_param(q, "query", False, spec, field) for q, field in query.items()]
        endpoint = _get(service, spec.name, query)
        extra: dict[str, Any] = {"parameters": parameters}
    else:
        endpoint = _post(service, spec.name)
        schema = spec.input_model.model_json_schema()
        extra = {
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        }
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        summary=spec.summary,
        description=spec.description,
        tags=[service],
        openapi_extra=extra,
    )


def _get(
    service: str, operation: str, query: dict[str, str]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        caller, params = caller_headers(request), request.query_params
        # Absent parameters stay absent: the operation's schema says which are required.
        payload: dict[str, Any] = {field: params[q] for q, field in query.items() if q in params}
        payload.update(request.path_params)
        result = await get_hub(request).gateway.call(caller, service, operation, payload)
        return envelope(result, caller.request_id)

    return endpoint


def _post(service: str, operation: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        hub, caller = get_hub(request), caller_headers(request)
        body = json_body(request, hub.settings.max_body_bytes)
        result = await hub.gateway.call(caller, service, operation, body)
        return envelope(result, caller.request_id)

    return endpoint


def _param(
    name: str, where: str, required: bool, spec: OperationSpec, field: str | None = None
) -> dict[str, Any]:
    info = spec.input_model.model_fields.get(field or name)
    description = (info.description if info is not None else None) or name
    return {
        "name": name,
        "in": where,
        "required": required or bool(info is not None and info.is_required()),
        "description": description,
        "schema": {"type": "string"},
    }
