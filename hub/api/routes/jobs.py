"""Routes of the asynchronous-request capability, for every AsyncAdapter.

Each AsyncAdapter gets `POST /v1/jobs/{service}` (submit: 202 with the hub's job),
`GET /v1/jobs/{service}/{job_id}` (its current state, with the result once final) and
`POST /v1/jobs/{service}/results` (where upstream pushes results, authenticated by
upstream's signature, not by an API key). An adapter may also name its own resource routes,
served by the same handlers: `route="POST /v1/…"` on `submit`, `route="GET /v1/…/{id}"` on
`status`, and `push_route` (`adapter_routes`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub import __version__
from hub.adapter import AsyncAdapter
from hub.api.deps import (
    caller_headers,
    envelope,
    get_hub,
    read_bytes,
    read_json,
    string_path_param,
)
from hub.api.middleware import request_id_of
from hub.capabilities.jobs.service import JobService
from hub.capabilities.webhooks import check_callback_url
from hub.core.state import Hub
from hub.errors import SchemaViolation, UnknownService
from hub.security.auth import Principal

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "The `submit` operation's input (GET /v1/services), "
                    "plus an optional `callback_url` the hub POSTs the signed result to.",
                }
            }
        },
    }
}
_SERVICE_PARAM = string_path_param("service", "An asynchronous service (GET /v1/services)")


def _jobs(hub: Hub, service: str) -> JobService:
    jobs = hub.jobs.get(service)
    if jobs is None:  # the caller's name is not echoed: it may be anything
        raise UnknownService("no asynchronous service by that name")
    return jobs


async def submit_job(request: Request, service: str, status_path: str) -> Response:
    """Submit a request to `service` (202); `status_path` is where its job is read, with
    `{id}` for the job's id."""
    hub, caller = get_hub(request), caller_headers(request)
    jobs = _jobs(hub, service)
    subject_field = hub.registry.get(service).cls.operations["submit"].subject

    async def apply(principal: Principal) -> tuple[dict[str, Any], str | None]:
        # After the grant and purpose checks: nothing is read or written for a refused call.
        body = await read_json(request, hub.settings.max_body_bytes)
        if not isinstance(body, dict):
            raise SchemaViolation("the request body must be a JSON object")
        callback_url = check_callback_url(
            body.pop("callback_url", None),
            https_only=hub.settings.callbacks_https_only,
            public_only=hub.settings.callbacks_public_only,
        )
        view = await jobs.submit(caller, principal, body, callback_url)
        subject = body.get(subject_field) if subject_field else None
        return view, subject if isinstance(subject, str) else None

    # Audited as `request` (the agency's application, refusals included); the upstream
    # call inside is audited as `submit`, the operation whose grant this needs.
    result = await hub.gateway.local(
        caller, service, "request", apply, personal_data=True, grant="submit", status=202
    )
    location = status_path.replace("{id}", result.data["id"])
    answer = dataclasses.replace(result, operation="submit")  # the catalogue's name
    return envelope(answer, caller.request_id, status_code=202, headers={"location": location})


async def get_job(request: Request, service: str, job_id: str) -> Response:
    """A job of `service`: the caller's own (another client's is 404)."""
    hub, caller = get_hub(request), caller_headers(request)
    jobs = _jobs(hub, service)

    async def view(principal: Principal) -> tuple[dict[str, Any], str | None]:
        return await jobs.view(principal, job_id)

    result = await hub.gateway.local(caller, service, "status", view, personal_data=True)
    return envelope(result, caller.request_id)


async def accept_push(request: Request, service: str) -> Response:
    """A result `service`'s upstream pushed (verified by the adapter's `parse_push`)."""
    hub = get_hub(request)
    jobs = _jobs(hub, service)
    body = await read_bytes(request, hub.settings.max_body_bytes)
    rid = request_id_of(request.scope)
    outcome = await jobs.accept_push(rid, body, request.headers)
    payload = {"data": outcome, "meta": {"request_id": rid, "hub_version": __version__}}
    return Response(orjson.dumps(payload), media_type="application/json")


@router.post(
    "/{service}",
    status_code=202,
    summary="Submit a request to an asynchronous service (202 with a job to follow)",
    openapi_extra={**_SUBMIT_BODY, **_SERVICE_PARAM},
)
async def submit(request: Request) -> Response:
    service = request.path_params["service"]
    return await submit_job(request, service, f"/v1/jobs/{service}/{{id}}")


@router.get(
    "/{service}/{job_id}",
    summary="A job's current state, with the result once final",
    openapi_extra={
        "parameters": [
            *_SERVICE_PARAM["parameters"],
            *string_path_param("job_id", "The job id the submit answered")["parameters"],
        ]
    },
)
async def get_request(request: Request) -> Response:
    params = request.path_params
    return await get_job(request, params["service"], params["job_id"])


@router.post(
    "/{service}/results",
    summary="Upstream pushes a request's result here (signed by upstream; no API key)",
    openapi_extra=_SERVICE_PARAM,
)
async def push(request: Request) -> Response:
    return await accept_push(request, request.path_params["service"])


def _declared(route: str | None, method: str) -> str | None:
    """The path of an operation's `route="METHOD /path"`, if it is one of that method."""
    if route is None:
        return None
    declared_method, _, path = route.partition(" ")
    return path if declared_method == method and path.startswith("/") else None


def adapter_routes(cls: type[AsyncAdapter]) -> APIRouter | None:
    """The resource routes an AsyncAdapter names for itself (e.g. judicial-records'
    `/v1/judicial-records/requests`), served by the handlers above; None if it names none."""
    service, ops = cls.name, cls.operations
    submit_path = _declared(ops["submit"].route, "POST")
    status_path = _declared(ops["status"].route, "GET")
    if not (submit_path or status_path or cls.push_route):
        return None
    tag = APIRouter(tags=[service])
    if submit_path:
        where = status_path or f"/v1/jobs/{service}/{{id}}"

        async def submit_here(request: Request) -> Response:
            return await submit_job(request, service, where)

        summary = ops["submit"].summary + " (202 with a job to follow)"
        tag.add_api_route(
            submit_path,
            submit_here,
            methods=["POST"],
            status_code=202,
            summary=summary,
            openapi_extra=_SUBMIT_BODY,
        )
    if status_path:

        async def status_here(request: Request) -> Response:
            return await get_job(request, service, request.path_params["id"])

        tag.add_api_route(
            status_path,
            status_here,
            methods=["GET"],
            summary="Its current state, with the result once final",
            openapi_extra=string_path_param("id", "The job id the submit answered"),
        )
    if cls.push_route:

        async def push_here(request: Request) -> Response:
            return await accept_push(request, service)

        tag.add_api_route(
            cls.push_route,
            push_here,
            methods=["POST"],
            summary="Upstream pushes a request's result here (signed by upstream; no API key)",
        )
    return tag
