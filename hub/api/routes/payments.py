"""Resource routes of the payment service.

`POST /v1/payments` (Idempotency-Key required) opens a payment; `GET /v1/payments/{id}` is
its state; `POST /v1/payments/ipn` is where the platform's signed callback lands
(authenticated by its checksum, not by an API key).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub import __version__
from hub.api.deps import caller_headers, envelope, get_hub, read_bytes, read_json, string_path_param
from hub.api.middleware import request_id_of
from hub.capabilities.payments import PaymentRequest, PaymentService
from hub.errors import UnknownService
from hub.security.auth import Principal

router = APIRouter(prefix="/v1/payments", tags=["payments"])

SERVICE = "payment"


def _payments(request: Request) -> PaymentService:
    payments = get_hub(request).payments
    if payments is None:
        raise UnknownService(f"no service named {SERVICE!r}")
    return payments


@router.post(
    "",
    status_code=201,
    summary="Open a payment (Idempotency-Key required; the same key and body replay it)",
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "maxLength": 255},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PaymentRequest.model_json_schema()}},
        },
    },
)
async def create_payment(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    payments = _payments(request)
    created = False

    async def create(principal: Principal) -> tuple[dict[str, object], str | None]:
        nonlocal created
        body = await read_json(request, hub.settings.max_body_bytes)
        key = request.headers.get("idempotency-key")
        view, created = await payments.create(caller, principal, key, body)
        return view, None

    # Audited as `create`; the grant is the catalogue's `init`, which it serves.
    result = await hub.gateway.local(
        caller, SERVICE, "create", create, personal_data=True, grant="init"
    )
    status, headers = (201, {}) if created else (200, {"idempotent-replayed": "true"})
    headers["location"] = f"/v1/payments/{result.data['id']}"
    return envelope(result, caller.request_id, status_code=status, headers=headers)


@router.get(
    "/{payment_id}",
    summary="A payment's state",
    openapi_extra=string_path_param("payment_id", "The id POST /v1/payments answered"),
)
async def get_payment(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    payments = _payments(request)
    payment_id = request.path_params["payment_id"]

    async def view(principal: Principal) -> tuple[dict[str, object], str | None]:
        return await payments.view(principal, payment_id), None

    result = await hub.gateway.local(
        caller, SERVICE, "get", view, personal_data=False, grant="query"
    )
    return envelope(result, caller.request_id)


@router.get(
    "/{payment_id}/receipt",
    summary="The platform's receipt (PDF, base64) of a paid payment",
    openapi_extra=string_path_param("payment_id", "The id POST /v1/payments answered"),
)
async def get_receipt(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    payments = _payments(request)
    principal = await hub.gateway.authenticate(caller)
    await hub.gateway.admit(principal)
    result = await payments.receipt(caller, principal, request.path_params["payment_id"])
    return envelope(result, caller.request_id)


@router.post("/ipn", summary="The payment platform's signed callback (no API key)")
async def ipn(request: Request) -> Response:
    hub = get_hub(request)
    payments = _payments(request)
    body = await read_bytes(request, hub.settings.max_body_bytes)
    rid = request_id_of(request.scope)
    outcome = await payments.accept_callback(rid, body, request.headers)
    payload = {"data": outcome, "meta": {"request_id": rid, "hub_version": __version__}}
    return Response(orjson.dumps(payload), media_type="application/json")
