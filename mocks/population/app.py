"""The population mock: the National Population Database's SOAP service, as an ASGI app.

Implements docs/mock-population.md: `POST /dancu/ws` (SOAP 1.1), `GET /dancu/ws?wsdl`, and
the mock-only `GET /_mock/records`, `GET|PUT|DELETE /_mock/faults`, `GET /_mock/health`.
Built on Starlette directly because it is also the benchmark's "direct" baseline: the hot
path is one header check, one small lxml parse and a cached per-citizen fragment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

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
from mocks.population import soap

__all__ = ["ENDPOINT_PATH", "MAX_REQUEST_BYTES", "create_app"]

ENDPOINT_PATH = "/dancu/ws"
MAX_REQUEST_BYTES = 1_000_000
MAX_RECORDS_LIMIT = 1000
_WSDL_LOCATION = b'location="http://127.0.0.1:8101/dancu/ws"'
log = logging.getLogger(__name__)


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=soap.CONTENT_TYPE)


def _fault(fault: soap.SoapFault) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="dancu"'} if fault.status == 401 else None
    return Response(
        soap.render_fault(fault), fault.status, headers=headers, media_type=soap.CONTENT_TYPE
    )


def endpoint_url(request: Request) -> str:
    """The URL the caller posted to, as it signs it: scheme://host[:port]/path."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"


class PopulationService:
    """Authentication, the two operations and the per-citizen reply cache."""

    def __init__(
        self,
        citizens: Iterable[Citizen],
        *,
        user: str,
        secret: str,
        clock: Callable[[], float],
        auth_window_s: float,
    ) -> None:
        self.citizens = tuple(citizens)
        self.index = {c.personal_id: c for c in self.citizens}
        self.user_name, self.user = user, user.encode()
        self.secret = secret
        self.clock = clock
        self.auth_window_s = auth_window_s
        # Rendered lazily: most of the 12,000 citizens are never asked for in a test run.
        self._fragments: dict[str, bytes] = {}
        self._wsdl_template = (
            resources.files("mocks.population").joinpath("population.wsdl").read_bytes()
        )
        self._wsdl_by_url: dict[str, bytes] = {}

    def authenticated(self, request: Request) -> bool:
        """Basic user:password with password = sha256(url+user+timestamp+secret), fresh."""
        header = request.headers.get("authorization", "")
        stamp = request.headers.get("timestamp", "")
        scheme, _, encoded = header.partition(" ")
        # At most 12 digits: int() of a huge string is slow (and refused past 4,300 digits).
        well_formed = stamp.isascii() and stamp.isdigit() and len(stamp) <= 12
        if scheme.lower() != "basic" or not well_formed:
            return False
        if abs(self.clock() - int(stamp)) > self.auth_window_s:
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        url = endpoint_url(request)
        expected = hashlib.sha256(f"{url}{self.user_name}{stamp}{self.secret}".encode()).hexdigest()
        # Compare both in full, whatever the first result: no early exit to time.
        user_ok = hmac.compare_digest(user, self.user)
        password_ok = hmac.compare_digest(password, expected.encode())
        return bool(sep) and user_ok and password_ok

    async def handle(self, request: Request) -> Response:
        """One SOAP call: authenticate, parse, dispatch; faults as SOAP faults."""
        try:
            if not self.authenticated(request):
                return _fault(soap.AUTH_FAILED)
            body = await _read_body(request)
            operation, fields = soap.parse_request(body)
            action = request.headers.get("soapaction", "").strip().strip('"')
            if action and action != soap.SOAP_ACTION_PREFIX + operation:
                raise soap.invalid("SOAPAction không khớp với thao tác trong soap:Body")
            if operation == soap.LOOKUP:
                return _xml(self.lookup(fields))
            return _xml(self.verify(fields))
        except soap.SoapFaultError as exc:
            return _fault(exc.fault)
        except Exception:  # never a traceback on the wire
            log.exception("population mock: unexpected error")
            return _fault(soap.SYSTEM_ERROR)

    def lookup(self, fields: dict[str, str]) -> bytes:
        personal_id = fields["SoDinhDanh"]
        fragment = self._fragments.get(personal_id)
        if fragment is None:
            citizen = self.index.get(personal_id)
            if citizen is None:
                raise soap.not_found(personal_id)
            fragment = self._fragments[personal_id] = soap.render_citizen(citizen)
        return soap.render_lookup(fields["MaYeuCau"], fragment)

    def verify(self, fields: dict[str, str]) -> bytes:
        citizen = self.index.get(fields["SoDinhDanh"])
        asked_gender = fields.get("GioiTinh") or None
        if citizen is None:
            gender = None if asked_gender is None else False
            return soap.render_verify(fields["MaYeuCau"], False, False, False, gender)
        name = soap.normalise_name(fields["HoVaTen"]) == soap.normalise_name(citizen.full_name)
        dob = fields["NgayThangNamSinh"] == f"{citizen.date_of_birth:%Y%m%d}"
        gender_ok = None
        if asked_gender is not None:
            gender_ok = asked_gender == soap.GENDER_CODES[citizen.gender]
        return soap.render_verify(fields["MaYeuCau"], True, name, dob, gender_ok)

    def wsdl(self, request: Request) -> Response:
        """The WSDL with soap:address pointing where the caller reached us."""
        url = endpoint_url(request)
        document = self._wsdl_by_url.get(url)
        if document is None:
            location = url.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            document = self._wsdl_template.replace(
                _WSDL_LOCATION, f'location="{location}"'.encode()
            )
            if len(self._wsdl_by_url) > 64:  # Host headers are caller-controlled: bound it
                self._wsdl_by_url.clear()
            self._wsdl_by_url[url] = document
        return _xml(document)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 12 or int(declared) > MAX_REQUEST_BYTES):
        raise soap.invalid(f"yêu cầu vượt quá {MAX_REQUEST_BYTES} byte")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise soap.invalid(f"yêu cầu vượt quá {MAX_REQUEST_BYTES} byte")
        chunks.append(chunk)
    return b"".join(chunks)


