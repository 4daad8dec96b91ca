"""The business-registration mock: the DKKD enterprise API behind the LGSP gateway, as ASGI.

Implements docs/mock-business-registration.md: `POST /api/token` (the gateway's token, from
an `lgspaccesstoken` header), `GET /apiDKKD/DoanhNghiep/chiTietDoanhNghiep`, `…/timKiem`,
`…/theoNguoiDaiDien`, and the mock-only `GET /_mock/records`, `GET /_mock/health`,
`GET|PUT|DELETE /_mock/faults`. Tokens are stateless (HMAC-signed expiry), so several
worker processes accept each other's tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mocks.business_registration.changes import MAX_PAGE as CHANGES_PAGE
from mocks.business_registration.changes import StatusChangeError, StatusLog
from mocks.business_registration.data import Enterprise, Register, load_register
from mocks.business_registration.search import NameIndex, fold
from mocks.faults import (
    ConnectionReset,
    FaultConfig,
    FaultConfigError,
    FaultKind,
    FaultState,
    fault_routes,
    hold_until_disconnect,
)

__all__ = ["API_PREFIX", "STATUS_CODES", "TOKEN_PATH", "create_app", "lgsp_access_token"]

TOKEN_PATH = "/api/token"
API_PREFIX = "/apiDKKD/DoanhNghiep"
MAX_RECORDS_LIMIT = 1000
MAX_PAGE_SIZE = 100
OVERSIZED_BYTES = 5 * 1024 * 1024 + 1024
JSON_TYPE = "application/json; charset=utf-8"

#: TinhTrangPhapLy: (MaTinhTrang, TenTinhTrang) of each status.
STATUS_CODES: dict[str, tuple[str, str]] = {
    "active": ("01", "Đang hoạt động"),
    "suspended": ("02", "Tạm ngừng kinh doanh"),
    "dissolving": ("03", "Đang làm thủ tục giải thể"),
    "dissolved": ("04", "Đã giải thể"),
    "bankrupt": ("05", "Đã phá sản"),
    "revoked": ("06", "Bị thu hồi Giấy chứng nhận đăng ký doanh nghiệp"),
}
_ENTERPRISE_CODE = re.compile(r"\d{10}(-\d{3})?", re.ASCII)
_CREDENTIAL_KEYS = ("AccessKey", "SecretKey", "AppName", "PartnerCode")
log = logging.getLogger(__name__)


def lgsp_access_token(access_key: str, secret_key: str, app_name: str, partner_code: str) -> str:
    """The `lgspaccesstoken` header value: base64 of the JSON credential object."""
    document = {
        "AccessKey": access_key,
        "SecretKey": secret_key,
        "AppName": app_name,
        "PartnerCode": partner_code,
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=JSON_TYPE)


def _upstream_error(code: str, message: str, status: int) -> Response:
    """DKKD's own error reply."""
    return _json({"MaLoi": code, "MoTaLoi": message}, status)


def _bad_request(message: str) -> Response:
    return _upstream_error("01", message, 400)


SYSTEM_ERROR = ("99", "Lỗi hệ thống, vui lòng thử lại sau")


class GatewayAuth:
    """The gateway's client credentials and its signed, expiring bearer tokens."""

    def __init__(
        self, *, access_key: str, secret_key: str, token_ttl_s: float, clock: Callable[[], float]
    ) -> None:
        self.access_key, self.secret_key = access_key.encode(), secret_key.encode()
        self.token_ttl_s = token_ttl_s
        self.clock = clock
        self._signing_key = hashlib.sha256(b"dkkd-mock-token\0" + self.secret_key).digest()

    def client_ok(self, header: str) -> bool:
        """An `lgspaccesstoken` with our AccessKey/SecretKey and a non-empty AppName and
        PartnerCode."""
        try:
            document = json.loads(base64.b64decode(header, validate=True))
        except (binascii.Error, ValueError, RecursionError):
            return False
        if not isinstance(document, dict) or not all(
            isinstance(document.get(key), str) and document[key] for key in _CREDENTIAL_KEYS
        ):
            return False
        # Compare both in full, whatever the first result: no early exit to time.
        key_ok = hmac.compare_digest(document["AccessKey"].encode(), self.access_key)
        secret_ok = hmac.compare_digest(document["SecretKey"].encode(), self.secret_key)
        return key_ok and secret_ok

    def issue(self) -> str:
        """A token: its expiry, a nonce and their signature."""
        payload = f"{self.clock() + self.token_ttl_s:.3f}.{secrets.token_hex(8)}"
        return f"{payload}.{self._sign(payload)}"

    def token_ok(self, token: str) -> bool:
        """Signed by us and not yet expired by the mock's clock."""
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return False
        expiry, _, _ = payload.partition(".")
        return self.clock() < float(expiry)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._signing_key, payload.encode(), hashlib.sha256).hexdigest()


