"""A direct path to the endpoints that need nothing of FastAPI's per-request machinery.

The hub's call endpoints (`GET /v1/citizens/{personal_id}`, the generic
`POST /v1/services/{service}/{operation}`, …) take the bare `Request` and return a finished
`Response`: no dependencies, no parameter parsing, no response model. Measured under load
(bench/, README), the layers FastAPI and Starlette still put around them (middleware stack,
exception middleware, AsyncExitStack, routing through the included routers, the
request/response wrappers, `Response.__call__`) cost about a third of the hub's CPU per call,
more than the SOAP parsing and the mapping together.

`HubApp` serves those endpoints straight: it finds the one route that matches the method and
path, calls its endpoint with a Request, and writes the Response, doing itself what the
middleware does for them (the request id, the security headers, problem+json for errors).
Anything else goes through FastAPI as before: the docs, endpoints with dependencies or
parameters, a path that no route or more than one route matches (FastAPI then answers 404 or
405, or picks by its own rules), a mounted app (`root_path`), and every request when CORS is
on (HUB_CORS_ORIGINS: the CORS middleware then wraps all answers). The endpoint functions are
the same either way: there is one implementation of each route, and one of each error answer.
"""

from __future__ import annotations

import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from hub.api import problems
from hub.api.middleware import adding_headers, answer_headers, assign_request_id
from hub.core.logs import REQUEST_ID
from hub.errors import BadRequest, HubError

log = logging.getLogger("hub.api")

Endpoint = Callable[[Request], Awaitable[Response]]


def _holds_nul(scope: Scope) -> bool:
    """A NUL in the path or the query (`%00`): no route or identifier of the hub has one,
    and PostgreSQL refuses it in text (a look-up by it would be a 500)."""
    return "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")


async def _refuse_nul(scope: Scope, receive: Receive, send: Send) -> None:
    rid = assign_request_id(scope)
    response = problems.problem_response(BadRequest("the URL may not hold a NUL character"), rid)
    await response(scope, receive, adding_headers(send, answer_headers(rid)))


#: Methods served directly; HEAD, OPTIONS and the rest keep FastAPI's handling.
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})


@dataclass(frozen=True, slots=True)
class _Route:
    prefix: str  # the path's literal start, checked before the regex
    regex: re.Pattern[str]
    methods: frozenset[str] | None  # None: every method (a Mount, a plain ASGI route)
    convertors: dict[str, Convertor[Any]]
    endpoint: Endpoint | None  # None: FastAPI must serve it


def direct_endpoint(route: BaseRoute) -> Endpoint | None:
    """The route's endpoint if it can be served directly: an APIRoute without dependencies
    whose endpoint is `async def f(request: Request) -> Response`."""
    if not isinstance(route, APIRoute) or route.dependencies:
        return None
    endpoint = route.endpoint
    if not inspect.iscoroutinefunction(endpoint):
        return None
    try:
        hints = typing.get_type_hints(endpoint)
    except Exception:  # an annotation that does not resolve: leave it to FastAPI
        return None
    parameters = list(inspect.signature(endpoint).parameters)
    if len(parameters) != 1 or hints.get(parameters[0]) is not Request:
        return None
    returns = hints.get("return")
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        return None
    return endpoint  # type: ignore[no-any-return]


def _methods(route: BaseRoute) -> frozenset[str] | None:
    methods = getattr(route, "methods", None)
    return None if methods is None else frozenset(methods)


class DirectRoutes:
    """The routing table of the direct path: every route of the app, in any order (a path
    that more than one route matches is left to FastAPI, so order never decides here)."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._routes: list[_Route] = []
        for route in routes:
            regex = getattr(route, "path_regex", None)
            path = getattr(route, "path", None)
            if regex is None or path is None:
                raise TypeError(f"cannot route directly next to {route!r}")
            self._routes.append(
                _Route(
                    prefix=path.split("{", 1)[0],
                    regex=regex,
                    methods=_methods(route),
                    convertors=getattr(route, "param_convertors", {}),
                    endpoint=direct_endpoint(route),
                )
            )

    @property
    def served(self) -> list[str]:
        """The paths served directly (for tests and the start-up log)."""
        return [r.regex.pattern for r in self._routes if r.endpoint is not None]

    def find(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]] | None:
        """The endpoint and path parameters for a request, or None for FastAPI to serve."""
        if method not in _METHODS:
            return None
        found: tuple[_Route, re.Match[str]] | None = None
        for route in self._routes:
            if not path.startswith(route.prefix):
                continue
            if route.methods is not None and method not in route.methods:
                continue
            match = route.regex.match(path)
            if match is None:
                continue
            if found is not None:
                return None  # more than one route would do: FastAPI's rules decide
            found = (route, match)
        if found is None:
            return None
        route, match = found
        if route.endpoint is None:
            return None
        params = {
            name: route.convertors[name].convert(value) for name, value in match.groupdict().items()
        }
        return route.endpoint, params


class HubApp(FastAPI):
    """FastAPI, with the direct path in front for the endpoints that allow it."""

    direct: DirectRoutes | None = None
    _direct_for: tuple[int, int, int] = (0, 0, 0)

    def serve_directly(self, routes: DirectRoutes) -> None:
        """Turn the direct path on for the app as it is now. Middleware, exception handlers
        or routes added later would not wrap the endpoints it serves: it then turns itself
        off, and FastAPI serves everything."""
        self.direct, self._direct_for = routes, self._shape()

    def _shape(self) -> tuple[int, int, int]:
        return len(self.user_middleware), len(self.exception_handlers), len(self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _holds_nul(scope):
            await _refuse_nul(scope, receive, send)
            return
        direct = self.direct
        if direct is not None and self._shape() != self._direct_for:
            direct = self.direct = None
            log.warning("the app changed after it was built: the direct path is off")
        if direct is not None and scope["type"] == "http" and not scope.get("root_path"):
            found = direct.find(scope["method"], scope["path"])
            if found is not None:
                await self._serve(found[0], found[1], scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve(
        self,
        endpoint: Endpoint,
        params: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        scope["app"] = self
        scope["path_params"] = params
        rid = assign_request_id(scope)
        token = REQUEST_ID.set(rid)
        try:
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except HubError as exc:
                response = problems.problem_response(exc, rid)
            except StarletteHTTPException as exc:
                response = problems.http_error_response(exc, rid)
            except Exception:
                response = problems.unexpected_response(rid)
            ours = answer_headers(rid)
            body = getattr(response, "body", None)
            if body is None:  # a streaming answer: let it write itself, adding our headers
                await response(scope, receive, adding_headers(send, ours))
                return
            headers = [*response.raw_headers, *ours]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
            if response.background is not None:  # as Starlette: after the answer went out
                await response.background()
        finally:
            REQUEST_ID.reset(token)
