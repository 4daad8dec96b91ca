"""Fixtures for the mock tests: the population mock in-process, signed SOAP calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree

from mocks.data import Citizen, load_citizens
from mocks.population.app import create_app
from mocks.population.client_auth import auth_headers

BASE_URL = "http://population.mock"
ENDPOINT = f"{BASE_URL}/dancu/ws"
NOW = 1_750_000_000.0  # the mock's clock in these tests
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
REQ_NS = "http://dancuquocgia.bca"
RESP_NS = "http://www.mic.gov.vn/dancu/1.0"
NS = {"soap": SOAP_NS, "r": RESP_NS}


def envelope(operation: str, **fields: str | None) -> bytes:
    """A SOAP 1.1 request as a careful client would write it (qualified fields)."""
    parts = "".join(
        f"<dc:{name}>{escape(value)}</dc:{name}>"
        for name, value in fields.items()
        if value is not None
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:dc="{REQ_NS}"><soap:Body>'
        f"<dc:{operation}>{parts}</dc:{operation}></soap:Body></soap:Envelope>"
    ).encode()


def lookup_body(personal_id: str, request_id: str = "req-1") -> bytes:
    return envelope(
        "TraCuuThongTinCongDan",
        MaYeuCau=request_id,
        MaDVC="1.004227",
        MaTichHop="LGSP-TEST",
        MaCanBo="CB01",
        SoDinhDanh=personal_id,
    )


def verify_body(personal_id: str, name: str, dob: str, gender: str | None = None) -> bytes:
    return envelope(
        "XacThucThongTinCongDan",
        MaYeuCau="req-2",
        MaDVC="1.004227",
        MaTichHop="LGSP-TEST",
        MaCanBo="",
        SoDinhDanh=personal_id,
        HoVaTen=name,
        NgayThangNamSinh=dob,
        GioiTinh=gender,
    )


def signed(now: float = NOW, url: str = ENDPOINT, **extra: str) -> dict[str, str]:
    """Auth headers for the test mock (user hub, default secret) plus extras."""
    headers = auth_headers(url, "hub", "population-secret", now=now)
    headers["Content-Type"] = "text/xml; charset=utf-8"
    return headers | extra


def fault_of(response: httpx.Response) -> dict[str, str]:
    """faultcode, faultstring, MaLoi and MoTa of a SOAP fault response."""
    root = etree.fromstring(response.content)
    fault = root.find("soap:Body/soap:Fault", NS)
    assert fault is not None, response.text[:300]
    return {
        "faultcode": fault.findtext("faultcode"),
        "faultstring": fault.findtext("faultstring"),
        "MaLoi": fault.findtext("detail/r:Loi/r:MaLoi", namespaces=NS),
        "MoTa": fault.findtext("detail/r:Loi/r:MoTa", namespaces=NS),
    }


def answer_of(response: httpx.Response) -> etree._Element:
    """The soap:Body's first child of a successful response."""
    assert response.status_code == 200, response.text[:300]
    body = etree.fromstring(response.content).find("soap:Body", NS)
    assert body is not None
    return body[0]


@pytest.fixture(scope="session")
def citizens() -> list[Citizen]:
    return load_citizens()


@pytest.fixture(scope="session")
def citizen(citizens: list[Citizen]) -> Citizen:
    """A married head of household with an old ID and a middle name: every element present."""
    return next(
        c
        for c in citizens
        if c.relation_to_head == "CH01" and c.spouse and c.old_id_number and c.middle_name
    )


def make_app(**options: Any) -> Any:
    return create_app(clock=lambda: NOW, **options)


@pytest.fixture
def app() -> Any:
    return make_app(fault_seed=7)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


async def call(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    fault: str | None = None,
) -> httpx.Response:
    """POST a SOAP body, signed unless `headers` is given; `fault` sets X-Mock-Fault."""
    sent = dict(signed() if headers is None else headers)
    if fault is not None:
        sent["X-Mock-Fault"] = fault
    return await client.post("/dancu/ws", content=body, headers=sent)
