"""The civil-status mock: the MoJ electronic civil-status registry, as an ASGI app.

Implements docs/mock-civil-status.md: `POST /oauth2/token` (OAuth2 client credentials),
`GET /api/v1/hotich/congdan/{soDinhDanh}`, `GET /api/v1/hotich/{loai}/{maHoTich}` and the change
feed `GET /api/v1/hotich/biendong` (REST/JSON behind the bearer token), and the mock-only
`GET /_mock/records`, `POST /_mock/events`, `GET|PUT|DELETE /_mock/faults`, `GET /_mock/health`.
Records come from mocks.civil_status.registry, new registrations from mocks.civil_status.changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mocks.civil_status.changes import MAX_PAGE, ChangeLog, RegistrationError, own_copy
from mocks.civil_status.oauth import TokenIssuer
from mocks.civil_status.registry import KINDS, Registry, build_registry
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

__all__ = ["API_PREFIX", "MAX_RECORDS_LIMIT", "OVERSIZED_BYTES", "create_app"]

API_PREFIX = "/api/v1/hotich"
MAX_RECORDS_LIMIT = 1000
OVERSIZED_BYTES = 5 * 1024 * 1024 + 1024
_PERSONAL_ID = re.compile(r"^[0-9]{12}$")
_RECORD_KEY = re.compile(r"^(KS|KH|KT)-[0-9]{4}-[0-9]{2}-[0-9]{6}$")

NOT_FOUND = "KHONG_TIM_THAY"
BAD_REQUEST = "YEU_CAU_KHONG_HOP_LE"
AUTH_FAILED = "XAC_THUC_THAT_BAI"
SYSTEM_ERROR = "LOI_HE_THONG"


def _ok(data: Any) -> Response:
    return JSONResponse({"status": "1", "errorCode": None, "errorDescription": None, "data": data})


def _error(
    code: str, description: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = {"status": "0", "errorCode": code, "errorDescription": description, "data": None}
    return JSONResponse(body, status_code=status, headers=headers)


@functools.cache
def _shipped_registry() -> Registry:
    return build_registry(load_citizens())


class CivilStatusService:
    """The two look-ups over the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def person(self, personal_id: str) -> Response:
        if not _PERSONAL_ID.match(personal_id):
            return _error(BAD_REQUEST, "Số định danh cá nhân không hợp lệ", 400)
        records = self.registry.of_person(personal_id)
        return _ok({"soDinhDanh": personal_id, "tongSo": len(records), "danhSach": records})

    def record(self, kind: str, key: str) -> Response:
        if kind not in KINDS or not _RECORD_KEY.match(key):
            return _error(BAD_REQUEST, "Loại hộ tịch hoặc mã hộ tịch không hợp lệ", 400)
        record = self.registry.records.get(key)
        if record is None or record["loaiHoTich"] != kind:
            return _error(NOT_FOUND, "Không tìm thấy thông tin hộ tịch")
        return _ok(record)


