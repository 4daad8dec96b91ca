"""The population adapter against exact upstream answers (respx): SOAP faults, off-contract
and hostile XML, refusals. Timeouts, 5xx and a cut answer, for every operation, are the
conformance battery's (tests/test_conformance.py)."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
import respx
from lxml import etree

from tests.conftest import running_hub
from tests.test_pipeline import assert_problem

PID = "001085012345"
BASE = "http://population.upstream"
ENDPOINT = f"{BASE}/dancu/ws"
R = "http://www.mic.gov.vn/dancu/1.0"


def envelope(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    )


def citizen_xml(**override: str) -> str:
    values = {
        "GioiTinh": "1",
        "NgayThangNam": "19850304",
        "TinhTrangHonNhan": "2",
        "QuanHe": "CH01",
    } | override
    return envelope(
        f'<TraCuuThongTinCongDanResponse xmlns="{R}"><MaYeuCau>x</MaYeuCau><CongdanCollection><CongDan>'
        f"<SoDinhDanh>{PID}</SoDinhDanh><SoCMND>012345678</SoCMND>"
        "<HoVaTen><Ho>Nguyễn</Ho><ChuDem>Văn</ChuDem><Ten>An</Ten></HoVaTen>"
        f"<GioiTinh>{values['GioiTinh']}</GioiTinh><DanToc>01</DanToc><TonGiao>00</TonGiao><QuocTich>VN</QuocTich>"
        f"<TinhTrangHonNhan>{values['TinhTrangHonNhan']}</TinhTrangHonNhan><NhomMau>2</NhomMau>"
        f"<NgayThangNamSinh><NgayThangNam>{values['NgayThangNam']}</NgayThangNam><Nam>1985</Nam></NgayThangNamSinh>"
        "<ThuongTru><MaTinhThanh>001</MaTinhThanh><MaQuanHuyen>005</MaQuanHuyen><MaPhuongXa>00160</MaPhuongXa>"
        "<ChiTiet>Số 12, phố Huế</ChiTiet><QuocGia>VN</QuocGia></ThuongTru>"
        "<VoChong><HoVaTen>Trần Thị Bình</HoVaTen><SoDinhDanh>001186000002</SoDinhDanh><QuocTich>VN</QuocTich></VoChong>"
        f"<ChuHo><HoVaTen>Nguyễn Văn An</HoVaTen><SoDinhDanh>{PID}</SoDinhDanh><QuanHe>{values['QuanHe']}</QuanHe></ChuHo>"
        "<SoSoHoKhau>HK0001</SoSoHoKhau>"
        "</CongDan></CongdanCollection></TraCuuThongTinCongDanResponse>"
    )


def fault_xml(code: str, text: str, faultcode: str = "soap:Client") -> str:
    return envelope(
        f"<soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{text}</faultstring>"
        f'<detail><Loi xmlns="{R}"><MaLoi>{code}</MaLoi><MoTa>{text}</MoTa></Loi></detail></soap:Fault>'
    )


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
async def hub(settings, upstream):
    from adapters.population import PopulationAdapter

    settings.adapters = {"population": {"base_url": BASE, "secret": "s3cret", "user": "lgsp"}}
    transports = {"population": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(
        settings, adapters=[PopulationAdapter], transports=transports
    ) as running:
        running.key = running.client()
        yield running


async def lookup(hub, pid=PID, **headers):
    return await hub.http.get(f"/v1/citizens/{pid}", headers=hub.headers(hub.key, **headers))


async def test_maps_the_soap_record_to_the_canonical_citizen(hub, upstream):
    upstream.post(ENDPOINT).respond(200, text=citizen_xml())
    response = await lookup(hub)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["full_name"] == "Nguyễn Văn An"
    assert (data["family_name"], data["middle_name"], data["given_name"]) == ("Nguyễn", "Văn", "An")
    assert data["gender"] == "male" and data["date_of_birth"] == "1985-03-04"
    assert data["marital_status"] == "married" and data["blood_type"] == "A"
    assert data["permanent_address"] == {
        "province_code": "001",
        "province_name": "Hà Nội",
        "district_code": "005",
        "ward_code": "00160",
        "detail": "Số 12, phố Huế",
        "country": "VN",
    }
    assert data["spouse"]["personal_id"] == "001186000002" and data["father"] is None
    assert data["household"] == {
        "book_number": "HK0001",
        "relation_to_head": "head",
        "head": {"personal_id": PID, "full_name": "Nguyễn Văn An", "nationality": None},
    }


async def test_sends_the_upstream_auth_and_request_identifiers(hub, upstream):
    route = upstream.post(ENDPOINT).respond(200, text=citizen_xml())
    await lookup(hub, **{"x-request-id": "req-42", "x-officer-id": "CB-7"})
    request = route.calls.last.request
    timestamp = request.headers["timestamp"]
    user, password = (
        base64.b64decode(request.headers["authorization"].split()[1]).decode().split(":")
    )
    assert user == "lgsp"
    assert password == hashlib.sha256(f"{ENDPOINT}lgsp{timestamp}s3cret".encode()).hexdigest()
    assert request.headers["soapaction"] == '"http://dancuquocgia.bca/TraCuuThongTinCongDan"'
    body = etree.fromstring(request.content)
    ns = {"dc": "http://dancuquocgia.bca"}
    assert body.findtext(".//dc:MaYeuCau", namespaces=ns) == "req-42"
    assert body.findtext(".//dc:MaCanBo", namespaces=ns) == "CB-7"
    assert body.findtext(".//dc:SoDinhDanh", namespaces=ns) == PID


async def test_not_found_fault_is_404_without_upstream_text(hub, upstream):
    route = upstream.post(ENDPOINT).respond(
        500, text=fault_xml("KHONG_TIM_THAY", f"Khong tim thay cong dan {PID}")
    )
    response = await lookup(hub)
    assert_problem(response, 404, "NOT_FOUND")
    assert PID not in response.text and "Khong tim thay" not in response.text
    assert route.call_count == 1


async def test_empty_collection_is_404(hub, upstream):
    upstream.post(ENDPOINT).respond(
        200,
        text=envelope(
            f'<TraCuuThongTinCongDanResponse xmlns="{R}"><CongdanCollection/></TraCuuThongTinCongDanResponse>'
        ),
    )
    assert_problem(await lookup(hub), 404, "NOT_FOUND")


async def test_server_fault_is_retried_then_502(hub, upstream):
    route = upstream.post(ENDPOINT).respond(
        500, text=fault_xml("LOI_HE_THONG", "Loi he thong", "soap:Server")
    )
    assert_problem(await lookup(hub), 502, "UPSTREAM_ERROR")
    assert route.call_count == hub.settings.retry_attempts


async def test_a_transient_fault_then_success(hub, upstream):
    route = upstream.post(ENDPOINT).mock(
        side_effect=[
            httpx.Response(500, text=fault_xml("LOI_HE_THONG", "x", "soap:Server")),
            httpx.Response(200, text=citizen_xml()),
        ]
    )
    assert (await lookup(hub)).status_code == 200
    assert route.call_count == 2


@pytest.mark.parametrize("change", [{"GioiTinh": "7"}, {"NgayThangNam": "1985-03-04"}])
async def test_off_contract_values_are_502(hub, upstream, change):
    upstream.post(ENDPOINT).respond(200, text=citizen_xml(**change))
    response = await lookup(hub)
    assert_problem(response, 502, "UPSTREAM_BAD_RESPONSE")
    assert "1985-03-04" not in response.text


async def test_entity_expansion_and_xxe_are_refused(hub, upstream):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
        '<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<TraCuuThongTinCongDanResponse xmlns="{R}"><CongdanCollection><CongDan>'
        "<SoDinhDanh>&xxe;&lol3;</SoDinhDanh></CongDan></CongdanCollection>"
        "</TraCuuThongTinCongDanResponse></soap:Body></soap:Envelope>"
    )
    upstream.post(ENDPOINT).respond(200, text=bomb)
    response = await lookup(hub)
    assert_problem(response, 502, "UPSTREAM_BAD_RESPONSE")
    assert "root:" not in response.text and "lollol" not in response.text


async def test_upstream_refusing_our_credentials_is_502_rejected(hub, upstream):
    route = upstream.post(ENDPOINT).respond(
        401, text=fault_xml("XAC_THUC_THAT_BAI", "Sai mat khau")
    )
    assert_problem(await lookup(hub), 502, "UPSTREAM_REJECTED")
    assert route.call_count == 1


async def test_oversized_answer_is_refused(hub, upstream):
    upstream.post(ENDPOINT).respond(
        200,
        text=citizen_xml().replace("<SoSoHoKhau>", "<X>" + "a" * 3_000_000 + "</X><SoSoHoKhau>"),
    )
    assert_problem(await lookup(hub), 502, "UPSTREAM_BAD_RESPONSE")


async def test_verify_maps_field_results(hub, upstream):
    route = upstream.post(ENDPOINT).respond(
        200,
        text=envelope(
            f'<XacThucThongTinCongDanResponse xmlns="{R}"><MaYeuCau>x</MaYeuCau><TonTai>true</TonTai>'
            "<KetQuaXacThuc>false</KetQuaXacThuc><ChiTietXacThuc><HoVaTen>true</HoVaTen>"
            "<NgayThangNamSinh>false</NgayThangNamSinh></ChiTietXacThuc></XacThucThongTinCongDanResponse>"
        ),
    )
    response = await hub.http.post(
        "/v1/citizens/verify",
        json={"personal_id": PID, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-05"},
        # field by field only where granted (a default client sees the verdict alone)
        headers=hub.headers(hub.client(fields={"population": ["match", "found", "fields"]})),
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "match": False,
        "found": True,
        "fields": {"full_name": True, "date_of_birth": False, "gender": None},
    }
    sent = etree.fromstring(route.calls.last.request.content)
    ns = {"dc": "http://dancuquocgia.bca"}
    assert sent.findtext(".//dc:NgayThangNamSinh", namespaces=ns) == "19850305"
    assert sent.find(".//dc:GioiTinh", namespaces=ns) is None
