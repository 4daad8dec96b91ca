"""The judicial-records mock: the criminal-record certificate (LLTP) system, as an ASGI app.

Implements docs/mock-judicial-records.md: `POST /api/v1/lltp/hoso` (submit an application),
`GET /api/v1/lltp/hoso/{maHoSoLLTP}` (poll), a signed push of each final result to the
portal, and the mock-only `GET /_mock/records`, `GET /_mock/requests`, `GET /_mock/health`,
`GET|PUT|DELETE /_mock/faults`. An application goes `received -> processing -> issued |
rejected` over `processing_s`; its state is computed from timestamps when polled, and a
background task (one per application, cancelled at shutdown) pushes the final result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.provinces import PROVINCES
from mocks._push import PushTarget, TaskSet
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
from mocks.judicial_records.pdf import certificate_pdf
from mocks.judicial_records.push import DEFAULT_PUSH_URL, Pusher

__all__ = ["APPLICATIONS_PATH", "STATUS_CODES", "create_app"]

APPLICATIONS_PATH = "/api/v1/lltp/hoso"
#: `trangThaiXuLy` codes.
STATUS_CODES = {"received": "1", "processing": "2", "issued": "3", "rejected": "4"}
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
MAX_REQUEST_BYTES = 100_000
MAX_RECORDS_LIMIT = 1000
MAX_APPLICATIONS = 100_000  # kept in memory; the oldest go first
_PAD_BYTES = 5 * 1024 * 1024 + 4096
_GENDERS = {"1": "male", "2": "female"}

Status = Literal["received", "processing", "issued", "rejected"]


# -- the request, as upstream reads it ----------------------------------------------------


def _check_date(value: str, fmt: str) -> str:
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        raise ValueError("not a valid date") from None
    return value


class NoiCuTru(BaseModel):
    """One place of residence in the applicant's history."""

    model_config = ConfigDict(extra="forbid")

    noiCuTru: str = Field(min_length=1, max_length=300)
    tuNgay: str | None = Field(None, pattern=r"^[0-9]{8}$")
    denNgay: str | None = Field(None, pattern=r"^[0-9]{8}$")


class ToKhai(BaseModel):
    """The application form."""

    model_config = ConfigDict(extra="forbid")

    loaiPhieu: Literal[1, 2]
    maMucDich: str = Field(min_length=1, max_length=20)
    nycHoTen: str = Field(min_length=1, max_length=100)
    nycGioiTinh: Literal["1", "2"]
    nycNgaySinh: str = Field(pattern=r"^[0-9]{8}$")
    nycSoGiayTo: str = Field(pattern=r"^[0-9]{12}$")
    nycThuongTru: str = Field(min_length=1, max_length=300)
    nycCuTru: list[NoiCuTru] = Field(default_factory=list, max_length=20)

    @field_validator("nycNgaySinh")
    @classmethod
    def _birth_date(cls, value: str) -> str:
        return _check_date(value, "%Y%m%d")


class HoSo(BaseModel):
    """A submitted application: the province, the portal's dossier code, the form."""

    model_config = ConfigDict(extra="forbid")

    maTinh: str = Field(pattern=r"^[0-9]{3}$")
    maHoSoMCDT: str = Field(min_length=1, max_length=100)
    ngayTiepNhan: str = Field(pattern=r"^[0-9]{14}$", description="yyyyMMddHHmmss")
    toKhai: ToKhai

    @field_validator("maTinh")
    @classmethod
    def _province(cls, value: str) -> str:
        if value not in PROVINCES:
            raise ValueError("not a province code")
        return value

    @field_validator("ngayTiepNhan")
    @classmethod
    def _received(cls, value: str) -> str:
        return _check_date(value, "%Y%m%d%H%M%S")


# -- applications -------------------------------------------------------------------------


@dataclass
class Application:
    """One accepted application and where its push stands."""

    reference: str
    form: HoSo
    submitted_at: float
    processing_s: float
    verdict: outcome.Verdict
    sequence: int
    push_state: str = "pending"
    push_attempts: int = 0
    certificate: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def final_at(self) -> float:
        return self.submitted_at + self.processing_s

    def status_at(self, now: float) -> Status:
        """Received for the first third of the processing time, then processing, then final."""
        if now >= self.final_at:
            return "issued" if self.verdict.issued else "rejected"
        if now < self.submitted_at + self.processing_s / 3:
            return "received"
        return "processing"

    def count_push_attempt(self) -> None:
        self.push_attempts += 1


def _vn_date(timestamp: float) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, VIETNAM).date()


def _conviction(c: outcome.Conviction) -> dict[str, Any]:
    return {
        "toaAnXetXu": c.court,
        "soBanAn": c.judgment_number,
        "ngayBanAn": f"{c.judgment_date:%Y%m%d}",
        "toiDanh": c.offence,
        "hinhPhat": c.sentence,
        "daXoaAnTich": c.expunged,
    }