def _malformed(response: Response) -> Response:
    body = bytes(response.body)
    return Response(body[: len(body) // 2], media_type="application/json")


def _oversized(response: Response) -> Response:
    # Still valid JSON: a padding member in front of the real ones.
    body = bytes(response.body)
    padded = b'{"duLieuDem":"' + b"x" * OVERSIZED_BYTES + b'",' + body[1:]
    return Response(padded, status_code=response.status_code, media_type="application/json")


async def _injected(kind: FaultKind, request: Request) -> Response | None:
    """The response for a fault that replaces the real answer, or None to answer normally."""
    if kind == "timeout":
        await request.body()
        await hold_until_disconnect(request.receive)
        return None  # too late for any caller with a sane timeout
    if kind == "reset":
        return ConnectionReset()
    if kind == "http_503":
        return Response(b"", status_code=503)
    # no SOAP here: the registry's own error
    if kind in ("error", "soap_fault", "xxe", "billion_laughs"):
        return _error(SYSTEM_ERROR, "Lỗi hệ thống, vui lòng thử lại sau", 500)
    return None


def create_app(
    *,
    client_id: str = "hub",
    client_secret: str = "civil-status-secret",
    token_ttl_s: int = 300,
    clock: Callable[[], float] = time.time,
    faults: FaultConfig | None = None,
    fault_seed: int | None = None,
    citizens: Iterable[Citizen] | None = None,
    event_rate_per_min: float = 0.0,
    event_seed: int | None = None,
) -> Starlette:
    """Build the mock. `citizens` defaults to the shipped data set (its registry is built
    once per process, and each app registers into its own copy); `clock` drives token
    expiry and registration dates; `fault_seed` makes `error_rate` reproducible;
    `event_rate_per_min` registers that many births, deaths and marriages a minute (on
    average) while the app runs, drawn from `event_seed`."""
    registry = own_copy(_shipped_registry() if citizens is None else build_registry(citizens))
    changes = ChangeLog(registry, clock=clock, seed=event_seed)
    service = CivilStatusService(registry)
    issuer = TokenIssuer(
        client_id=client_id, client_secret=client_secret, ttl_s=token_ttl_s, clock=clock
    )
    state = FaultState(faults, seed=fault_seed)

    def authorised(call: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                config = state.effective(request.headers.get("x-mock-fault"))
            except FaultConfigError as exc:
                return JSONResponse({"error": f"X-Mock-Fault: {exc}"}, status_code=400)
            kind = None
            if config.active:
                if config.latency_ms:
                    await asyncio.sleep(config.latency_ms / 1000)
                kind = state.pick(config)
                if kind is not None and (replacement := await _injected(kind, request)):
                    return replacement
            challenge = issuer.bearer_error(request)
            if challenge is not None:
                headers = {"WWW-Authenticate": challenge}
                return _error(AUTH_FAILED, "Access token không hợp lệ", 401, headers)
            response = call(request)
            if kind == "malformed":
                return _malformed(response)
            if kind == "oversized":
                return _oversized(response)
            return response

        return endpoint

    def person(request: Request) -> Response:
        return service.person(request.path_params["personal_id"])

    def record(request: Request) -> Response:
        return service.record(request.path_params["kind"], request.path_params["key"])

    async def records(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, 400)
        if not 1 <= limit <= MAX_RECORDS_LIMIT:
            return JSONResponse({"error": f"limit must be 1..{MAX_RECORDS_LIMIT}"}, 400)
        return JSONResponse(_listing(registry, _people_of(registry), limit))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def feed(request: Request) -> Response:
        try:
            after = int(request.query_params.get("tuSoThuTu", "0"))
            limit = int(request.query_params.get("soLuong", "100"))
        except ValueError:
            return _error(BAD_REQUEST, "tuSoThuTu và soLuong phải là số nguyên", 400)
        if after < 0 or not 1 <= limit <= MAX_PAGE:
            return _error(BAD_REQUEST, f"tuSoThuTu >= 0, soLuong 1..{MAX_PAGE}", 400)
        return _ok(changes.page(after, limit))

    async def register(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            kind, personal_id = body["kind"], body["personal_id"]
            spouse_id = body.get("spouse_id")
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body: {kind, personal_id[, spouse_id]}"}, 400)
        try:
            entry = changes.register(str(kind), str(personal_id), spouse_id and str(spouse_id))
        except RegistrationError as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        return JSONResponse(entry, 201)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = (
            asyncio.create_task(changes.run(event_rate_per_min)) if event_rate_per_min > 0 else None
        )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/oauth2/token", issuer.token_endpoint, methods=["POST"]),
            Route(f"{API_PREFIX}/congdan/{{personal_id}}", authorised(person), methods=["GET"]),
            Route(f"{API_PREFIX}/biendong", authorised(feed), methods=["GET"]),
            Route(f"{API_PREFIX}/{{kind}}/{{key}}", authorised(record), methods=["GET"]),
            Route("/_mock/records", records, methods=["GET"]),
            Route("/_mock/events", register, methods=["POST"]),
            Route("/_mock/health", health, methods=["GET"]),
            *fault_routes(state),
        ],
    )
    app.state.registry = registry
    app.state.changes = changes
    app.state.tokens = issuer
    app.state.faults = state
    return app


def _people_of(registry: Registry) -> list[tuple[str, str]]:
    """(personal ID, name) of everyone with a birth record, in registration order."""
    return [
        (record["nksSoDinhDanh"], record["nksHoTen"])
        for record in registry.records.values()
        if record["loaiHoTich"] == "KS"
    ]


def _listing(registry: Registry, people: list[tuple[str, str]], limit: int) -> dict[str, Any]:
    """`limit` persons with their record keys, and `limit` record keys across the kinds."""
    by_kind = [
        [key for key, r in registry.records.items() if r["loaiHoTich"] == kind][:limit]
        for kind in KINDS
    ]
    mixed = [key for keys in itertools.zip_longest(*by_kind) for key in keys if key]
    return {
        "persons": [
            {"personal_id": pid, "full_name": name, "records": registry.by_person[pid]}
            for pid, name in people[:limit]
        ],
        "records": [
            {"key": key, "kind": registry.records[key]["loaiHoTich"]} for key in mixed[:limit]
        ],
        "total_persons": len(registry.by_person),
        "total_records": len(registry.records),
    }
