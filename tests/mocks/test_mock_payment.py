"""The payment mock against docs/mock-payment.md: checksums both ways, the four operations,
every MaLoi, the pay page, the IPN with its retries, the mock-only routes and the faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mocks import create_mock_app
from mocks.data import citizen_index
from mocks.faults import FaultConfig
from mocks.judicial_records.push import PushTarget
from mocks.payment import checksum
from mocks.payment.app import create_app
from tests.conftest import eventually
from tests.fakeclock import NOW, FakeClock
from tests.payment_contract import IPN_SIGNED, REPLY_SIGNED, SIGNED, mac, mac_of

BASE_URL = "http://payment.mock"
PATH = "/api/v1/thanhtoan"
PARTNER = "LGSPHUB"
SECRET = "payment-secret"
IPN_URL = "http://hub.test/v1/payments/ipn"
RETURN_URL = "https://dichvucong.example.gov.vn/ket-qua"
VIETNAM = dt.timezone(dt.timedelta(hours=7))


def vn_time(timestamp: float, fmt: str = "%Y%m%d%H%M%S") -> str:
    return dt.datetime.fromtimestamp(timestamp, VIETNAM).strftime(fmt)


@dataclass
class Partner:
    """The IPN receiver (the hub's role): records each IPN, answers the statuses queued."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.received.append(json.loads(await request.body()))
            self.content_types.append(request.headers.get("content-type", ""))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

        return Starlette(routes=[Route("/v1/payments/ipn", receive, methods=["POST"])])


def request_body(operation: str, clock_now: float = NOW, **fields: Any) -> dict[str, Any]:
    """A request as the hub's adapter writes it, signed; `fields` override or add."""
    body: dict[str, Any] = {
        "LoaiBanTin": operation,
        "PhienBan": "1.0.6",
        "MaDoiTac": PARTNER,
        "ThoiGianGD": vn_time(clock_now),
    }
    if operation == "INIT":
        body |= {
            "MaThamChieu": "pay_3f9c2a7b1e5d4c6a8b0e",
            "SoTien": 150000,
            "MaTienTe": "VND",
            "ThongTinGiaoDich": "Lệ phí cấp phiếu lý lịch tư pháp",
            "UrlTraVe": RETURN_URL,
            "ThongTinBienLai": {
                "MaTTHC": "1.001234",
                "MaHoSo": "HS-2025-0001",
                "HoTenNguoiNop": "Trần Thị Bình",
                "SoDinhDanhNguoiNop": "001187012345",
            },
        }
    elif operation in ("QUERY", "GET_BILL"):
        body["MaThamChieu"] = "pay_3f9c2a7b1e5d4c6a8b0e"
    else:
        body["NgayDoiSoat"] = vn_time(clock_now, "%Y%m%d")
    body |= fields
    body["MaXacThuc"] = mac_of(body, SIGNED[operation])
    return body


def reply_ok(reply: dict[str, Any], operation: str) -> bool:
    expected = mac_of(reply, REPLY_SIGNED[operation])
    return hmac.compare_digest(reply["MaXacThuc"], expected)


def error_ok(reply: dict[str, Any], partner: str = PARTNER) -> bool:
    return hmac.compare_digest(reply["MaXacThuc"], mac([reply["MaLoi"], partner]))


def ipn_ok(ipn: dict[str, Any]) -> bool:
    return hmac.compare_digest(ipn["MaXacThuc"], mac_of(ipn, IPN_SIGNED))


@dataclass
class Mock:
    app: Starlette
    http: httpx.AsyncClient
    clock: FakeClock
    partner: Partner

    async def send(self, body: Any, fault: str | None = None) -> dict[str, Any]:
        headers = {} if fault is None else {"x-mock-fault": fault}
        response = await self.http.post(PATH, json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()  # type: ignore[no-any-return]

    async def call(self, operation: str, **fields: Any) -> dict[str, Any]:
        return await self.send(request_body(operation, self.clock.now, **fields))

    async def init(self, **fields: Any) -> dict[str, Any]:
        reply = await self.call("INIT", **fields)
        assert reply["MaLoi"] == "00", reply
        return reply

    async def settle(self, transaction_id: str, **body: Any) -> httpx.Response:
        return await self.http.post(f"/_mock/payments/{transaction_id}/settle", json=body)

    async def payments(self) -> list[dict[str, Any]]:
        return (await self.http.get("/_mock/payments")).json()["payments"]  # type: ignore[no-any-return]

    @property
    def pending_ipns(self) -> int:
        return self.app.state.payment.pending_ipns  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def running_mock(*, auto: bool = True, **options: Any) -> AsyncIterator[Mock]:
    """The mock in-process with its lifespan entered, sending IPNs to an in-process partner."""
    clock, partner = FakeClock(auto=auto), Partner()
    app = create_app(clock=clock, sleep=clock.sleep, fault_seed=5, ipn_url=IPN_URL, **options)
    app.state.push.transport = httpx.ASGITransport(app=partner.app())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield Mock(app, http, clock, partner)


@pytest.fixture
async def mock() -> AsyncIterator[Mock]:
    async with running_mock() as running:
        yield running


# -- the checksum -------------------------------------------------------------------------


def test_checksum_known_answer() -> None:
    message = request_body("INIT", UrlTraVe=RETURN_URL, ThoiGianGD="20261201091530")
    text = (
        "INIT|1.0.6|LGSPHUB|pay_3f9c2a7b1e5d4c6a8b0e|150000|VND|"
        "Lệ phí cấp phiếu lý lịch tư pháp|20261201091530|"
        "https://dichvucong.example.gov.vn/ket-qua|payment-secret"
    )
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert expected == "a9124998f15a8bae44f9a3d490866e5d0be276753aa3e0c7f62440e4a111255e"
    assert checksum.sign(message, checksum.INIT_REQUEST, SECRET) == expected
    assert message["MaXacThuc"] == expected  # the test's own signer agrees
    # A missing optional field is the empty string; integers are written in decimal.
    without_url = {k: v for k, v in message.items() if k != "UrlTraVe"}
    assert (
        checksum.sign(without_url, checksum.INIT_REQUEST, SECRET)
        == hashlib.sha256(
            text.replace("https://dichvucong.example.gov.vn/ket-qua", "").encode()
        ).hexdigest()
    )
    assert checksum.checksum(["00", 7, None], "s") == hashlib.sha256(b"00|7||s").hexdigest()
    assert checksum.verify(expected, expected) and not checksum.verify(expected.upper(), expected)


# -- INIT -------------------------------------------------------------------------------


async def test_init_opens_a_transaction(mock: Mock) -> None:
    reply = await mock.init()
    assert set(reply) == {
        "MaLoi",
        "MoTaLoi",
        "MaDoiTac",
        "MaThamChieu",
        "MaGiaoDich",
        "UrlThanhToan",
        "MaXacThuc",
    }
    assert reply["MaDoiTac"] == PARTNER
    assert reply["MaThamChieu"] == "pay_3f9c2a7b1e5d4c6a8b0e"
    assert re.fullmatch(r"DVC20250615\d{8}", reply["MaGiaoDich"])
    assert reply["UrlThanhToan"] == f"http://127.0.0.1:8105/pay/{reply['MaGiaoDich']}"
    assert reply_ok(reply, "INIT")
    [payment] = await mock.payments()
    assert payment["status"] == "pending" and payment["amount"] == 150000
    assert payment["ipn"] == {"state": "pending", "attempts": 0}
    assert payment["transaction_id"] == reply["MaGiaoDich"]
    assert payment["init_time"] == vn_time(NOW)


async def test_init_without_optional_fields_and_another_public_url() -> None:
    async with running_mock(public_url="https://pay.example.test/") as mock:
        body = request_body("INIT", UrlTraVe=None)
        del body["ThongTinBienLai"]["SoDinhDanhNguoiNop"]
        body["MaXacThuc"] = mac_of(body, SIGNED["INIT"])
        reply = await mock.send(body)
        assert reply["MaLoi"] == "00", reply
        assert reply["UrlThanhToan"].startswith("https://pay.example.test/pay/DVC")


async def test_init_is_idempotent_by_reference(mock: Mock) -> None:
    first = await mock.init()
    mock.clock.advance(60)
    again = await mock.init(ThongTinGiaoDich="Một mô tả khác")
    assert {k: again[k] for k in ("MaGiaoDich", "UrlThanhToan")} == {
        k: first[k] for k in ("MaGiaoDich", "UrlThanhToan")
    }
    assert reply_ok(again, "INIT")
    other = await mock.init(MaThamChieu="pay_other")
    assert other["MaGiaoDich"] != first["MaGiaoDich"]
    assert [p["reference"] for p in await mock.payments()] == [
        "pay_3f9c2a7b1e5d4c6a8b0e",
        "pay_other",
    ]


async def test_the_same_reference_with_another_amount_is_05(mock: Mock) -> None:
    await mock.init()
    reply = await mock.call("INIT", SoTien=150001)
    assert reply["MaLoi"] == "05" and error_ok(reply)
    assert set(reply) == {"MaLoi", "MoTaLoi", "MaXacThuc"}
    assert [p["amount"] for p in await mock.payments()] == [150000]  # nothing changed


# -- QUERY ------------------------------------------------------------------------------


async def test_query_follows_the_transaction(mock: Mock) -> None:
    opened = await mock.init()
    pending = await mock.call("QUERY")
    assert pending["MaLoi"] == "00" and reply_ok(pending, "QUERY")
    assert pending | {"MaXacThuc": ""} == {
        "MaLoi": "00",
        "MoTaLoi": pending["MoTaLoi"],
        "MaDoiTac": PARTNER,
        "MaThamChieu": "pay_3f9c2a7b1e5d4c6a8b0e",
        "MaGiaoDich": opened["MaGiaoDich"],
        "SoTien": 150000,
        "TrangThaiGD": "3",
        "ThoiGianThanhToan": "",
        "MaXacThuc": "",
    }
    mock.clock.advance(90)
    assert (await mock.settle(opened["MaGiaoDich"], outcome="success")).status_code == 200
    paid = await mock.call("QUERY")
    assert paid["TrangThaiGD"] == "1" and paid["ThoiGianThanhToan"] == "20250615220810"
    assert reply_ok(paid, "QUERY")

    failed_one = await mock.init(MaThamChieu="pay_failed")
    await mock.settle(failed_one["MaGiaoDich"], outcome="failed")
    failed = await mock.call("QUERY", MaThamChieu="pay_failed")
    assert failed["TrangThaiGD"] == "4" and failed["ThoiGianThanhToan"] == "20250615220810"


async def test_query_of_an_unknown_reference_is_04(mock: Mock) -> None:
    reply = await mock.call("QUERY", MaThamChieu="pay_nobody")
    assert reply["MaLoi"] == "04" and error_ok(reply)


# -- GET_BILL ---------------------------------------------------------------------------


async def test_get_bill_of_a_paid_transaction(mock: Mock) -> None:
    opened = await mock.init()
    await mock.settle(opened["MaGiaoDich"], outcome="success", notify=False)
    reply = await mock.call("GET_BILL")
    assert reply["MaLoi"] == "00" and reply_ok(reply, "GET_BILL")
    assert set(reply) == {
        "MaLoi",
        "MoTaLoi",
        "MaDoiTac",
        "MaThamChieu",
        "SoBienLai",
        "BienLai",
        "MaXacThuc",
    }
    assert reply["SoBienLai"] == "BL-20250000001"
    pdf = base64.b64decode(reply["BienLai"], validate=True)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"BIEN LAI" in pdf and b"BL-20250000001" in pdf and b"150.000 VND" in pdf
    assert b"Tran Thi Binh" in pdf  # folded to ASCII for the standard font
    assert await mock.call("GET_BILL") == reply  # the same receipt every time
    second = await mock.init(MaThamChieu="pay_second")
    await mock.settle(second["MaGiaoDich"], notify=False)
    assert (await mock.call("GET_BILL", MaThamChieu="pay_second"))["SoBienLai"] == (
        "BL-20250000002"
    )


async def test_get_bill_without_a_payment_is_06_and_unknown_is_04(mock: Mock) -> None:
    pending = await mock.init()
    reply = await mock.call("GET_BILL")
    assert reply["MaLoi"] == "06" and error_ok(reply)
    await mock.settle(pending["MaGiaoDich"], outcome="failed", notify=False)
    assert (await mock.call("GET_BILL"))["MaLoi"] == "06"
    unknown = await mock.call("GET_BILL", MaThamChieu="pay_nobody")
    assert unknown["MaLoi"] == "04" and error_ok(unknown)


# -- DOI_SOAT ---------------------------------------------------------------------------


async def test_doi_soat_lists_exactly_that_day(mock: Mock) -> None:
    first = await mock.init(MaThamChieu="pay_day1_a")  # 22:06:40 on 15 June, Vietnam time
    mock.clock.advance(3600)
    await mock.init(MaThamChieu="pay_day1_b", SoTien=8000)  # 23:06:40
    mock.clock.advance(3600)
    await mock.init(MaThamChieu="pay_day2", SoTien=20000)  # 00:06:40 on 16 June
    await mock.settle(first["MaGiaoDich"], outcome="success", notify=False)

    day1 = await mock.call("DOI_SOAT", NgayDoiSoat="20250615")
    assert day1["MaLoi"] == "00" and reply_ok(day1, "DOI_SOAT")
    assert day1["NgayDoiSoat"] == "20250615" and day1["SoLuong"] == 2
    assert day1["DanhSachGiaoDich"] == [
        {
            "MaThamChieu": "pay_day1_a",
            "MaGiaoDich": first["MaGiaoDich"],
            "SoTien": 150000,
            "TrangThaiGD": "1",
            "ThoiGianThanhToan": vn_time(NOW + 7200),
        },
        {
            "MaThamChieu": "pay_day1_b",
            "MaGiaoDich": day1["DanhSachGiaoDich"][1]["MaGiaoDich"],
            "SoTien": 8000,
            "TrangThaiGD": "3",
            "ThoiGianThanhToan": "",
        },
    ]
    day2 = await mock.call("DOI_SOAT", NgayDoiSoat="20250616")
    assert [t["MaThamChieu"] for t in day2["DanhSachGiaoDich"]] == ["pay_day2"]
    assert day2["SoLuong"] == 1 and day2["DanhSachGiaoDich"][0]["MaGiaoDich"].startswith(
        "DVC20250616"
    )
    empty = await mock.call("DOI_SOAT", NgayDoiSoat="20250614")
    assert (empty["SoLuong"], empty["DanhSachGiaoDich"]) == (0, [])
    assert reply_ok(empty, "DOI_SOAT")


# -- refusals ---------------------------------------------------------------------------

SECRET_LOOKING = "SECRETVALUE-9b1d"


def _without(name: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        del body[name]

    return change


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body[name] = value

    return change


def _receipt(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        if value is None:
            del body["ThongTinBienLai"][name]
        else:
            body["ThongTinBienLai"][name] = value

    return change


@pytest.mark.parametrize(
    ("operation", "change", "field_name"),
    [
        ("INIT", _without("MaThamChieu"), "MaThamChieu"),
        ("INIT", _set("MaThamChieu", ""), "MaThamChieu"),
        ("INIT", _set("MaThamChieu", "x" * 51), "MaThamChieu"),
        ("INIT", _set("MaThamChieu", "has space"), "MaThamChieu"),
        ("INIT", _set("MaThamChieu", "mã-tham-chiếu"), "MaThamChieu"),
        ("INIT", _without("SoTien"), "SoTien"),
        ("INIT", _set("SoTien", 0), "SoTien"),
        ("INIT", _set("SoTien", 10_000_000_001), "SoTien"),
        ("INIT", _set("SoTien", 1500.5), "SoTien"),
        ("INIT", _set("SoTien", "150000"), "SoTien"),
        ("INIT", _set("SoTien", True), "SoTien"),
        ("INIT", _set("MaTienTe", "USD"), "MaTienTe"),
        ("INIT", _without("MaTienTe"), "MaTienTe"),
        ("INIT", _set("ThongTinGiaoDich", ""), "ThongTinGiaoDich"),
        ("INIT", _set("ThongTinGiaoDich", "x" * 201), "ThongTinGiaoDich"),
        ("INIT", _set("UrlTraVe", f"javascript:{SECRET_LOOKING}"), "UrlTraVe"),
        ("INIT", _set("UrlTraVe", "https://" + "x" * 500), "UrlTraVe"),
        ("INIT", _set("UrlTraVe", 12), "UrlTraVe"),
        ("INIT", _without("ThongTinBienLai"), "ThongTinBienLai"),
        ("INIT", _set("ThongTinBienLai", SECRET_LOOKING), "ThongTinBienLai"),
        ("INIT", _receipt("MaTTHC", None), "ThongTinBienLai.MaTTHC"),
        ("INIT", _receipt("MaHoSo", "x" * 51), "ThongTinBienLai.MaHoSo"),
        ("INIT", _receipt("HoTenNguoiNop", "x" * 101), "ThongTinBienLai.HoTenNguoiNop"),
        (
            "INIT",
            _receipt("SoDinhDanhNguoiNop", "SECRET12345X"),
            "ThongTinBienLai.SoDinhDanhNguoiNop",
        ),
        ("INIT", _set("ThoiGianGD", "20251315000000"), "ThoiGianGD"),
        ("INIT", _set("ThoiGianGD", "2025061522"), "ThoiGianGD"),
        ("INIT", _without("PhienBan"), "PhienBan"),
        ("INIT", _set("MaDoiTac", 42), "MaDoiTac"),
        ("INIT", _without("MaXacThuc"), "MaXacThuc"),
        ("QUERY", _without("MaThamChieu"), "MaThamChieu"),
        ("QUERY", _without("ThoiGianGD"), "ThoiGianGD"),
        ("GET_BILL", _set("MaThamChieu", ["pay_1"]), "MaThamChieu"),
        ("DOI_SOAT", _set("NgayDoiSoat", "20250230"), "NgayDoiSoat"),
        ("DOI_SOAT", _set("NgayDoiSoat", "2025-06-15"), "NgayDoiSoat"),
        ("DOI_SOAT", _without("NgayDoiSoat"), "NgayDoiSoat"),
        ("QUERY", _set("LoaiBanTin", "REFUND"), "LoaiBanTin"),
        ("QUERY", _set("LoaiBanTin", "IPN"), "LoaiBanTin"),
    ],
)
async def test_a_malformed_message_is_01_naming_the_field(
    mock: Mock, operation: str, change: Callable[[dict[str, Any]], None], field_name: str
) -> None:
    body = request_body(operation)
    change(body)
    if "MaXacThuc" in body:
        body["MaXacThuc"] = mac_of(body, SIGNED[operation])  # well signed: only the field is bad
    reply = await mock.send(body)
    assert reply["MaLoi"] == "01", reply
    assert re.search(rf"(^|[ ,:]){re.escape(field_name)}(,|$)", reply["MoTaLoi"]), reply
    assert set(reply) == {"MaLoi", "MoTaLoi", "MaXacThuc"}
    assert SECRET_LOOKING not in reply["MoTaLoi"] and "SECRET" not in reply["MoTaLoi"]
    partner = str(body["MaDoiTac"]) if isinstance(body.get("MaDoiTac"), str) else ""
    assert error_ok(reply, partner)
    assert await mock.payments() == []


async def test_every_bad_field_is_named(mock: Mock) -> None:
    body = request_body("INIT", SoTien=-5, MaTienTe="usd")
    reply = await mock.send(body)
    assert reply["MaLoi"] == "01" and "SoTien" in reply["MoTaLoi"]
    assert "MaTienTe" in reply["MoTaLoi"] and "-5" not in reply["MoTaLoi"]


async def test_a_body_that_is_not_json_is_http_400_and_01(mock: Mock) -> None:
    for content in (b"{not json", b"\xff\xfe", b""):
        response = await mock.http.post(PATH, content=content)
        assert response.status_code == 400
        reply = response.json()
        assert reply["MaLoi"] == "01" and error_ok(reply, "")
    not_an_object = await mock.send([request_body("QUERY")])
    assert not_an_object["MaLoi"] == "01" and error_ok(not_an_object, "")


async def test_a_body_too_large_is_refused(mock: Mock) -> None:
    body = request_body("INIT", ThongTinGiaoDich="x" * 200, Padding="y" * 200_000)
    response = await mock.http.post(PATH, json=body)
    assert response.status_code == 400 and response.json()["MaLoi"] == "01"


@pytest.mark.parametrize(
    "signature",
    [
        "0" * 64,
        "tampered",
        "upper",
        "wrong-secret",
        "amount-changed",
    ],
)
async def test_a_checksum_that_does_not_verify_is_02(mock: Mock, signature: str) -> None:
    body = request_body("INIT")
    if signature == "upper":
        body["MaXacThuc"] = body["MaXacThuc"].upper()
    elif signature == "wrong-secret":
        body["MaXacThuc"] = mac_of(body, SIGNED["INIT"], "another-secret")
    elif signature == "amount-changed":
        body["SoTien"] = 150001  # signed for 150000
    else:
        body["MaXacThuc"] = signature
    reply = await mock.send(body)
    assert reply["MaLoi"] == "02" and error_ok(reply)
    assert await mock.payments() == []


async def test_an_unsigned_field_is_not_covered(mock: Mock) -> None:
    body = request_body("INIT")
    body["ThongTinBienLai"]["MaHoSo"] = "HS-OTHER"  # not in the signed fields
    assert (await mock.send(body))["MaLoi"] == "00"


async def test_an_unknown_partner_is_03(mock: Mock) -> None:
    body = request_body("QUERY", MaDoiTac="OTHERPARTNER")
    reply = await mock.send(body)
    assert reply["MaLoi"] == "03" and error_ok(reply, "OTHERPARTNER")


async def test_partner_and_secret_are_options() -> None:
    async with running_mock(partner_code="TINH01", secret="s3cret") as mock:
        body = request_body("DOI_SOAT", MaDoiTac="TINH01")
        body["MaXacThuc"] = mac_of(body, SIGNED["DOI_SOAT"], "s3cret")
        reply = await mock.send(body)
        assert reply["MaLoi"] == "00" and reply["MaDoiTac"] == "TINH01"
        assert reply["MaXacThuc"] == mac_of(reply, REPLY_SIGNED["DOI_SOAT"], "s3cret")
        assert (await mock.send(request_body("DOI_SOAT")))["MaLoi"] == "03"


# -- the pay page -----------------------------------------------------------------------


async def test_the_pay_page_shows_the_amount_description_and_two_buttons(mock: Mock) -> None:
    opened = await mock.init(ThongTinGiaoDich="Lệ phí <b>hộ tịch</b> & sao y")
    pay_path = urlsplit(opened["UrlThanhToan"]).path
    page = await mock.http.get(pay_path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "150.000 ₫" in page.text
    assert "Lệ phí &lt;b&gt;hộ tịch&lt;/b&gt; &amp; sao y" in page.text and "<b>" not in page.text
    assert 'name="outcome" value="success"' in page.text
    assert 'name="outcome" value="failed"' in page.text
    assert f'action="{pay_path}"' in page.text and 'method="post"' in page.text
    assert (await mock.http.get("/pay/DVC2025061599999999")).status_code == 404


@pytest.mark.parametrize(("outcome", "code"), [("success", "1"), ("failed", "4")])
async def test_paying_on_the_page_redirects_back(mock: Mock, outcome: str, code: str) -> None:
    opened = await mock.init(UrlTraVe=RETURN_URL + "?lang=vi")
    pay_path = urlsplit(opened["UrlThanhToan"]).path
    response = await mock.http.post(pay_path, data={"outcome": outcome})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    assert parse_qs(location.query) == {
        "lang": ["vi"],
        "MaThamChieu": ["pay_3f9c2a7b1e5d4c6a8b0e"],
        "TrangThaiGD": [code],
    }
    assert (await mock.call("QUERY"))["TrangThaiGD"] == code
    await eventually(lambda: len(mock.partner.received) == 1, "the IPN")
    assert mock.partner.received[0]["MaLoi"] == ("00" if outcome == "success" else "01")
    # A second click changes nothing and sends no second IPN.
    again = await mock.http.post(pay_path, data={"outcome": "failed"})
    assert again.status_code == 303 and f"TrangThaiGD={code}" in again.headers["location"]
    await eventually(lambda: mock.pending_ipns == 0, "the IPN ends")
    assert len(mock.partner.received) == 1
    shown = await mock.http.get(pay_path)
    assert 'name="outcome"' not in shown.text and "150.000 ₫" in shown.text


async def test_paying_without_a_return_url_shows_the_outcome(mock: Mock) -> None:
    opened = await mock.init(UrlTraVe=None)
    pay_path = urlsplit(opened["UrlThanhToan"]).path
    response = await mock.http.post(pay_path, data={"outcome": "success"})
    assert response.status_code == 200 and 'data-status="paid"' in response.text
    bad = await mock.http.post(pay_path, data={"outcome": "maybe"})
    assert bad.status_code == 400


async def test_a_bad_outcome_on_the_page_settles_nothing(mock: Mock) -> None:
    opened = await mock.init()
    pay_path = urlsplit(opened["UrlThanhToan"]).path
    assert (await mock.http.post(pay_path, data={"outcome": "maybe"})).status_code == 400
    assert (await mock.http.post(pay_path, data={})).status_code == 400
    assert (await mock.payments())[0]["status"] == "pending"


# -- the IPN ----------------------------------------------------------------------------


async def test_settling_sends_a_signed_ipn(mock: Mock) -> None:
    opened = await mock.init()
    mock.clock.advance(120)
    response = await mock.settle(opened["MaGiaoDich"], outcome="success")
    assert response.status_code == 200
    assert response.json()["status"] == "paid"
    assert response.json()["settled_at"] == "2025-06-15T15:08:40+00:00"
    await eventually(lambda: len(mock.partner.received) == 1, "the IPN")
    ipn = mock.partner.received[0]
    assert ipn == {
        "LoaiBanTin": "IPN",
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": "pay_3f9c2a7b1e5d4c6a8b0e",
        "SoTien": 150000,
        "MaGiaoDich": opened["MaGiaoDich"],
        "ThoiGianGD": "20250615220840",
        "MaXacThuc": ipn["MaXacThuc"],
    }
    assert ipn_ok(ipn)
    assert mock.partner.content_types[0].startswith("application/json")
    await eventually(lambda: mock.pending_ipns == 0, "the delivery ends")
    [payment] = await mock.payments()
    assert payment["ipn"] == {"state": "delivered", "attempts": 1}


async def test_a_failed_payment_is_notified_with_01(mock: Mock) -> None:
    opened = await mock.init()
    await mock.settle(opened["MaGiaoDich"], outcome="failed")
    await eventually(lambda: len(mock.partner.received) == 1, "the IPN")
    assert mock.partner.received[0]["MaLoi"] == "01" and ipn_ok(mock.partner.received[0])


async def test_the_ipn_is_retried_with_back_off_each_time_freshly_signed(mock: Mock) -> None:
    mock.partner.statuses = [500, 503]
    opened = await mock.init()
    await mock.settle(opened["MaGiaoDich"])
    await eventually(lambda: mock.pending_ipns == 0, "the delivery ends")
    assert len(mock.partner.received) == 3
    assert mock.clock.slept == [1.0, 2.0]
    times = [ipn["ThoiGianGD"] for ipn in mock.partner.received]
    assert times == [vn_time(NOW), vn_time(NOW + 1), vn_time(NOW + 3)]
    assert len({ipn["MaXacThuc"] for ipn in mock.partner.received}) == 3
    assert all(ipn_ok(ipn) for ipn in mock.partner.received)
    assert (await mock.payments())[0]["ipn"] == {"state": "delivered", "attempts": 3}


async def test_a_409_answer_stops_the_delivery(mock: Mock) -> None:
    mock.partner.statuses = [409]
    opened = await mock.init()
    await mock.settle(opened["MaGiaoDich"])
    await eventually(lambda: mock.pending_ipns == 0, "the delivery ends")
    assert len(mock.partner.received) == 1 and mock.clock.slept == []
    assert (await mock.payments())[0]["ipn"] == {"state": "delivered", "attempts": 1}


async def test_the_ipn_is_given_up_after_the_attempts_and_logged_without_personal_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mocks.payment")
    async with running_mock(ipn_attempts=4, ipn_backoff_s=0.5) as mock:
        mock.partner.statuses = [500] * 10
        opened = await mock.init()
        await mock.settle(opened["MaGiaoDich"])
        await eventually(lambda: mock.pending_ipns == 0, "giving up")
        assert len(mock.partner.received) == 4
        assert mock.clock.slept == [0.5, 1.0, 2.0]
        assert (await mock.payments())[0]["ipn"] == {"state": "failed", "attempts": 4}
    failures = [r for r in caplog.records if r.name == "mocks.payment"]
    assert len(failures) == 4 and "HTTP 500" in failures[0].getMessage()
    for record in caplog.records:
        text = record.getMessage()
        assert "Trần Thị Bình" not in text and "001187012345" not in text


async def test_an_unreachable_partner_is_retried_then_given_up() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with running_mock() as mock:
        mock.app.state.push.transport = httpx.MockTransport(unreachable)
        opened = await mock.init()
        await mock.settle(opened["MaGiaoDich"])
        await eventually(lambda: mock.pending_ipns == 0, "giving up")
        assert mock.clock.slept == [1.0, 2.0, 4.0, 8.0]  # 5 attempts by default
        assert (await mock.payments())[0]["ipn"] == {"state": "failed", "attempts": 5}


async def test_notify_false_sends_no_ipn(mock: Mock) -> None:
    opened = await mock.init()
    response = await mock.settle(opened["MaGiaoDich"], outcome="success", notify=False)
    assert response.json()["ipn"] == {"state": "off", "attempts": 0}
    await asyncio.sleep(0.01)
    assert mock.partner.received == [] and mock.pending_ipns == 0
    assert (await mock.call("QUERY"))["TrangThaiGD"] == "1"  # the partner's query fallback


async def test_the_ipn_target_can_be_rewired_or_turned_off(mock: Mock) -> None:
    assert isinstance(mock.app.state.push, PushTarget)
    mock.app.state.push.url = None
    first = await mock.init(MaThamChieu="pay_off")
    assert (await mock.settle(first["MaGiaoDich"])).json()["ipn"]["state"] == "off"
    other = Partner()
    mock.app.state.push.url = "http://elsewhere.test/v1/payments/ipn"
    mock.app.state.push.transport = httpx.ASGITransport(app=other.app())
    second = await mock.init(MaThamChieu="pay_on")
    await mock.settle(second["MaGiaoDich"])
    await eventually(lambda: len(other.received) == 1, "the IPN to the new target")
    assert mock.partner.received == []


async def test_shutdown_cancels_the_pending_ipns() -> None:
    async with running_mock(auto=False) as mock:
        mock.partner.statuses = [500]
        opened = await mock.init()
        await mock.settle(opened["MaGiaoDich"])
        await eventually(lambda: mock.clock.slept == [1.0], "waiting to retry")
        platform = mock.app.state.payment
        assert platform.pending_ipns == 1
    assert platform.pending_ipns == 0
    assert len(mock.partner.received) == 1


def test_defaults() -> None:
    app = create_app()
    assert app.state.push.url == "http://127.0.0.1:8000/v1/payments/ipn"
    assert app.state.push.transport is None
    assert app.state.payment.partner_code == "LGSPHUB"
    assert create_mock_app("payment", ipn_url=None).state.push.url is None


# -- the mock-only routes ---------------------------------------------------------------


async def test_settle_refusals(mock: Mock) -> None:
    assert (await mock.settle("DVC2025061500000099")).status_code == 404
    opened = await mock.init()
    transaction_id = opened["MaGiaoDich"]
    assert (await mock.settle(transaction_id, outcome="maybe")).status_code == 400
    assert (await mock.settle(transaction_id, notify="yes")).status_code == 400
    assert (await mock.settle(transaction_id, outcom="success")).status_code == 400
    bad = await mock.http.post(f"/_mock/payments/{transaction_id}/settle", content=b"[1]")
    assert bad.status_code == 400
    ok = await mock.http.post(f"/_mock/payments/{transaction_id}/settle")  # defaults: success
    assert ok.status_code == 200 and ok.json()["status"] == "paid"
    again = await mock.settle(transaction_id, outcome="failed")
    assert again.status_code == 409
    assert (await mock.payments())[0]["status"] == "paid"


async def test_payments_lists_every_transaction_without_personal_data(mock: Mock) -> None:
    first = await mock.init()
    await mock.init(MaThamChieu="pay_two", SoTien=8000)
    await mock.settle(first["MaGiaoDich"], notify=False)
    response = await mock.http.get("/_mock/payments")
    listing = response.json()
    assert listing["total"] == 2
    assert [p["status"] for p in listing["payments"]] == ["paid", "pending"]
    assert set(listing["payments"][0]) == {
        "reference",
        "transaction_id",
        "amount",
        "status",
        "init_time",
        "created_at",
        "settled_at",
        "pay_url",
        "ipn",
    }
    assert listing["payments"][1]["settled_at"] is None
    assert "Trần Thị Bình" not in response.text and "001187012345" not in response.text


async def test_records_pair_procedures_with_known_payers(mock: Mock) -> None:
    response = await mock.http.get("/_mock/records", params={"limit": 30})
    records = response.json()["records"]
    assert len(records) == 30
    index = citizen_index()
    for record in records:
        assert set(record) == {
            "procedure_code",
            "procedure_name",
            "amount",
            "payer_name",
            "payer_personal_id",
        }
        assert re.fullmatch(r"[12]\.\d{6}", record["procedure_code"])
        assert isinstance(record["amount"], int) and 0 < record["amount"] <= 10_000_000_000
        assert index[record["payer_personal_id"]].full_name == record["payer_name"]
    assert len({r["payer_personal_id"] for r in records}) == 30
    assert len({r["procedure_code"] for r in records}) > 10
    assert any(not r["procedure_name"].isascii() for r in records)  # Vietnamese names
    default = (await mock.http.get("/_mock/records")).json()["records"]
    assert default == records[:20]  # the same on every call
    for bad in ("0", "1001", "x"):
        assert (await mock.http.get("/_mock/records", params={"limit": bad})).status_code == 400


async def test_a_record_can_be_paid_for(mock: Mock) -> None:
    [record] = (await mock.http.get("/_mock/records", params={"limit": 1})).json()["records"]
    receipt = {
        "MaTTHC": record["procedure_code"],
        "MaHoSo": "HS-1",
        "HoTenNguoiNop": record["payer_name"],
        "SoDinhDanhNguoiNop": record["payer_personal_id"],
    }
    reply = await mock.init(
        SoTien=record["amount"], ThongTinGiaoDich=record["procedure_name"], ThongTinBienLai=receipt
    )
    assert reply_ok(reply, "INIT")


async def test_health(mock: Mock) -> None:
    assert (await mock.http.get("/_mock/health")).json() == {"status": "ok"}


# -- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["error", "soap-fault", "xxe", "billion-laughs"])
async def test_error_fault_is_a_signed_99(mock: Mock, kind: str) -> None:
    reply = await mock.send(request_body("INIT"), fault=kind)
    assert reply["MaLoi"] == "99" and error_ok(reply)
    assert await mock.payments() == []  # nothing was opened


async def test_http_503_fault(mock: Mock) -> None:
    response = await mock.http.post(
        PATH, json=request_body("QUERY"), headers={"x-mock-fault": "http-503"}
    )
    assert response.status_code == 503 and response.content == b""


async def test_malformed_and_oversized_faults(mock: Mock) -> None:
    await mock.init()
    malformed = await mock.http.post(
        PATH, json=request_body("QUERY"), headers={"x-mock-fault": "malformed"}
    )
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        json.loads(malformed.content)
    oversized = await mock.http.post(
        PATH, json=request_body("QUERY"), headers={"x-mock-fault": "oversized"}
    )
    assert len(oversized.content) > 5 * 1024 * 1024
    reply = oversized.json()
    assert reply["MaLoi"] == "00" and reply_ok(reply, "QUERY")


async def test_timeout_fault_holds_the_request(mock: Mock) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            mock.http.post(PATH, json=request_body("QUERY"), headers={"x-mock-fault": "timeout"}),
            0.2,
        )


async def test_faults_set_and_cleared_at_run_time(mock: Mock) -> None:
    assert (await mock.http.put("/_mock/faults", json={"fault": "error"})).status_code == 200
    assert (await mock.call("DOI_SOAT"))["MaLoi"] == "99"
    # Faults apply to the platform's endpoint only.
    assert (await mock.http.get("/_mock/health")).status_code == 200
    await mock.http.delete("/_mock/faults")
    assert (await mock.call("DOI_SOAT"))["MaLoi"] == "00"
    bad = await mock.http.post(PATH, json={}, headers={"x-mock-fault": "explode"})
    assert bad.status_code == 400


async def test_startup_faults_and_latency() -> None:
    async with running_mock(faults=FaultConfig(latency_ms=1)) as mock:
        assert (await mock.call("DOI_SOAT"))["MaLoi"] == "00"
        reply = await mock.send(request_body("DOI_SOAT"), fault="latency=5")
        assert reply["MaLoi"] == "00"
    app = create_mock_app("payment", fault_options=["http-503"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        assert (await http.post(PATH, json=request_body("QUERY"))).status_code == 503


async def test_an_unexpected_error_is_a_signed_99_without_a_traceback(
    mock: Mock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(request: Any) -> dict[str, Any]:
        raise RuntimeError("Trần Thị Bình 001187012345")

    monkeypatch.setattr(mock.app.state.payment, "query", explode)
    reply = await mock.call("QUERY")
    assert reply["MaLoi"] == "99" and error_ok(reply)
    assert "Traceback" not in json.dumps(reply)
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    assert all("001187012345" not in r.getMessage() for r in caplog.records)
