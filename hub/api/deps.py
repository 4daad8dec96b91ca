"""Helpers shared by the routes: the hub, the caller's headers, JSON in and envelope out."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from starlette.responses import Response

from hub.api.middleware import request_id_of
from hub.core.gateway import CallerHeaders, CallResult
from hub.core.state import Hub
from hub.errors import InvalidJson, JsonTooComplex, PayloadTooLarge
from hub.json_limits import json_limit_exceeded

# The call routes take the bare Request and use these helpers rather than FastAPI
# dependencies: dependency resolution measured ~100 us a request, a tenth of the pipeline.


def get_hub(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


async def _hub_dependency(request: Request) -> Hub:
    return get_hub(request)


HubDep = Annotated[Hub, Depends(_hub_dependency)]


def caller_headers(request: Request) -> CallerHeaders:
    headers = request.headers
    return CallerHeaders(
        request_id=request_id_of(request.scope),
        authorization=headers.get("authorization"),
        purpose=headers.get("x-purpose") or None,
        officer_id=headers.get("x-officer-id") or None,
        dossier_id=headers.get("x-dossier-id") or None,
    )


async def read_bytes(request: Request, limit: int) -> bytes:
    """The request's body, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    return bytes(body)


_REQUIRED = object()
#: A JSON escape of a C0 control character other than tab, LF and CR (JSON forbids them raw,
#: so this is the only way in): NUL, which PostgreSQL's text refuses (a 500 from the
#: database), and the others, which XML 1.0 refuses (an invalid SOAP envelope upstream).
_CONTROL_ESCAPE = re.compile(rb"\\u00(?:0[0-8bcefBCEF]|1[0-9a-fA-F])")


async def read_json(request: Request, limit: int, *, if_empty: Any = _REQUIRED) -> Any:
    """The request's JSON body, refusing more than `limit` bytes before reading them all,
    and JSON nested deeper or with more elements than the hub's settings allow. With
    `if_empty`, a body that is empty or blank stands for that value (routes whose body
    holds only options)."""
    body = await read_bytes(request, limit)
    if if_empty is not _REQUIRED and not body.strip():
        return if_empty
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJson("the request body is not valid JSON") from None
    if b"\\u00" in body and _CONTROL_ESCAPE.search(body):
        raise InvalidJson("the request body's text may not hold control characters")
    settings = get_hub(request).settings
    check_json_complexity(value, settings.max_json_depth, settings.max_json_items)
    return value


def check_json_complexity(value: Any, max_depth: int, max_items: int) -> None:
    """Refuse decoded JSON nested deeper than `max_depth` containers or holding more than
    `max_items` array elements and object members in all (JsonTooComplex). The walk is
    `hub.json_limits.json_limit_exceeded`, shared with the reading of upstream answers."""
    problem = json_limit_exceeded(value, max_depth, max_items)
    if problem is not None:
        raise JsonTooComplex(f"the JSON body {problem}")


def json_body(request: Request, limit: int) -> Callable[[], Awaitable[Any]]:
    """A reader of the request's JSON body, for the pipeline to call after authentication."""
    return lambda: read_json(request, limit)


def envelope(
    result: CallResult,
    request_id: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The success body of the public contract: `{"data": …, "meta": {…}}`."""
    body = {
        "data": result.data,
        "meta": {
            "request_id": request_id,
            "service": result.service,
            "operation": result.operation,
            "adapter_version": result.adapter_version,
            "duration_ms": result.duration_ms,
        },
    }
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def query_params(request: Request, *names: str) -> dict[str, Any]:
    """The named query parameters that are present (absent ones stay absent: the operation's
    schema then says which is required)."""
    params = request.query_params
    return {name: params[name] for name in names if name in params}


def string_path_param(name: str, description: str) -> dict[str, Any]:
    """OpenAPI for a path parameter the route reads from request.path_params itself."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": {"type": "string"},
            }
        ]
    }