def _wants_wsdl(request: Request) -> bool:
    return any(key.lower() == "wsdl" for key in request.query_params)


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
    if kind == "error":
        return _fault(soap.SYSTEM_ERROR)
    if kind == "soap_fault":
        return _fault(soap.SERVER_FAULT)
    return None


def create_app(
    *,
    user: str = "hub",
    secret: str = "population-secret",
    faults: FaultConfig | None = None,
    citizens: Iterable[Citizen] | None = None,
    clock: Callable[[], float] = time.time,
    auth_window_s: float = 300,
    fault_seed: int | None = None,
    xxe_target: str = soap.DEFAULT_XXE_TARGET,
) -> Starlette:
    """Build the mock. `citizens` defaults to the shipped data set; `clock` is injectable so
    tests can check the timestamp window; `fault_seed` makes `error_rate` reproducible;
    `xxe_target` is the URL the `xxe` fault's external entity reads (tests point it at a
    file of their own holding a canary string)."""
    service = PopulationService(
        load_citizens() if citizens is None else citizens,
        user=user,
        secret=secret,
        clock=clock,
        auth_window_s=auth_window_s,
    )
    state = FaultState(faults, seed=fault_seed)

    async def endpoint(request: Request) -> Response:
        if request.method == "GET":
            if _wants_wsdl(request):
                return service.wsdl(request)
            return PlainTextResponse("POST SOAP 1.1 requests here; GET ?wsdl for the WSDL.", 400)
        try:
            config = state.effective(request.headers.get("x-mock-fault"))
        except FaultConfigError as exc:
            return JSONResponse({"error": f"X-Mock-Fault: {exc}"}, status_code=400)
        if not config.active:
            return await service.handle(request)
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        kind = state.pick(config)
        if kind is not None and (replacement := await _injected(kind, request)) is not None:
            return replacement
        response = await service.handle(request)
        if kind == "malformed":
            return _xml(soap.truncated(bytes(response.body)))
        if kind == "oversized":
            return _xml(soap.oversized(bytes(response.body)), response.status_code)
        if kind == "xxe":
            return _xml(soap.with_external_entity(bytes(response.body), xxe_target))
        if kind == "billion_laughs":
            return _xml(soap.with_entity_bomb(bytes(response.body)))
        return response

    async def records(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return JSONResponse({"error": "limit and offset must be integers"}, 400)
        if not 1 <= limit <= MAX_RECORDS_LIMIT or offset < 0:
            message = f"limit must be 1..{MAX_RECORDS_LIMIT} and offset >= 0"
            return JSONResponse({"error": message}, 400)
        page = service.citizens[offset : offset + limit]
        return JSONResponse(
            {"records": [_summary(c) for c in page], "total": len(service.citizens)}
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route(ENDPOINT_PATH, endpoint, methods=["GET", "POST"]),
            Route("/_mock/records", records, methods=["GET"]),
            Route("/_mock/health", health, methods=["GET"]),
            *fault_routes(state),
        ]
    )
    app.state.population = service
    app.state.faults = state
    return app


def _summary(c: Citizen) -> dict[str, Any]:
    return {
        "personal_id": c.personal_id,
        "full_name": c.full_name,
        "date_of_birth": c.date_of_birth.isoformat(),
        "gender": c.gender,
    }
