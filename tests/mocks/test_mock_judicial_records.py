"""The judicial-records mock against docs/mock-judicial-records.md: life cycle, push, faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mocks.data import Citizen, load_citizens
from mocks.judicial_records import outcome
from mocks.judicial_records.app import create_app
from tests.conftest import eventually
from tests.fakeclock import NOW, FakeClock

BASE_URL = "http://judicial.mock"
PORTAL = "http://portal.test/v2/lyLichTuPhap/traKetQuaHoSoLLTP"
AUTH = {"authorization": "Bearer judicial-key"}
SECRET = b"judicial-push-secret"
PATH = "/api/v1/lltp/hoso"


@dataclass
class Portal:
    """The push receiver: records each push, answers the statuses queued (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

        return Starlette(
            routes=[Route("/v2/lyLichTuPhap/traKetQuaHoSoLLTP", receive, methods=["POST"])]
        )


@pytest.fixture(scope="module")
def citizens() -> list[Citizen]:
    return load_citizens()


@pytest.fixture(scope="module")
def applicants(citizens: list[Citizen]) -> dict[str, dict[str, str]]:
    """The first applicant of each expected outcome, as /_mock/records lists them."""
    found: dict[str, dict[str, str]] = {}
    for applicant in outcome.sample_applicants(citizens, 3):
        found.setdefault(applicant["expected"], applicant)
    return found


def form(applicant: dict[str, str], certificate_type: int = 1, **override: Any) -> dict[str, Any]:
    """A submission as the hub's adapter writes it."""
    to_khai = {
        "loaiPhieu": certificate_type,
        "maMucDich": "01",
        "nycHoTen": applicant["full_name"],
        "nycGioiTinh": "1" if applicant["gender"] == "male" else "2",
        "nycNgaySinh": applicant["date_of_birth"].replace("-", ""),
        "nycSoGiayTo": applicant["personal_id"],
        "nycThuongTru": applicant["permanent_address"],
        "nycCuTru": [{"noiCuTru": applicant["current_address"]}],
    } | override
    return {
        "maTinh": "001",
        "maHoSoMCDT": "000.00.01.H26-250615-0001",
        "ngayTiepNhan": "20250615220640",
        "toKhai": to_khai,
    }


def citizen_applicant(citizen: Citizen) -> dict[str, str]:
    return {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "gender": citizen.gender,
        "date_of_birth": citizen.date_of_birth.isoformat(),
        "permanent_address": outcome.address_text(citizen.permanent_address),
        "current_address": outcome.address_text(citizen.current_address),
    }


@dataclass
class Mock:
    app: Starlette
    http: httpx.AsyncClient
    clock: FakeClock
    portal: Portal

    async def submit(self, body: dict[str, Any]) -> str:
        response = await self.http.post(PATH, json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["statusCode"] == "00", reply
        assert reply["data"]["trangThaiXuLy"] == "1"
        return str(reply["data"]["maHoSoLLTP"])

    async def poll(self, reference: str) -> dict[str, Any]:
        response = await self.http.get(f"{PATH}/{reference}", headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["statusCode"] == "00"
        return response.json()["data"]  # type: ignore[no-any-return]

    async def requests(self) -> list[dict[str, Any]]:
        return (await self.http.get("/_mock/requests")).json()["requests"]  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def running_mock(*, auto: bool = False, **options: Any) -> AsyncIterator[Mock]:
    """The mock in-process with its lifespan entered, pushing to an in-process portal."""
    clock, portal = FakeClock(auto=auto), Portal()
    options = {
        "push_url": PORTAL,
        "push_transport": httpx.ASGITransport(app=portal.app()),
    } | options
    app = create_app(clock=clock, sleep=clock.sleep, fault_seed=3, **options)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield Mock(app, http, clock, portal)


@pytest.fixture
async def mock() -> AsyncIterator[Mock]:
    async with running_mock() as running:
        yield running


@pytest.fixture
async def auto() -> AsyncIterator[Mock]:
    """Time moves on whenever the mock sleeps: results are final (and pushed) at once."""
    async with running_mock(auto=True) as running:
        yield running


def pdf_of(certificate: dict[str, Any]) -> bytes:
    return base64.b64decode(certificate["phieuLLTP"], validate=True)


# -- the life cycle ---------------------------------------------------------------------


async def test_an_application_walks_received_processing_issued(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    reference = await mock.submit(form(applicants["clean"]))
    assert re.fullmatch(r"LLTP-[0-9a-f]{8}-\d{6}", reference)
    first = await mock.poll(reference)
    assert first == {
        "maHoSoLLTP": reference,
        "maHoSoMCDT": "000.00.01.H26-250615-0001",
        "trangThaiXuLy": "1",
    }
    mock.clock.advance(1.5)
    assert (await mock.poll(reference))["trangThaiXuLy"] == "2"
    mock.clock.advance(1.5)
    issued = await mock.poll(reference)
    assert issued["trangThaiXuLy"] == "3" and "lyDoTuChoi" not in issued
    certificate = issued["ketQuaXuLy"]
    assert certificate["soPhieuLLTP"] == "25HN2001/00001"
    assert certificate["ngayCapPhieu"] == "20250615"
    assert certificate["loaiPhieu"] == 1
    assert certificate["tinhTrangAnTich"] == "Không có án tích"
    assert certificate["thongTinAn"] == []
    assert await mock.poll(reference) == issued  # stable once final


async def test_processing_time_is_an_option(applicants: dict[str, dict[str, str]]) -> None:
    async with running_mock(processing_s=60) as mock:
        reference = await mock.submit(form(applicants["clean"]))
        mock.clock.advance(30)
        assert (await mock.poll(reference))["trangThaiXuLy"] == "2"
        mock.clock.advance(30)
        assert (await mock.poll(reference))["trangThaiXuLy"] == "3"


async def test_certificate_numbers_follow_the_issue_order(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    first = await mock.submit(form(applicants["clean"]))
    await mock.submit(form(applicants["rejected"]))  # rejected: takes no number
    third = await mock.submit(form(applicants["convictions"]))
    mock.clock.advance(3)
    numbers = [(await mock.poll(r))["ketQuaXuLy"]["soPhieuLLTP"] for r in (first, third)]
    assert numbers == ["25HN2001/00001", "25HN2001/00002"]


async def test_the_certificate_pdf_is_a_real_pdf(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    reference = await mock.submit(form(applicants["convictions"]))
    mock.clock.advance(3)
    pdf = pdf_of((await mock.poll(reference))["ketQuaXuLy"])
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    # Every cross-reference entry points at its object, and startxref at the table.
    xref_at = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[xref_at:].startswith(b"xref")
    entries = pdf[xref_at:].split(b"\n")[3:8]
    for number, entry in enumerate(entries, start=1):
        assert len(entry) == 19 and entry.endswith(b" n ")  # + the newline: 20 bytes
        assert pdf[int(entry[:10]) :].startswith(b"%d 0 obj" % number)
    assert b"PHIEU LY LICH TU PHAP SO 1" in pdf and b"Co an tich" in pdf


# -- outcomes ---------------------------------------------------------------------------


async def test_convictions_are_listed_and_deterministic(
    mock: Mock, applicants: dict[str, dict[str, str]], citizens: list[Citizen]
) -> None:
    applicant = applicants["convictions"]
    reference = await mock.submit(form(applicant))
    mock.clock.advance(3)
    certificate = (await mock.poll(reference))["ketQuaXuLy"]
    assert certificate["tinhTrangAnTich"] == "Có án tích"
    expected = outcome.convictions_of(
        next(c for c in citizens if c.personal_id == applicant["personal_id"])
    )
    assert [a["soBanAn"] for a in certificate["thongTinAn"]] == [
        c.judgment_number for c in expected if not c.expunged
    ]
    first = certificate["thongTinAn"][0]
    assert set(first) == {
        "toaAnXetXu",
        "soBanAn",
        "ngayBanAn",
        "toiDanh",
        "hinhPhat",
        "daXoaAnTich",
    }
    assert first["toaAnXetXu"].startswith("Tòa án nhân dân")
    assert re.fullmatch(r"\d{1,3}/\d{4}/HS-ST", first["soBanAn"])
    assert re.fullmatch(r"\d{8}", first["ngayBanAn"]) and first["daXoaAnTich"] is False
    # The same applicant, another mock: the same record.
    async with running_mock() as other:
        again = await other.submit(form(applicant))
        other.clock.advance(3)
        assert (await other.poll(again))["ketQuaXuLy"]["thongTinAn"] == certificate["thongTinAn"]


def test_a_small_share_of_citizens_have_convictions(citizens: list[Citizen]) -> None:
    convicted = [c for c in citizens if outcome.convictions_of(c)]
    assert 0.02 * len(citizens) < len(convicted) < 0.08 * len(citizens)
    # Never before the age of 18.
    for citizen in convicted:
        for conviction in outcome.convictions_of(citizen):
            assert conviction.judgment_date.year - citizen.date_of_birth.year >= 18


async def test_expunged_convictions_only_show_on_a_type_2_certificate(
    mock: Mock, citizens: list[Citizen]
) -> None:
    citizen = next(
        c
        for c in citizens
        if (found := outcome.convictions_of(c)) and all(x.expunged for x in found)
    )
    type_1 = await mock.submit(form(citizen_applicant(citizen), 1))
    type_2 = await mock.submit(form(citizen_applicant(citizen), 2))
    mock.clock.advance(3)
    one = (await mock.poll(type_1))["ketQuaXuLy"]
    two = (await mock.poll(type_2))["ketQuaXuLy"]
    assert (one["tinhTrangAnTich"], one["thongTinAn"]) == ("Không có án tích", [])
    assert two["tinhTrangAnTich"] == "Đã được xoá án tích" and two["loaiPhieu"] == 2
    assert two["thongTinAn"] and all(a["daXoaAnTich"] for a in two["thongTinAn"])


@pytest.mark.parametrize(
    "change",
    [
        {"nycNgaySinh": "19000101"},
        {"nycHoTen": "Người Khác Hẳn"},
        {"nycSoGiayTo": "001085999999"},  # valid, unknown to the population data
    ],
    ids=["birth-date", "name", "unknown-id"],
)
async def test_an_applicant_the_population_data_disagrees_with_is_rejected(
    mock: Mock, applicants: dict[str, dict[str, str]], change: dict[str, str]
) -> None:
    reference = await mock.submit(form(applicants["clean"], **change))
    mock.clock.advance(3)
    rejected = await mock.poll(reference)
    assert rejected["trangThaiXuLy"] == "4" and "ketQuaXuLy" not in rejected
    reason = rejected["lyDoTuChoi"]
    assert "CSDLQG về dân cư" in reason
    assert not any(value in reason for value in change.values())


async def test_names_compare_without_case_or_spacing(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    name = "  " + applicants["clean"]["full_name"].upper().replace(" ", "   ")
    reference = await mock.submit(form(applicants["clean"], nycHoTen=name))
    mock.clock.advance(3)
    assert (await mock.poll(reference))["trangThaiXuLy"] == "3"


async def test_records_lists_applicants_of_every_outcome(auto: Mock) -> None:
    response = await auto.http.get("/_mock/records", params={"limit": 12})
    records = response.json()["records"]
    assert len(records) == 12 == response.json()["total"]
    assert [r["expected"] for r in records[:3]] == ["clean", "convictions", "rejected"]
    assert {r["expected"] for r in records[3:]} == {"clean", "convictions"}
    for record in records[:3]:
        reference = await auto.submit(form(record))
        auto.clock.advance(3)
        data = await auto.poll(reference)
        if record["expected"] == "rejected":
            assert data["trangThaiXuLy"] == "4"
        else:
            has_record = data["ketQuaXuLy"]["tinhTrangAnTich"] == "Có án tích"
            assert has_record == (record["expected"] == "convictions")
    assert (await auto.http.get("/_mock/records", params={"limit": 0})).status_code == 400


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"maTinh": "999"}, "maTinh"),
        ({"ngayTiepNhan": "20250615"}, "ngayTiepNhan"),
        ({"toKhai": {"loaiPhieu": 3}}, "toKhai.loaiPhieu"),
        ({"toKhai": {"nycNgaySinh": "19850231"}}, "toKhai.nycNgaySinh"),
        ({"toKhai": {"nycGioiTinh": "M"}}, "toKhai.nycGioiTinh"),
        ({"toKhai": {"nycSoGiayTo": "12345"}}, "toKhai.nycSoGiayTo"),
        ({"toKhai": {"nycThuongTru": None}}, "toKhai.nycThuongTru"),
        ({"khac": 1}, "khac"),
    ],
)
async def test_an_invalid_application_is_01_naming_the_field(
    mock: Mock, applicants: dict[str, dict[str, str]], change: dict[str, Any], field_name: str
) -> None:
    body = form(applicants["clean"])
    body = body | {k: v for k, v in change.items() if k != "toKhai"}
    body["toKhai"] = body["toKhai"] | change.get("toKhai", {})
    response = await mock.http.post(PATH, json=body, headers=AUTH)
    reply = response.json()
    assert response.status_code == 200 and reply["statusCode"] == "01"
    assert field_name in reply["message"]
    assert applicants["clean"]["full_name"] not in reply["message"]
    assert await mock.requests() == []


async def test_a_body_that_is_not_json_is_01(mock: Mock) -> None:
    response = await mock.http.post(PATH, content=b"{not json", headers=AUTH)
    assert response.json()["statusCode"] == "01"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic judicial-key", "judicial-key"])
async def test_a_missing_or_wrong_auth_key_is_401(mock: Mock, header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    for response in (
        await mock.http.post(PATH, json={}, headers=headers),
        await mock.http.get(f"{PATH}/LLTP-00000000-000001", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["statusCode"] == "01"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_auth_key_is_an_option(applicants: dict[str, dict[str, str]]) -> None:
    async with running_mock(auth_key="other-key") as mock:
        assert (await mock.http.post(PATH, json={}, headers=AUTH)).status_code == 401
        ok = await mock.http.post(
            PATH, json=form(applicants["clean"]), headers={"authorization": "Bearer other-key"}
        )
        assert ok.json()["statusCode"] == "00"


async def test_an_unknown_reference_is_404(mock: Mock) -> None:
    response = await mock.http.get(f"{PATH}/LLTP-00000000-000001", headers=AUTH)
    assert response.status_code == 404 and response.json()["statusCode"] == "01"


# -- the push ---------------------------------------------------------------------------


def signature_ok(headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers["x-lltp-timestamp"]
    expected = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-lltp-signature"], expected)


async def test_the_final_result_is_pushed_and_signed(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    reference = await mock.submit(form(applicants["convictions"]))
    mock.clock.advance(2)
    await asyncio.sleep(0.01)
    assert mock.portal.received == []  # not final yet
    mock.clock.advance(1)
    await eventually(lambda: len(mock.portal.received) == 1, "the push")
    headers, body = mock.portal.received[0]
    assert headers["x-lltp-timestamp"] == str(int(NOW + 3))
    assert re.fullmatch(r"[0-9a-f]{64}", headers["x-lltp-signature"])
    assert signature_ok(headers, body)
    assert headers["content-type"].startswith("application/json")
    pushed = json.loads(body)
    assert pushed == await mock.poll(reference)  # the push is the poll's `data`
    assert pushed["maHoSoMCDT"] == "000.00.01.H26-250615-0001"
    assert pushed["ketQuaXuLy"]["thongTinAn"]
    [summary] = await mock.requests()
    assert summary["push"] == {"state": "delivered", "attempts": 1}
    assert summary["status"] == "issued"


async def test_a_rejection_is_pushed_too(auto: Mock, applicants: dict[str, dict[str, str]]) -> None:
    await auto.submit(form(applicants["rejected"]))
    await eventually(lambda: len(auto.portal.received) == 1, "the push")
    pushed = json.loads(auto.portal.received[0][1])
    assert pushed["trangThaiXuLy"] == "4" and pushed["lyDoTuChoi"]


async def test_a_failed_push_is_retried_with_back_off(
    auto: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    auto.portal.statuses = [500, 404]
    await auto.submit(form(applicants["clean"]))
    await eventually(lambda: len(auto.portal.received) == 3, "three attempts")
    assert auto.clock.slept == [3.0, 1.0, 2.0]  # until final, then doubling back-off
    bodies = {body for _, body in auto.portal.received}
    assert len(bodies) == 1  # the same result each time, freshly signed
    assert all(signature_ok(h, b) for h, b in auto.portal.received)
    await eventually(lambda: auto.app.state.judicial.pending_pushes == 0, "the push ends")
    assert (await auto.requests())[0]["push"] == {"state": "delivered", "attempts": 3}


async def test_a_push_that_keeps_failing_is_given_up_and_logged_without_personal_data(
    applicants: dict[str, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    caplog.set_level(logging.INFO, logger="mocks.judicial_records")
    async with running_mock(
        auto=True, push_transport=httpx.MockTransport(unreachable), push_attempts=3
    ) as mock:
        await mock.submit(form(applicants["clean"]))
        await eventually(lambda: mock.app.state.judicial.pending_pushes == 0, "giving up")
        assert (await mock.requests())[0]["push"] == {"state": "failed", "attempts": 3}
    failures = [r for r in caplog.records if r.name == "mocks.judicial_records"]
    assert len(failures) == 3 and all(r.levelno == logging.INFO for r in failures)
    assert "ConnectError" in failures[0].getMessage()
    for record in failures:
        text = record.getMessage()
        assert applicants["clean"]["personal_id"] not in text
        assert applicants["clean"]["full_name"] not in text


async def test_push_can_be_rewired_or_turned_off_at_run_time(
    auto: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    auto.app.state.push.url = None
    await auto.submit(form(applicants["clean"]))
    await eventually(lambda: auto.app.state.judicial.pending_pushes == 0, "the task ends")
    assert auto.portal.received == []
    assert (await auto.requests())[0]["push"]["state"] == "off"
    other = Portal()
    auto.app.state.push.url = "http://elsewhere.test/v2/lyLichTuPhap/traKetQuaHoSoLLTP"
    auto.app.state.push.transport = httpx.ASGITransport(app=other.app())
    await auto.submit(form(applicants["clean"]))
    await eventually(lambda: len(other.received) == 1, "the push to the new target")


async def test_shutdown_cancels_the_pending_pushes(applicants: dict[str, dict[str, str]]) -> None:
    async with running_mock(processing_s=3600) as mock:
        await mock.submit(form(applicants["clean"]))
        service = mock.app.state.judicial
        assert service.pending_pushes == 1
        assert (await mock.http.get("/_mock/health")).json() == {
            "status": "ok",
            "pending_pushes": 1,
        }
    assert service.pending_pushes == 0
    assert mock.portal.received == []


def test_defaults_point_at_the_hub() -> None:
    app = create_app(citizens=[])
    assert app.state.push.url == "http://127.0.0.1:8000/v1/judicial-records/results"
    assert app.state.push.transport is None


# -- faults -----------------------------------------------------------------------------


async def test_error_fault_is_03_retry_later(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    for kind in ("error", "soap-fault", "xxe", "billion-laughs"):
        response = await mock.http.post(
            PATH, json=form(applicants["clean"]), headers=AUTH | {"x-mock-fault": kind}
        )
        assert response.status_code == 200 and response.json()["statusCode"] == "03"
    assert await mock.requests() == []  # nothing was accepted


async def test_http_503_fault(mock: Mock) -> None:
    response = await mock.http.get(
        f"{PATH}/LLTP-00000000-000001", headers=AUTH | {"x-mock-fault": "http-503"}
    )
    assert response.status_code == 503 and response.content == b""


async def test_malformed_and_oversized_faults(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    reference = await mock.submit(form(applicants["clean"]))
    url = f"{PATH}/{reference}"
    malformed = await mock.http.get(url, headers=AUTH | {"x-mock-fault": "malformed"})
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        json.loads(malformed.content)
    oversized = await mock.http.get(url, headers=AUTH | {"x-mock-fault": "oversized"})
    assert len(oversized.content) > 5 * 1024 * 1024
    assert oversized.json()["data"]["maHoSoLLTP"] == reference


async def test_timeout_fault_holds_the_request(mock: Mock) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            mock.http.get(f"{PATH}/x", headers=AUTH | {"x-mock-fault": "timeout"}), 0.2
        )


async def test_faults_set_and_cleared_at_run_time(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    assert (await mock.http.put("/_mock/faults", json={"fault": "error"})).status_code == 200
    busy = await mock.http.post(PATH, json=form(applicants["clean"]), headers=AUTH)
    assert busy.json()["statusCode"] == "03"
    await mock.http.delete("/_mock/faults")
    assert (await mock.http.post(PATH, json=form(applicants["clean"]), headers=AUTH)).json()[
        "statusCode"
    ] == "00"
    bad = await mock.http.get(f"{PATH}/x", headers=AUTH | {"x-mock-fault": "explode"})
    assert bad.status_code == 400


async def test_latency_fault_still_answers(
    mock: Mock, applicants: dict[str, dict[str, str]]
) -> None:
    response = await mock.http.post(
        PATH, json=form(applicants["clean"]), headers=AUTH | {"x-mock-fault": "latency=5"}
    )
    assert response.json()["statusCode"] == "00"
