"""Resource routes of the judicial-records service: asynchronous certificate requests.

`POST /requests` answers 202 with the hub's job; `GET /requests/{id}` is its current state
(with the certificate once issued); `POST /results` is where upstream pushes results
(authenticated by upstream's signature, not by an API key).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub import __version__
from hub.api.deps import (
    caller_headers,
    envelope,
    get_hub,
    read_bytes,
    read_json,
    string_path_param,
)
from hub.api.middleware import request_id_of
from hub.capabilities.jobs import JobService
from hub.capabilities.webhooks import check_callback_url
from hub.errors import SchemaViolation, UnknownService
from hub.security.auth import Principal

router = APIRouter(prefix="/v1/judicial-records", tags=["judicial-records"])

SERVICE = "judicial-records"


def _jobs(request: Request) -> JobService:
    jobs = get_hub(request).jobs.get(SERVICE)
    if jobs is None:
        raise UnknownService(f"no service named {SERVICE!r}")
    return jobs


@router.post(
    "/requests",
    status_code=202,
    summary="Apply for a criminal-record certificate (answered 202 with a job to follow)",
    openapi_extra={
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
    },
)
async def submit(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    jobs = _jobs(request)

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
        subject = body.get("personal_id")
        return view, subject if isinstance(subject, str) else None

    # Audited as `request` (the agency's application, refusals included); the upstream
    # call inside is audited as `submit`, the operation whose grant this needs.
    result = await hub.gateway.local(
        caller, SERVICE, "request", apply, personal_data=True, grant="submit"
    )
    location = f"/v1/judicial-records/requests/{result.data['id']}"
    answer = dataclasses.replace(result, operation="submit")  # the catalogue's name, as before
    return envelope(answer, caller.request_id, status_code=202, headers={"location": location})


@router.get(
    "/requests/{request_id}",
    summary="A certificate request's current state, with the certificate once issued",
    openapi_extra=string_path_param("request_id", "The job id POST /requests answered"),
)
async def get_request(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    jobs = _jobs(request)
    job_id = request.path_params["request_id"]

    async def view(principal: Principal) -> tuple[dict[str, Any], str | None]:
        return await jobs.view(principal, job_id)

    result = await hub.gateway.local(caller, SERVICE, "status", view, personal_data=True)
    return envelope(result, caller.request_id)


@router.post(
    "/results",
    summary="Upstream pushes a request's result here (signed by upstream; no API key)",
)
async def push(request: Request) -> Response:
    hub = get_hub(request)
    jobs = _jobs(request)
    body = await read_bytes(request, hub.settings.max_body_bytes)
    rid = request_id_of(request.scope)
    outcome = await jobs.accept_push(rid, body, request.headers)
    payload = {"data": outcome, "meta": {"request_id": rid, "hub_version": __version__}}
    return Response(orjson.dumps(payload), media_type="application/json")
