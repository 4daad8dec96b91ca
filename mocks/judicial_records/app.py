"""The judicial-records mock: the criminal-record certificate (LLTP) system, as an ASGI app.

Implements docs/mock-judicial-records.md: `POST /api/v1/lltp/hoso` (submit an application),
`GET /api/v1/lltp/hoso/{maHoSoLLTP}` (poll), a signed push of each final result to the
portal, and the mock-only `GET /_mock/records`, `GET /_mock/requests`, `GET /_mock/health`,
`GET|PUT|DELETE /_mock/faults`. This module is the HTTP side; the form is
`mocks.judicial_records.form`'s, the applications' life cycle and their push
`mocks.judicial_records.service`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mocks._push import PushTarget
from mocks.data import Citizen, load_citizens
from mocks.faults import (
    ConnectionReset,
    FaultConfig,
    FaultConfigError,
    FaultKind,
    FaultState,
    fault_routes,
    hold_until_disconnect,
)
from mocks.judicial_records import outcome
from mocks.judicial_records.form import HoSo, invalid_fields
from mocks.judicial_records.push import DEFAULT_PUSH_URL, Pusher
from mocks.judicial_records.service import STATUS_CODES, JudicialService

__all__ = ["APPLICATIONS_PATH", "STATUS_CODES", "create_app"]

APPLICATIONS_PATH = "/api/v1/lltp/hoso"
MAX_REQUEST_BYTES = 100_000
MAX_RECORDS_LIMIT = 1000
_PAD_BYTES = 5 * 1024 * 1024 + 4096


def _reply(code: str, message: str, data: Any = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"statusCode": code, "message": message}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past MAX_REQUEST_BYTES."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _unauthorized() -> Response:
    response = _reply("01", "Xác thực không thành công (authKey)", status=401)
    response.headers["www-authenticate"] = 'Bearer realm="lltp"'
    return response


async def _injected(kind: FaultKind, request: Request) -> Response | None:
    """The response for a fault that replaces the real answer, or None to answer normally."""
    if kind == "timeout":
        await request.body()
        await hold_until_disconnect(request.receive)
        return None
    if kind == "reset":
        return ConnectionReset()
    if kind == "http_503":
        return Response(b"", status_code=503)
    if kind in ("error", "soap_fault", "xxe", "billion_laughs"):
        return _reply("03", "Hệ thống đang bận, vui lòng thử lại sau")
    return None


def _mangled(kind: FaultKind | None, response: Response) -> Response:
    body = bytes(response.body)
    if kind == "malformed":
        body = body[: max(len(body) // 2, 1)]
    elif kind == "oversized" and body.endswith(b"}"):
        body = body[:-1] + b',"duLieuDem":"' + b" " * _PAD_BYTES + b'"}'
    else:
        return response
    return Response(body, response.status_code, media_type="application/json")


def _int_param(request: Request, name: str, default: int) -> int | None:
    try:
        value = int(request.query_params.get(name, str(default)))
    except ValueError:
        return None
    return value if 1 <= value <= MAX_RECORDS_LIMIT else None


def create_app(
    *,
    auth_key: str = "judicial-key",
    processing_s: float = 3.0,
    push_url: str | None = DEFAULT_PUSH_URL,
    push_secret: str = "judicial-push-secret",
    push_transport: httpx.AsyncBaseTransport | None = None,
    push_attempts: int = 4,
    push_backoff_s: float = 1.0,
    faults: FaultConfig | None = None,
    fault_seed: int | None = None,
    citizens: Iterable[Citizen] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Starlette:
    """Build the mock.

    `processing_s` is the time from submission to the final state. `clock` and `sleep` are
    injectable so tests can move time on without waiting (the push task sleeps with `sleep`
    until `clock` reaches the final time, and between push retries). `app.state.push` (a
    PushTarget: `url`, `transport`) may be changed at run time; `url=None` turns pushes off.
    """
    target = PushTarget(push_url, push_transport)
    pusher = Pusher(
        target,
        secret=push_secret,
        clock=clock,
        sleep=sleep,
        attempts=push_attempts,
        backoff_s=push_backoff_s,
    )
    service = JudicialService(
        load_citizens() if citizens is None else citizens,
        auth_key=auth_key,
        processing_s=processing_s,
        clock=clock,
        sleep=sleep,
        pusher=pusher,
    )
    state = FaultState(faults, seed=fault_seed)

    async def submit(request: Request) -> Response:
        if not service.authenticated(request):
            return _unauthorized()
        raw = await _read_body(request)
        if raw is None:
            return _reply("01", f"Yêu cầu vượt quá {MAX_REQUEST_BYTES} byte")
        try:
            form = HoSo.model_validate_json(raw)
        except ValidationError as exc:
            return _reply("01", f"Dữ liệu không hợp lệ: {invalid_fields(exc)}")
        application = service.accept(form)
        data = {"maHoSoLLTP": application.reference, "trangThaiXuLy": STATUS_CODES["received"]}
        return _reply("00", "Tiếp nhận hồ sơ thành công", data)

    async def status(request: Request) -> Response:
        if not service.authenticated(request):
            return _unauthorized()
        application = service.applications.get(request.path_params["reference"])
        if application is None:
            return _reply("01", "Không tìm thấy hồ sơ", status=404)
        return _reply("00", "Thành công", service.result(application, service.clock()))

    def with_faults(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                config = state.effective(request.headers.get("x-mock-fault"))
            except FaultConfigError as exc:
                return JSONResponse({"error": f"X-Mock-Fault: {exc}"}, status_code=400)
            if not config.active:
                return await handler(request)
            if config.latency_ms:
                await asyncio.sleep(config.latency_ms / 1000)
            kind = state.pick(config)
            if kind is not None and (replacement := await _injected(kind, request)) is not None:
                return replacement
            return _mangled(kind, await handler(request))

        return endpoint

    async def records(request: Request) -> Response:
        limit = _int_param(request, "limit", 20)
        if limit is None:
            return JSONResponse({"error": f"limit must be 1..{MAX_RECORDS_LIMIT}"}, 400)
        found = outcome.sample_applicants(service.citizens, limit)
        return JSONResponse({"records": found, "total": len(found)})

    async def requests(request: Request) -> Response:
        limit = _int_param(request, "limit", 100)
        if limit is None:
            return JSONResponse({"error": f"limit must be 1..{MAX_RECORDS_LIMIT}"}, 400)
        newest = list(service.applications.values())[-limit:]
        return JSONResponse(
            {
                "requests": [service.summary(a) for a in newest],
                "total": len(service.applications),
            }
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "pending_pushes": service.pending_pushes})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await service.aclose()

    app = Starlette(
        routes=[
            Route(APPLICATIONS_PATH, with_faults(submit), methods=["POST"]),
            Route(APPLICATIONS_PATH + "/{reference}", with_faults(status), methods=["GET"]),
            Route("/_mock/records", records, methods=["GET"]),
            Route("/_mock/requests", requests, methods=["GET"]),
            Route("/_mock/health", health, methods=["GET"]),
            *fault_routes(state),
        ],
        lifespan=lifespan,
    )
    app.state.judicial = service
    app.state.push = target
    app.state.faults = state
    return app