def _unauthorized(error: str, description: str) -> Response:
    return _json(
        {"error": error, "error_description": description},
        401,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


class BusinessRegistry:
    """The three DKKD operations over the register, with rendered records cached."""

    def __init__(self, register: Register, auth: GatewayAuth) -> None:
        self.register = register
        self.auth = auth
        self.names = NameIndex(register.enterprises)
        self._details: dict[str, bytes] = {}

    def replace(self, register: Register, code: str) -> None:
        """Serve a changed register (one enterprise's record changed)."""
        self.register = register
        self._details.pop(code, None)

    def refusal(self, request: Request) -> Response | None:
        """401 unless the request has both the gateway credential and a live bearer token."""
        if not self.auth.client_ok(request.headers.get("lgspaccesstoken", "")):
            return _unauthorized("invalid_client", "Thiếu hoặc sai lgspaccesstoken")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.auth.token_ok(token.strip()):
            return _unauthorized("invalid_token", "Access token không hợp lệ hoặc đã hết hạn")
        return None

    async def token(self, request: Request) -> Response:
        """`POST /api/token`: a bearer token for a client with the gateway credential."""
        if not self.auth.client_ok(request.headers.get("lgspaccesstoken", "")):
            return _unauthorized("invalid_client", "Thiếu hoặc sai lgspaccesstoken")
        form = parse_qs((await request.body()).decode("latin-1"))
        if form.get("grant_type") != ["client_credentials"]:
            return _json({"error": "unsupported_grant_type"}, 400)
        return _json(
            {
                "access_token": self.auth.issue(),
                "token_type": "Bearer",
                "expires_in": int(self.auth.token_ttl_s),
            }
        )

    async def detail(self, request: Request) -> Response:
        """`chiTietDoanhNghiep`: one record in `GetEntCert`, or an empty list."""
        code = request.query_params.get("msdn", "").strip()
        if not _ENTERPRISE_CODE.fullmatch(code):
            return _bad_request("msdn phải gồm 10 chữ số, có thể kèm -NNN của chi nhánh")
        body = self._details.get(code)
        if body is None:
            enterprise = self.register.by_code.get(code)
            certificates = [] if enterprise is None else [_certificate(enterprise)]
            body = orjson.dumps({"GetEntCert": certificates})
            if enterprise is not None:
                self._details[code] = body
        return Response(body, media_type=JSON_TYPE)

    async def search(self, request: Request) -> Response:
        """`timKiem`: one page of name matches with the total."""
        params = request.query_params
        name = params.get("ten", "")
        if not 2 <= len(fold(name)) <= 100:
            return _bad_request("ten phải có từ 2 đến 100 ký tự")
        try:
            page, size = int(params.get("trang", "1")), int(params.get("soBanGhi", "20"))
        except ValueError:
            return _bad_request("trang và soBanGhi phải là số nguyên")
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return _bad_request(f"trang >= 1, soBanGhi từ 1 đến {MAX_PAGE_SIZE}")
        found = self.names.search(name)
        items = found[(page - 1) * size : page * size]
        return _json(
            {
                "TongSoBanGhi": len(found),
                "Trang": page,
                "SoBanGhi": size,
                "DanhSachDoanhNghiep": [_summary(e) for e in items],
            }
        )

    async def by_representative(self, request: Request) -> Response:
        """`theoNguoiDaiDien`: the head offices a person legally represents."""
        personal_id = request.query_params.get("soGiayTo", "").strip()
        if not (len(personal_id) == 12 and personal_id.isascii() and personal_id.isdigit()):
            return _bad_request("soGiayTo phải là số định danh cá nhân 12 chữ số")
        found = self.register.by_representative.get(personal_id, ())
        return _json(
            {"TongSoBanGhi": len(found), "DanhSachDoanhNghiep": [_summary(e) for e in found]}
        )


def _ymd(enterprise: Enterprise) -> str:
    return enterprise.registered_on.strftime("%Y%m%d")


def _status(enterprise: Enterprise) -> list[dict[str, str]]:
    code, name = STATUS_CODES[enterprise.status]
    return [{"MaTinhTrang": code, "TenTinhTrang": name}]


def _seat(enterprise: Enterprise) -> list[dict[str, str]]:
    office = enterprise.head_office
    return [
        {
            "MaTinh": office.province_code,
            "MaHuyen": office.district_code,
            "MaXa": office.ward_code,
            "DiaChiChiTiet": office.detail,
        }
    ]


def _summary(enterprise: Enterprise) -> dict[str, Any]:
    return {
        "MaSoDoanhNghiep": enterprise.code,
        "TenTiengViet": enterprise.name,
        "NgayDangKyLanDau": _ymd(enterprise),
        "TinhTrangPhapLy": _status(enterprise),
        "DiaChiTruSo": _seat(enterprise),
    }


def _certificate(enterprise: Enterprise) -> dict[str, Any]:
    return {
        "MaSoDoanhNghiep": enterprise.code,
        "TenTiengViet": enterprise.name,
        "TenNuocNgoai": enterprise.name_en or "",
        "TenVietTat": enterprise.short_name or "",
        "NgayDangKyLanDau": _ymd(enterprise),
        "TinhTrangPhapLy": _status(enterprise),
        "DaiDienPhapLuat": [
            {
                "HoTen": rep.full_name,
                "SoGiayTo": rep.personal_id,
                "ChucDanh": rep.position,
                "NgaySinh": rep.date_of_birth.strftime("%Y%m%d"),
            }
            for rep in enterprise.representatives
        ],
        "DiaChiTruSo": _seat(enterprise),
        "NganhNgheKinhDoanh": [
            {"MaNganh": line.code, "TenNganh": line.name, "LaNganhChinh": line.main}
            for line in enterprise.business_lines
        ],
        "VonDieuLe": enterprise.charter_capital_vnd,
    }


def truncated(body: bytes) -> bytes:
    """The `malformed` fault: the first half of a JSON reply (never parses)."""
    return body[: max(1, len(body) // 2)]


def oversized(body: bytes) -> bytes:
    """The `oversized` fault: the same JSON object with a filler field past 5 MB."""
    filler = b'"GhiChu":"' + b"x" * OVERSIZED_BYTES + b'"'
    if body.rstrip() == b"{}":
        return b"{" + filler + b"}"
    return body.rstrip()[:-1] + b"," + filler + b"}"


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
    # no SOAP here: all are DKKD's error reply
    if kind in ("error", "soap_fault", "xxe", "billion_laughs"):
        return _upstream_error(*SYSTEM_ERROR, 500)
    return None


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    *,
    access_key: str = "hub",
    secret_key: str = "business-registration-secret",
    token_ttl_s: float = 3600,
    clock: Callable[[], float] = time.time,
    faults: FaultConfig | None = None,
    fault_seed: int | None = None,
    register: Register | None = None,
    event_rate_per_min: float = 0.0,
    event_seed: int | None = None,
) -> Starlette:
    """Build the mock. `access_key`/`secret_key` are the gateway credentials it accepts (any
    non-empty AppName and PartnerCode); tokens live `token_ttl_s` seconds by `clock`, which
    tests replace; `fault_seed` makes rates reproducible; `register` defaults to the
    synthetic one (mocks.business_registration.data); `event_rate_per_min` changes that
    many enterprises' status a minute (on average) while the app runs
    (mocks.business_registration.changes)."""
    auth = GatewayAuth(
        access_key=access_key, secret_key=secret_key, token_ttl_s=token_ttl_s, clock=clock
    )
    service = BusinessRegistry(load_register() if register is None else register, auth)
    state = FaultState(faults, seed=fault_seed)
    changes = StatusLog(
        lambda: service.register, service.replace, STATUS_CODES, clock=clock, seed=event_seed
    )

    def upstream(handler: Handler, *, authenticated: bool = True) -> Handler:
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
                if kind is not None and (replacement := await _injected(kind, request)) is not None:
                    return replacement
            response = await _answer(handler, request, authenticated)
            if kind == "malformed":
                return Response(truncated(bytes(response.body)), media_type=JSON_TYPE)
            if kind == "oversized":
                body = oversized(bytes(response.body))
                return Response(body, response.status_code, media_type=JSON_TYPE)
            return response

        return endpoint

    async def _answer(handler: Handler, request: Request, authenticated: bool) -> Response:
        try:
            if authenticated and (refusal := service.refusal(request)) is not None:
                return refusal
            return await handler(request)
        except Exception:  # never a traceback on the wire
            log.exception("business-registration mock: unexpected error")
            return _upstream_error(*SYSTEM_ERROR, 500)

    async def records(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return JSONResponse({"error": "limit and offset must be integers"}, 400)
        if not 1 <= limit <= MAX_RECORDS_LIMIT or offset < 0:
            message = f"limit must be 1..{MAX_RECORDS_LIMIT} and offset >= 0"
            return JSONResponse({"error": message}, 400)
        register = service.register
        several = [pid for pid, found in register.by_representative.items() if len(found) > 1]
        return _json(
            {
                "records": [_record(e) for e in register.enterprises[offset : offset + limit]],
                "total": len(register.enterprises),
                "representatives_of_several": several[:limit],
            }
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def feed(request: Request) -> Response:
        try:
            after = int(request.query_params.get("tuSoThuTu", "0"))
            limit = int(request.query_params.get("soLuong", "100"))
        except ValueError:
            return _bad_request("tuSoThuTu và soLuong phải là số nguyên")
        if after < 0 or not 1 <= limit <= CHANGES_PAGE:
            return _bad_request(f"tuSoThuTu >= 0, soLuong từ 1 đến {CHANGES_PAGE}")
        return _json(changes.page(after, limit))

    async def change(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            entry = changes.change(str(body["enterprise_code"]), str(body["status"]))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body: {enterprise_code, status}"}, 400)
        except StatusChangeError as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        return JSONResponse(entry, 201)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rate = event_rate_per_min
        task = asyncio.create_task(changes.run(rate)) if rate > 0 else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route(TOKEN_PATH, upstream(service.token, authenticated=False), methods=["POST"]),
            Route(f"{API_PREFIX}/chiTietDoanhNghiep", upstream(service.detail), methods=["GET"]),
            Route(f"{API_PREFIX}/timKiem", upstream(service.search), methods=["GET"]),
            Route(
                f"{API_PREFIX}/theoNguoiDaiDien",
                upstream(service.by_representative),
                methods=["GET"],
            ),
            Route(f"{API_PREFIX}/bienDong", upstream(feed), methods=["GET"]),
            Route("/_mock/records", records, methods=["GET"]),
            Route("/_mock/events", change, methods=["POST"]),
            Route("/_mock/health", health, methods=["GET"]),
            *fault_routes(state),
        ],
    )
    app.state.business_registration = service
    app.state.faults = state
    app.state.changes = changes
    return app


def _record(enterprise: Enterprise) -> dict[str, Any]:
    return {
        "enterprise_code": enterprise.code,
        "name": enterprise.name,
        "status": enterprise.status,
        "branch": enterprise.is_branch,
        "representatives": [rep.personal_id for rep in enterprise.representatives],
    }
