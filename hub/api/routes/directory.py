"""The GovStack IM directory services, from the hub's catalogue and the caller's grants.

An application written for an X-Road-style mediator discovers the hub's services here:

- `GET /listClients[?instanceId=]`: the hub as a MEMBER and each installed service as an
  APPLICATION of it (the agencies calling the hub are not listed: they are not providers);
- `GET /r1/{instance}/{class}/{member}/{service}/listMethods[?serviceId=]`: the service's
  operations as REST services, each with its endpoints (the generic call route and, where
  the adapter declares one, its resource route);
- `…/allowedMethods`: the same, cut to what the caller is granted;
- `…/getOpenAPI?serviceCode=OPERATION`: an OpenAPI 3.1 description of that operation.

The identity is HUB_GOVSTACK_INSTANCE, HUB_GOVSTACK_MEMBER_CLASS and
HUB_GOVSTACK_MEMBER_CODE; another one is 404. Every route needs a credential, as the
catalogue does.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub import __version__
from hub.adapter import OperationSpec
from hub.api.deps import get_hub
from hub.api.routes.subscriptions import serve
from hub.core.state import Hub
from hub.errors import BadRequest, NotFound, UnknownOperation, UnknownService
from hub.security.auth import Principal

router = APIRouter(tags=["govstack-im"])
PREFIX = "/r1/{instance}/{member_class}/{member_code}/{application}"


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _identity(hub: Hub) -> dict[str, str]:
    s = hub.settings
    return {
        "instanceId": s.govstack_instance,
        "memberClass": s.govstack_member_class,
        "memberCode": s.govstack_member_code,
    }


def _service(request: Request) -> tuple[Hub, str]:
    hub, params = get_hub(request), request.path_params
    ours = _identity(hub)
    if (params["instance"], params["member_class"], params["member_code"]) != tuple(ours.values()):
        raise NotFound("no such member on this Information Mediator")
    service = params["application"]
    if service not in hub.registry:
        raise UnknownService("no such application")
    return hub, service


def _endpoints(service: str, spec: OperationSpec) -> list[dict[str, str]]:
    endpoints = []
    if spec.route is None:
        endpoints.append({"method": "POST", "path": f"/v1/services/{service}/{spec.name}"})
    for declared in (spec.resource, spec.route):
        if declared:
            method, _, path = declared.partition(" ")
            endpoints.append({"method": method, "path": path})
    return endpoints


def _methods(
    hub: Hub, service: str, principal: Principal | None, service_id: str | None
) -> dict[str, Any]:
    cls = hub.registry.get(service).cls
    found = []
    for spec in cls.operations.values():
        if service_id and spec.name != service_id:
            continue
        if principal is not None and not principal.may_call(service, spec.name):
            continue
        found.append(
            {
                "objectType": "SERVICE",
                "serviceType": "REST",
                **_identity(hub),
                "applicationCode": service,
                "serviceCode": spec.name,
                "serviceVersion": cls.version,
                "endpointList": {"member": _endpoints(service, spec)},
            }
        )
    return {"member": found}


@router.get("/listClients", summary="GovStack IM: the providers of this instance")
async def list_clients(request: Request) -> Response:
    hub = get_hub(request)
    wanted = request.query_params.get("instanceId")

    async def handler(principal: Principal) -> dict[str, Any]:
        identity = _identity(hub)
        if wanted and wanted != identity["instanceId"]:
            return {"member": []}  # no federated instance behind this hub
        members = [{"name": "LGSP hub", "id": {"objectType": "MEMBER", **identity}}]
        for loaded in hub.registry:
            members.append(
                {
                    "name": loaded.cls.title or loaded.cls.name,
                    "id": {
                        "objectType": "APPLICATION",
                        **identity,
                        "applicationCode": loaded.cls.name,
                    },
                }
            )
        return {"member": members}

    return _json((await serve(request, "list-clients", handler)).data)


@router.get(f"{PREFIX}/listMethods", summary="GovStack IM: a service's REST services")
async def list_methods(request: Request) -> Response:
    return await _methods_route(request, "list-methods", cut_to_caller=False)


@router.get(f"{PREFIX}/allowedMethods", summary="GovStack IM: what the caller may call")
async def allowed_methods(request: Request) -> Response:
    return await _methods_route(request, "allowed-methods", cut_to_caller=True)


async def _methods_route(request: Request, action: str, *, cut_to_caller: bool) -> Response:
    """listMethods, or allowedMethods (`cut_to_caller`): the same list, cut to the grants."""
    hub, service = _service(request)
    service_id = request.query_params.get("serviceId")

    async def handler(principal: Principal) -> dict[str, Any]:
        return _methods(hub, service, principal if cut_to_caller else None, service_id)

    return _json((await serve(request, action, handler)).data)


@router.get(f"{PREFIX}/getOpenAPI", summary="GovStack IM: one REST service's OpenAPI")
async def get_openapi(request: Request) -> Response:
    hub, service = _service(request)
    code = request.query_params.get("serviceCode")

    async def handler(principal: Principal) -> dict[str, Any]:
        if not code:
            raise BadRequest("serviceCode is required")
        cls = hub.registry.get(service).cls
        spec = cls.operations.get(code)
        if spec is None:
            raise UnknownOperation("no such service code")
        return _openapi(service, cls.version, spec)

    return _json((await serve(request, "get-openapi", handler)).data)


def _openapi(service: str, version: str, spec: OperationSpec) -> dict[str, Any]:
    """A small OpenAPI 3.1 document of one operation's endpoints."""
    envelope = {
        "type": "object",
        "properties": {"data": {"$ref": "#/components/schemas/Output"}, "meta": {"type": "object"}},
    }
    answers = {
        "200": {"description": "The answer", "content": {"application/json": {"schema": envelope}}},
        "default": {
            "description": "An RFC 9457 problem",
            "content": {"application/problem+json": {"schema": {"type": "object"}}},
        },
    }
    parameters = []
    if spec.personal_data:
        parameters.append(
            {"name": "X-Purpose", "in": "header", "required": True, "schema": {"type": "string"}}
        )
    paths: dict[str, Any] = {}
    for endpoint in _endpoints(service, spec):
        operation: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.summary,
            "parameters": parameters,
            "responses": answers,
        }
        if endpoint["method"] == "POST":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Input"}}},
            }
        paths.setdefault(endpoint["path"], {})[endpoint["method"].lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{service}:{spec.name}",
            "version": version,
            "x-hub-version": __version__,
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Input": spec.input_model.model_json_schema(),
                "Output": spec.output_model.model_json_schema(),
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
