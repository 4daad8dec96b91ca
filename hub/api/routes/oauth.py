"""`POST /oauth/token`: the OAuth2 client-credentials grant (RFC 6749 §4.4), an API key
traded for a short-lived access token (hub.security.oauth)."""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import get_hub, read_bytes
from hub.api.middleware import request_id_of
from hub.api.problems import problem_response
from hub.core.gateway import CallerHeaders
from hub.core.state import Hub
from hub.errors import HubError, InvalidClient, InvalidScope, OAuthError
from hub.security.oauth import parse_token_request

router = APIRouter(tags=["oauth"])
log = logging.getLogger("hub.oauth")

_ERROR = {
    "description": "RFC 9457 problem+json that also carries RFC 6749 `error` and "
    "`error_description`",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}

_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {
                            "type": "string",
                            "description": "Space-separated grants narrowing the token to "
                            "part of the client's grants (default: all of them).",
                        },
                        "client_id": {
                            "type": "string",
                            "description": "Only when not using HTTP Basic.",
                        },
                        "client_secret": {
                            "type": "string",
                            "description": "One of the client's API keys; only when not "
                            "using HTTP Basic.",
                        },
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "An access token to send as `Authorization: Bearer …`",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["access_token", "token_type", "expires_in"],
                        "properties": {
                            "access_token": {"type": "string"},
                            "token_type": {"type": "string", "enum": ["Bearer"]},
                            "expires_in": {"type": "integer"},
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        },
        "400": _ERROR,
        "401": _ERROR,
    },
}


@router.post(
    "/oauth/token",
    summary="An access token for a client (OAuth2 client credentials)",
    description="Authenticate with HTTP Basic `client_id:api_key` (or the `client_id` and "
    "`client_secret` form fields) and send `grant_type=client_credentials`.",
    openapi_extra=_OPENAPI,
)
async def token(request: Request) -> Response:
    hub = get_hub(request)
    rid = request_id_of(request.scope)
    # Cache-Control: no-store is on every answer already (RequestIdMiddleware).
    headers = {"pragma": "no-cache"}
    try:
        body = await read_bytes(request, hub.settings.max_body_bytes)
        parsed = parse_token_request(
            request.headers.get("content-type"), body, request.headers.get("authorization")
        )
        gateway = hub.gateway
        principal, issued = await gateway.authenticator.issue_token(parsed)
    except OAuthError as exc:
        if isinstance(exc, InvalidClient):
            hub.metrics.auth_failures.inc()
        log.info("token refused request_id=%s code=%s", rid, exc.code)
        if isinstance(exc, InvalidScope) and exc.client_id is not None:
            # A known client refused: audited like any refused call. An unknown one is not
            # (as a call without a valid key is not): the log and the metric count it.
            await _audit(hub, rid, exc.client_id, exc)
        response = problem_response(exc, rid)
        response.headers.update(headers)
        return response
    try:
        # Counted like a call, once the client is known: its own limit and the hub's.
        await gateway.admit(principal)
    except HubError as exc:
        await _audit(hub, rid, principal.client_id, exc)
        raise
    # A credential handed out is on the audit trail, committed before the answer (503
    # AUDIT_UNAVAILABLE otherwise, and the token never leaves).
    await _audit(hub, rid, principal.client_id, None)
    log.info(
        "token issued request_id=%s client=%s expires_in=%s",
        rid,
        principal.client_id,
        issued.expires_in,
    )
    return Response(orjson.dumps(issued.body()), media_type="application/json", headers=headers)


#: The audit trail's service and operation for the token endpoint.
AUDIT_SERVICE, AUDIT_OPERATION = "oauth", "token"


async def _audit(hub: Hub, request_id: str, client_id: str, error: HubError | None) -> None:
    await hub.gateway.record_event(
        CallerHeaders(request_id=request_id, authorization=None),
        client_id,
        AUDIT_SERVICE,
        AUDIT_OPERATION,
        error=error,
    )
