"""One place that writes every error as RFC 9457 problem+json."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from hub.api.middleware import answer_headers, request_id_of
from hub.errors import HubError, SchemaViolation, error_for_status

log = logging.getLogger("hub.api")

PROBLEM_JSON = "application/problem+json"


def problem_response(exc: HubError, request_id: str) -> Response:
    return Response(
        orjson.dumps(exc.problem(request_id)),
        status_code=exc.status,
        media_type=PROBLEM_JSON,
        headers=exc.response_headers(),
    )


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return problem_response(exc, request_id_of(request.scope))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return http_error_response(exc, request_id_of(request.scope))


def http_error_response(exc: StarletteHTTPException, request_id: str) -> Response:
    error_cls = error_for_status(exc.status_code)
    error = error_cls()
    if error_cls is HubError:  # a status we have no class for: keep it, generic body
        error.status = exc.status_code  # type: ignore[misc]
    response = problem_response(error, request_id)
    for name, value in (exc.headers or {}).items():  # e.g. Allow on a 405
        response.headers[name] = value
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error = SchemaViolation.from_errors(list(exc.errors()))
    return problem_response(error, request_id_of(request.scope))


def unexpected_response(request_id: str) -> Response:
    """The 500 answer to an exception nothing else handled; call it in the `except` block.
    The log formatter writes the exception's type and frames, never its message."""
    log.exception("unexpected error request_id=%s", request_id, extra={"request_id": request_id})
    return problem_response(HubError(), request_id)


async def _unexpected(request: Request, exc: Exception) -> Response:
    rid = request_id_of(request.scope)
    # Out of RequestIdMiddleware already (this handler wraps it): the id is given here.
    response = unexpected_response(rid)
    # This handler runs outside the middleware stack, so its headers are set here.
    for name, value in answer_headers(rid):
        response.headers[name.decode()] = value.decode()
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
