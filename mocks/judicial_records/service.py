"""The applications: their life cycle over time, the certificate, the push of each result.

An application goes `received -> processing -> issued | rejected` over `processing_s`; its
state is computed from timestamps when polled, and a background task (one per application,
cancelled at shutdown) pushes the final result. `JudicialService` holds them in memory, the
oldest dropped past `MAX_APPLICATIONS`; `mocks.judicial_records.app` wraps it in routes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request

from mocks._push import TaskSet
from mocks.data import Citizen
from mocks.judicial_records import outcome
from mocks.judicial_records.form import HoSo
from mocks.judicial_records.pdf import certificate_pdf
from mocks.judicial_records.push import Pusher

__all__ = ["STATUS_CODES", "Application", "JudicialService", "Status"]

#: `trangThaiXuLy` codes.
STATUS_CODES = {"received": "1", "processing": "2", "issued": "3", "rejected": "4"}
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
MAX_APPLICATIONS = 100_000  # kept in memory; the oldest go first
_GENDERS = {"1": "male", "2": "female"}

Status = Literal["received", "processing", "issued", "rejected"]


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