def _certificate(application: Application) -> dict[str, Any]:
    """`ketQuaXuLy` of an issued certificate, with its PDF."""
    form = application.form.toKhai
    issued_on = _vn_date(application.final_at)
    shown = outcome.listed(application.verdict.convictions, form.loaiPhieu)
    status = outcome.record_status(shown, form.loaiPhieu)
    number = outcome.certificate_number(issued_on, application.form.maTinh, application.sequence)
    born = dt.datetime.strptime(form.nycNgaySinh, "%Y%m%d").date()
    lines = [
        f"So: {number}    Ngay cap: {issued_on:%d/%m/%Y}",
        f"Ho va ten: {form.nycHoTen}",
        f"Ngay sinh: {born:%d/%m/%Y}    So dinh danh: {form.nycSoGiayTo}",
        f"Tinh trang an tich: {status}",
    ]
    for c in shown:
        lines += [
            f"- Ban an so {c.judgment_number} ngay {c.judgment_date:%d/%m/%Y} cua {c.court}",
            f"  Toi danh: {c.offence}",
            f"  Hinh phat: {c.sentence}",
        ]
    pdf = certificate_pdf(f"PHIEU LY LICH TU PHAP SO {form.loaiPhieu}", lines)
    return {
        "soPhieuLLTP": number,
        "ngayCapPhieu": f"{issued_on:%Y%m%d}",
        "loaiPhieu": form.loaiPhieu,
        "tinhTrangAnTich": status,
        "thongTinAn": [_conviction(c) for c in shown],
        "phieuLLTP": base64.b64encode(pdf).decode("ascii"),
    }


def _reply(code: str, message: str, data: Any = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"statusCode": code, "message": message}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def _invalid_fields(exc: ValidationError) -> str:
    """The fields that failed, by name only (never the submitted values)."""
    names = sorted({".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()})
    return ", ".join(names)


class JudicialService:
    """Authentication, submit and poll, and the push of each final result."""

    def __init__(
        self,
        citizens: Iterable[Citizen],
        *,
        auth_key: str,
        processing_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        pusher: Pusher,
    ) -> None:
        self.citizens = tuple(citizens)
        self.index: Mapping[str, Citizen] = {c.personal_id: c for c in self.citizens}
        self._bearer = f"Bearer {auth_key}".encode()
        self.processing_s = processing_s
        self.clock, self.sleep = clock, sleep
        self.pusher = pusher
        self.applications: dict[str, Application] = {}
        # References must not repeat across mock restarts: a hub may still wait on old ones.
        self._instance = secrets.token_hex(4)
        self._sequence = 0
        self._issued = 0
        self._tasks = TaskSet()

    def authenticated(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._bearer)

    def accept(self, form: HoSo) -> Application:
        """Record an application and schedule its push."""
        applicant = form.toKhai
        verdict = outcome.assess(
            self.index,
            personal_id=applicant.nycSoGiayTo,
            full_name=applicant.nycHoTen,
            date_of_birth=dt.datetime.strptime(applicant.nycNgaySinh, "%Y%m%d").date(),
            gender=_GENDERS[applicant.nycGioiTinh],
        )
        self._sequence += 1
        self._issued += verdict.issued
        application = Application(
            reference=f"LLTP-{self._instance}-{self._sequence:06d}",
            form=form,
            submitted_at=self.clock(),
            processing_s=self.processing_s,
            verdict=verdict,
            sequence=self._issued,
        )
        if len(self.applications) >= MAX_APPLICATIONS:
            del self.applications[next(iter(self.applications))]
        self.applications[application.reference] = application
        self._tasks.spawn(self._push_when_final(application))
        return application

    def result(self, application: Application, now: float) -> dict[str, Any]:
        """Where an application stands: the poll's `data` and the push's body."""
        status = application.status_at(now)
        data: dict[str, Any] = {
            "maHoSoLLTP": application.reference,
            "maHoSoMCDT": application.form.maHoSoMCDT,
            "trangThaiXuLy": STATUS_CODES[status],
        }
        if status == "issued":
            if application.certificate is None:
                application.certificate = _certificate(application)
            data["ketQuaXuLy"] = application.certificate
        elif status == "rejected":
            data["lyDoTuChoi"] = application.verdict.rejection_reason
        return data

    async def _push_when_final(self, application: Application) -> None:
        while (remaining := application.final_at - self.clock()) > 0:
            await self.sleep(remaining)
        if self.pusher.target.url is None:
            application.push_state = "off"
            return
        result = self.result(application, self.clock())
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
        application.push_state = "sending"
        delivered = await self.pusher.deliver(
            application.reference, body, application.count_push_attempt
        )
        application.push_state = "delivered" if delivered else "failed"

    @property
    def pending_pushes(self) -> int:
        """Applications whose push has not finished (waiting, or being retried)."""
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel every pending push (at shutdown)."""
        await self._tasks.aclose()

    def summary(self, application: Application) -> dict[str, Any]:
        """A line of `/_mock/requests` (no personal data)."""
        return {
            "maHoSoLLTP": application.reference,
            "maHoSoMCDT": application.form.maHoSoMCDT,
            "loaiPhieu": application.form.toKhai.loaiPhieu,
            "status": application.status_at(self.clock()),
            "outcome": "issued" if application.verdict.issued else "rejected",
            "submitted_at": dt.datetime.fromtimestamp(application.submitted_at, dt.UTC).isoformat(),
            "final_at": dt.datetime.fromtimestamp(application.final_at, dt.UTC).isoformat(),
            "push": {"state": application.push_state, "attempts": application.push_attempts},
        }


# -- HTTP -----------------------------------------------------------------------------------


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
            return _reply("01", f"Dữ liệu không hợp lệ: {_invalid_fields(exc)}")
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
