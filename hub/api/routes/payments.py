"""Resource routes of the payment capability, for every payment provider.

`POST /v1/payments` (Idempotency-Key required) opens a payment through the provider its
`?provider=` names (default: HUB_PAYMENT_PROVIDER's, or the only one installed): in the URL,
not the body, so that nothing of the body is read before the grant and purpose checks.
`GET /v1/payments/{id}` is its state and `/receipt` its receipt, from the provider it was
opened through;
`POST /v1/payments/ipn/{provider}` is where a provider's signed callback lands, and
`POST /v1/payments/ipn` the default provider's (authenticated by its checksum, not by an
API key).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub import __version__
from hub.api.deps import caller_headers, envelope, get_hub, read_bytes, read_json, string_path_param
from hub.api.middleware import request_id_of
from hub.capabilities.payments.views import PaymentRequest
from hub.security.auth import Principal

router = APIRouter(prefix="/v1/payments", tags=["payments"])


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
            },
            {
                "name": "provider",
                "in": "query",
                "required": False,
                "description": "The payment provider (default: HUB_PAYMENT_PROVIDER's)",
                "schema": {"type": "string", "maxLength": 64},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PaymentRequest.model_json_schema()}},
        },
    },
)
async def create_payment(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    payments = hub.payments.get(request.query_params.get("provider"))
    created = False

    async def create(principal: Principal) -> tuple[dict[str, object], str | None]:
        nonlocal created
        body = await read_json(request, hub.settings.max_body_bytes)
        key = request.headers.get("idempotency-key")
        view, created = await payments.create(caller, principal, key, body)
        return view, None

    # Audited as `create`; the grant is the catalogue's `init`, which it serves.
    result = await hub.gateway.local(
        caller,
        payments.service,
        "create",
        create,
        personal_data=True,
        grant="init",
        status=lambda: 201 if created else 200,
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
    payment_id = request.path_params["payment_id"]
    payments, found = await hub.payments.of_payment(hub.engine, payment_id)

    async def view(principal: Principal) -> tuple[dict[str, object], str | None]:
        return payments.view(principal, found), None

    result = await hub.gateway.local(
        caller, payments.service, "get", view, personal_data=False, grant="query"
    )
    return envelope(result, caller.request_id)


@router.get(
    "/{payment_id}/receipt",
    summary="The provider's receipt (PDF, base64) of a paid payment",
    openapi_extra=string_path_param("payment_id", "The id POST /v1/payments answered"),
)
async def get_receipt(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    principal = await hub.gateway.authenticate(caller)
    await hub.gateway.admit(principal)
    payments, found = await hub.payments.of_payment(hub.engine, request.path_params["payment_id"])
    result = await payments.receipt(caller, principal, found)
    return envelope(result, caller.request_id)


@router.post("/ipn", summary="The default payment provider's signed callback (no API key)")
async def ipn(request: Request) -> Response:
    return await _callback(request, None)


@router.post(
    "/ipn/{provider}",
    summary="A payment provider's signed callback (no API key)",
    openapi_extra=string_path_param("provider", "The provider's name (GET /v1/services)"),
)
async def provider_ipn(request: Request) -> Response:
    return await _callback(request, request.path_params["provider"])


async def _callback(request: Request, provider: str | None) -> Response:
    hub = get_hub(request)
    payments = hub.payments.get(provider)
    body = await read_bytes(request, hub.settings.max_body_bytes)
    rid = request_id_of(request.scope)
    outcome = await payments.accept_callback(rid, body, request.headers)
    payload = {"data": outcome, "meta": {"request_id": rid, "hub_version": __version__}}
    return Response(orjson.dumps(payload), media_type="application/json")
