"""The population mock against docs/mock-population.md: operations, auth, refusals."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from mocks.data import Citizen
from mocks.population.client_auth import password_for

from .conftest import (
    BASE_URL,
    ENDPOINT,
    NOW,
    NS,
    answer_of,
    call,
    envelope,
    fault_of,
    lookup_body,
    signed,
    verify_body,
)

UNKNOWN_ID = "001099000001"


def _ymd(c: Citizen) -> str:
    return c.date_of_birth.strftime("%Y%m%d")


# -- TraCuuThongTinCongDan -----------------------------------------------------------------


async def test_lookup_returns_the_whole_record(client: httpx.AsyncClient, citizen: Citizen) -> None:
    response = await call(client, lookup_body(citizen.personal_id, "abc-123"))
    assert response.headers["content-type"].startswith("text/xml")
    answer = answer_of(response)
    assert answer.tag == f"{{{NS['r']}}}TraCuuThongTinCongDanResponse"
    assert answer.findtext("r:MaYeuCau", namespaces=NS) == "abc-123"
    record = answer.find("r:CongdanCollection/r:CongDan", NS)
    text = lambda path: record.findtext(path, namespaces=NS)  # noqa: E731
    assert text("r:SoDinhDanh") == citizen.personal_id
    assert text("r:SoCMND") == citizen.old_id_number
    assert text("r:HoVaTen/r:Ho") == citizen.family_name
    assert text("r:HoVaTen/r:ChuDem") == citizen.middle_name
    assert text("r:HoVaTen/r:Ten") == citizen.given_name
    assert text("r:GioiTinh") == {"male": "1", "female": "2"}[citizen.gender]
    assert text("r:TinhTrangHonNhan") == "2"
    assert text("r:QuocTich") == "VN"
    assert text("r:NgayThangNamSinh/r:NgayThangNam") == _ymd(citizen)
    assert text("r:NgayThangNamSinh/r:Nam") == str(citizen.date_of_birth.year)
    assert text("r:ThuongTru/r:MaTinhThanh") == citizen.permanent_address.province_code
    assert text("r:ThuongTru/r:ChiTiet") == citizen.permanent_address.detail
    assert text("r:NoiDangKyKhaiSinh/r:MaTinhThanh") == citizen.personal_id[:3]
    assert text("r:VoChong/r:SoDinhDanh") == citizen.spouse.personal_id
    assert text("r:ChuHo/r:QuanHe") == "CH01"
    assert text("r:SoSoHoKhau") == citizen.household_book_number
    # Element order is the WSDL's sequence.
    order = [child.tag.split("}")[1] for child in record]
    assert order[:4] == ["SoDinhDanh", "SoCMND", "HoVaTen", "GioiTinh"]
    assert order[-2:] == ["ChuHo", "SoSoHoKhau"]


async def test_lookup_twice_uses_the_cache_and_echoes_each_request_id(
    client: httpx.AsyncClient, citizen: Citizen
) -> None:
    first = answer_of(await call(client, lookup_body(citizen.personal_id, "one")))
    second = answer_of(await call(client, lookup_body(citizen.personal_id, "a&b<c>")))
    assert first.findtext("r:MaYeuCau", namespaces=NS) == "one"
    assert second.findtext("r:MaYeuCau", namespaces=NS) == "a&b<c>"


async def test_parent_without_id_has_name_only(
    client: httpx.AsyncClient, citizens: list[Citizen]
) -> None:
    person = next(c for c in citizens if c.father and c.father.personal_id is None)
    record = answer_of(await call(client, lookup_body(person.personal_id)))
    father = record.find("r:CongdanCollection/r:CongDan/r:Cha", NS)
    assert father.findtext("r:HoVaTen", namespaces=NS) == person.father.full_name
    assert father.find("r:SoDinhDanh", NS) is None


async def test_unknown_id_is_a_client_fault_that_quotes_it(client: httpx.AsyncClient) -> None:
    response = await call(client, lookup_body(UNKNOWN_ID))
    assert response.status_code == 500
    fault = fault_of(response)
    assert fault["faultcode"] == "soap:Client"
    assert fault["MaLoi"] == "KHONG_TIM_THAY"
    assert UNKNOWN_ID in fault["faultstring"]  # deliberately: the hub must not pass it on


# -- XacThucThongTinCongDan ----------------------------------------------------------------


def _verdict(response: httpx.Response) -> dict[str, str | None]:
    answer = answer_of(response)
    paths = (
        "TonTai",
        "KetQuaXacThuc",
        "ChiTietXacThuc/r:HoVaTen",
        "ChiTietXacThuc/r:NgayThangNamSinh",
        "ChiTietXacThuc/r:GioiTinh",
    )
    return {p.split(":")[-1]: answer.findtext(f"r:{p}", namespaces=NS) for p in paths}


@pytest.mark.parametrize(
    "spell",
    [
        lambda name: name,
        str.upper,
        lambda name: "  " + name.replace(" ", "   ") + " ",
        lambda name: __import__("unicodedata").normalize("NFD", name),
    ],
    ids=["exact", "upper-case", "extra-spaces", "decomposed"],
)
async def test_verify_matches_names_loosely_but_with_diacritics(
    client: httpx.AsyncClient, citizen: Citizen, spell: Any
) -> None:
    gender = {"male": "1", "female": "2"}[citizen.gender]
    response = await call(
        client, verify_body(citizen.personal_id, spell(citizen.full_name), _ymd(citizen), gender)
    )
    assert _verdict(response) == {
        "TonTai": "true",
        "KetQuaXacThuc": "true",
        "HoVaTen": "true",
        "NgayThangNamSinh": "true",
        "GioiTinh": "true",
    }


async def test_verify_reports_each_mismatch(client: httpx.AsyncClient, citizen: Citizen) -> None:
    stripped = (
        "".join(
            ch
            for ch in __import__("unicodedata").normalize("NFD", citizen.full_name)
            if not __import__("unicodedata").combining(ch)
        )
        .replace("Đ", "D")
        .replace("đ", "d")
    )
    assert stripped != citizen.full_name
    wrong_gender = {"male": "2", "female": "1"}[citizen.gender]
    verdict = _verdict(
        await call(client, verify_body(citizen.personal_id, stripped, _ymd(citizen), wrong_gender))
    )
    assert verdict == {
        "TonTai": "true",
        "KetQuaXacThuc": "false",
        "HoVaTen": "false",
        "NgayThangNamSinh": "true",
        "GioiTinh": "false",
    }
    verdict = _verdict(
        await call(client, verify_body(citizen.personal_id, citizen.full_name, "19000101"))
    )
    assert verdict == {
        "TonTai": "true",
        "KetQuaXacThuc": "false",
        "HoVaTen": "true",
        "NgayThangNamSinh": "false",
        "GioiTinh": None,  # not asked, so absent
    }


async def test_verify_unknown_id_is_not_a_fault(client: httpx.AsyncClient) -> None:
    verdict = _verdict(await call(client, verify_body(UNKNOWN_ID, "Nguyễn Văn A", "19900101", "1")))
    assert verdict == {
        "TonTai": "false",
        "KetQuaXacThuc": "false",
        "HoVaTen": "false",
        "NgayThangNamSinh": "false",
        "GioiTinh": "false",
    }


# -- authentication ------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _auth_cases() -> list[Any]:
    stamp = str(int(NOW))
    good = password_for(ENDPOINT, "hub", stamp, "population-secret")
    return [
        pytest.param({}, id="no-headers"),
        pytest.param({"timestamp": stamp}, id="no-authorization"),
        pytest.param({"Authorization": _basic("hub", good)}, id="no-timestamp"),
        pytest.param(
            {"Authorization": _basic("hub", "0" * 64), "timestamp": stamp}, id="wrong-password"
        ),
        pytest.param(
            {
                "Authorization": _basic(
                    "other", password_for(ENDPOINT, "other", stamp, "population-secret")
                ),
                "timestamp": stamp,
            },
            id="wrong-user",
        ),
        pytest.param(
            {"Authorization": _basic("hub", good.upper()), "timestamp": stamp}, id="upper-case-hex"
        ),
        pytest.param({"Authorization": "Bearer x", "timestamp": stamp}, id="not-basic"),
        pytest.param({"Authorization": "Basic !!!", "timestamp": stamp}, id="bad-base64"),
        pytest.param({"Authorization": _basic("hub", good), "timestamp": "soon"}, id="bad-stamp"),
        pytest.param(
            {"Authorization": _basic("hub", good), "timestamp": "9" * 5000}, id="huge-stamp"
        ),
        pytest.param(signed(now=NOW - 301), id="stale"),
        pytest.param(signed(now=NOW + 301), id="from-the-future"),
        pytest.param(signed(url="http://elsewhere/dancu/ws"), id="signed-for-another-url"),
    ]


@pytest.mark.parametrize("headers", _auth_cases())
async def test_auth_failures_are_401_soap_faults(
    client: httpx.AsyncClient, citizen: Citizen, headers: dict[str, str]
) -> None:
    response = await call(client, lookup_body(citizen.personal_id), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    fault = fault_of(response)
    assert (fault["faultcode"], fault["MaLoi"]) == ("soap:Client", "XAC_THUC_THAT_BAI")
    assert citizen.family_name not in response.text


async def test_auth_window_is_300_seconds_either_way(
    client: httpx.AsyncClient, citizen: Citizen
) -> None:
    for now in (NOW - 300, NOW + 299):
        response = await call(client, lookup_body(citizen.personal_id), headers=signed(now=now))
        assert response.status_code == 200


async def test_real_clock_and_custom_credentials(citizen: Citizen) -> None:
    from mocks.population.app import create_app
    from mocks.population.client_auth import PopulationAuth

    app = create_app(user="lgsp", secret="s3cret")
    transport = httpx.ASGITransport(app=app)
    auth = PopulationAuth("lgsp", "s3cret")
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth) as c:
        ok = await c.post("/dancu/ws", content=lookup_body(citizen.personal_id))
        assert ok.status_code == 200
    headers = signed(now=time.time())  # the default credentials are refused now
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        refused = await c.post(
            "/dancu/ws", content=lookup_body(citizen.personal_id), headers=headers
        )
        assert refused.status_code == 401


# -- malformed and hostile requests ---------------------------------------------------------


def _lookup_fields(**changes: str | None) -> dict[str, str | None]:
    fields: dict[str, str | None] = {
        "MaYeuCau": "r",
        "MaDVC": "d",
        "MaTichHop": "t",
        "MaCanBo": "",
        "SoDinhDanh": UNKNOWN_ID,
    }
    return fields | changes


BAD_REQUESTS = {
    "not-xml": b"this is not xml",
    "empty": b"",
    "truncated": lookup_body(UNKNOWN_ID)[:-30],
    "soap-1.2": lookup_body(UNKNOWN_ID).replace(
        b"http://schemas.xmlsoap.org/soap/envelope/", b"http://www.w3.org/2003/05/soap-envelope"
    ),
    "empty-body": b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soap:Body/></soap:Envelope>",
    "unknown-operation": envelope("XoaCongDan", **_lookup_fields()),
    "missing-id": envelope("TraCuuThongTinCongDan", **_lookup_fields(SoDinhDanh=None)),
    "missing-request-id": envelope("TraCuuThongTinCongDan", **_lookup_fields(MaYeuCau="")),
    "short-id": envelope("TraCuuThongTinCongDan", **_lookup_fields(SoDinhDanh="00109900000")),
    "letters-in-id": envelope("TraCuuThongTinCongDan", **_lookup_fields(SoDinhDanh="00109900000X")),
    "long-request-id": envelope("TraCuuThongTinCongDan", **_lookup_fields(MaYeuCau="x" * 65)),
    "unknown-field": envelope("TraCuuThongTinCongDan", **_lookup_fields(), Extra="1"),
    "unqualified-fields": lookup_body(UNKNOWN_ID)
    .replace(b"<dc:So", b"<So")
    .replace(b"</dc:So", b"</So"),
    "bad-date": envelope(
        "XacThucThongTinCongDan", **_lookup_fields(), HoVaTen="A", NgayThangNamSinh="19901332"
    ),
    "bad-gender": envelope(
        "XacThucThongTinCongDan",
        **_lookup_fields(),
        HoVaTen="A",
        NgayThangNamSinh="19900101",
        GioiTinh="3",
    ),
}


@pytest.mark.parametrize("body", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_malformed_requests_are_client_faults(client: httpx.AsyncClient, body: bytes) -> None:
    response = await call(client, body)
    assert response.status_code == 500
    fault = fault_of(response)
    assert (fault["faultcode"], fault["MaLoi"]) == ("soap:Client", "YEU_CAU_KHONG_HOP_LE")
    assert "Traceback" not in response.text


async def test_soap_action_is_checked_when_present(
    client: httpx.AsyncClient, citizen: Citizen
) -> None:
    body = lookup_body(citizen.personal_id)
    right = signed(SOAPAction='"http://dancuquocgia.bca/TraCuuThongTinCongDan"')
    assert (await call(client, body, headers=right)).status_code == 200
    assert (await call(client, body, headers=signed(SOAPAction='""'))).status_code == 200
    wrong = signed(SOAPAction='"http://dancuquocgia.bca/XacThucThongTinCongDan"')
    response = await call(client, body, headers=wrong)
    assert fault_of(response)["MaLoi"] == "YEU_CAU_KHONG_HOP_LE"


XXE_REQUEST = b"""<?xml version="1.0"?>
<!DOCTYPE soap:Envelope [
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:dc="http://dancuquocgia.bca"><soap:Body><dc:TraCuuThongTinCongDan>
  <dc:MaYeuCau>&xxe;&d;</dc:MaYeuCau><dc:MaDVC>x</dc:MaDVC><dc:MaTichHop>x</dc:MaTichHop>
  <dc:SoDinhDanh>001099000001</dc:SoDinhDanh>
</dc:TraCuuThongTinCongDan></soap:Body></soap:Envelope>"""


async def test_xxe_and_entity_bombs_are_refused_unexpanded(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await call(client, XXE_REQUEST)
    assert time.perf_counter() - started < 1
    fault = fault_of(response)
    assert fault["MaLoi"] == "YEU_CAU_KHONG_HOP_LE"
    assert "root:" not in response.text and "aaaaaaaaaa" not in response.text
    assert len(response.content) < 2000


async def test_oversized_request_is_refused(client: httpx.AsyncClient) -> None:
    body = lookup_body(UNKNOWN_ID).replace(b"<soap:Body>", b"<!--" + b" " * 1_100_000 + b"-->")
    response = await call(client, body)
    assert fault_of(response)["MaLoi"] == "YEU_CAU_KHONG_HOP_LE"


async def test_unexpected_errors_become_server_faults_without_traceback(
    app: Any, client: httpx.AsyncClient, citizen: Citizen, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(fields: dict[str, str]) -> bytes:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.population, "lookup", explode)
    response = await call(client, lookup_body(citizen.personal_id))
    assert response.status_code == 500
    fault = fault_of(response)
    assert (fault["faultcode"], fault["MaLoi"]) == ("soap:Server", "LOI_HE_THONG")
    assert "secret internals" not in response.text and "Traceback" not in response.text


# -- WSDL and mock-only endpoints ------------------------------------------------------------


async def test_wsdl_points_at_the_url_the_caller_used(client: httpx.AsyncClient) -> None:
    response = await client.get("/dancu/ws?wsdl")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert 'location="http://population.mock/dancu/ws"' in response.text
    assert "127.0.0.1:8101" not in response.text
    other = await client.get("http://10.0.0.5:9000/dancu/ws?WSDL")
    assert 'location="http://10.0.0.5:9000/dancu/ws"' in other.text
    assert (await client.get("/dancu/ws")).status_code == 400


async def test_records_lists_subjects(client: httpx.AsyncClient, citizens: list[Citizen]) -> None:
    body = (await client.get("/_mock/records")).json()
    assert body["total"] == len(citizens)
    assert len(body["records"]) == 20
    first = body["records"][0]
    assert set(first) == {"personal_id", "full_name", "date_of_birth", "gender"}
    assert first == {
        "personal_id": citizens[0].personal_id,
        "full_name": citizens[0].full_name,
        "date_of_birth": citizens[0].date_of_birth.isoformat(),
        "gender": citizens[0].gender,
    }
    page = (await client.get("/_mock/records", params={"limit": 3, "offset": 5})).json()
    assert [r["personal_id"] for r in page["records"]] == [c.personal_id for c in citizens[5:8]]
    assert len((await client.get("/_mock/records?limit=1000")).json()["records"]) == 1000
    beyond = (await client.get("/_mock/records", params={"offset": len(citizens)})).json()
    assert beyond["records"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=-1", "offset=-1", "limit=x"])
async def test_records_limits_are_bounded(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/_mock/records?{query}")
    assert response.status_code == 400
    assert "error" in response.json()


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/_mock/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_small_citizen_set_can_be_injected(citizens: list[Citizen]) -> None:
    from .conftest import make_app

    app = make_app(citizens=citizens[:3])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        assert (await c.get("/_mock/records")).json()["total"] == 3
        missing = await call(c, lookup_body(citizens[3].personal_id))
        assert fault_of(missing)["MaLoi"] == "KHONG_TIM_THAY"
