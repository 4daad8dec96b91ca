"""The business-registration mock against docs/mock-business-registration.md: the synthetic
register (valid codes, representatives from the population data), the gateway token, the
three DKKD operations and the shared faults."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from stdnum.vn import mst

from hub.identifiers import InvalidIdentifier, parse_enterprise_code
from hub.provinces import PROVINCES
from mocks.business_registration._vocab import VSIC
from mocks.business_registration.app import create_app, lgsp_access_token
from mocks.business_registration.data import (
    AS_OF,
    Enterprise,
    Register,
    build_register,
    load_register,
)
from mocks.data import Citizen, citizen_index, load_citizens
from mocks.data._geography import Geography
from mocks.data.generate import SEED as POPULATION_SEED
from mocks.faults import FaultConfig

BASE_URL = "http://business.mock"
DETAIL = "/apiDKKD/DoanhNghiep/chiTietDoanhNghiep"
SEARCH = "/apiDKKD/DoanhNghiep/timKiem"
BY_REP = "/apiDKKD/DoanhNghiep/theoNguoiDaiDien"
NOW = 1_750_000_000.0
GATEWAY = {"lgspaccesstoken": lgsp_access_token("hub", "business-registration-secret", "A", "P")}


class Clock:
    """The mock's clock in these tests; `advance` moves it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def register() -> Register:
    return load_register()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(clock=clock, token_ttl_s=600, fault_seed=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


async def token(client: httpx.AsyncClient, headers: dict[str, str] = GATEWAY) -> httpx.Response:
    return await client.post(
        "/api/token", data={"grant_type": "client_credentials"}, headers=headers
    )


async def authorized(client: httpx.AsyncClient) -> dict[str, str]:
    response = await token(client)
    assert response.status_code == 200, response.text
    return GATEWAY | {"authorization": f"Bearer {response.json()['access_token']}"}


async def api(
    client: httpx.AsyncClient, path: str, fault: str | None = None, **params: Any
) -> httpx.Response:
    headers = await authorized(client)
    if fault is not None:
        headers["x-mock-fault"] = fault
    return await client.get(path, params=params, headers=headers)


def head_with_branches(register: Register) -> Enterprise:
    return next(e for e in register.enterprises if f"{e.code}-001" in register.by_code)


# -- the synthetic register ----------------------------------------------------------------


def test_register_size_uniqueness_and_determinism(register: Register) -> None:
    assert 2_000 <= len(register.enterprises) <= 3_000
    assert len(register.by_code) == len(register.enterprises)
    assert len({e.name for e in register.enterprises}) == len(register.enterprises)
    again = build_register(load_citizens())
    assert again.enterprises == register.enterprises


def test_every_code_has_a_valid_check_digit(register: Register) -> None:
    for enterprise in register.enterprises:
        parsed = parse_enterprise_code(enterprise.code)
        mst.validate(parsed.head_office)
        assert (parsed.branch is not None) == enterprise.is_branch
        if enterprise.is_branch:
            assert parsed.head_office in register.by_code


def test_a_changed_digit_is_refused_by_the_hub(register: Register) -> None:
    code = register.enterprises[0].code
    wrong = code[:9] + str((int(code[9]) + 1) % 10)
    with pytest.raises(InvalidIdentifier, match="check digit"):
        parse_enterprise_code(wrong)


def test_representatives_are_adult_citizens_of_the_population_data(register: Register) -> None:
    citizens = citizen_index()
    for enterprise in register.enterprises:
        assert enterprise.representatives
        for rep in enterprise.representatives:
            citizen = citizens[rep.personal_id]
            assert rep.full_name == citizen.full_name
            assert rep.date_of_birth == citizen.date_of_birth
            assert _age(citizen, AS_OF) >= 18
            assert _age(citizen, enterprise.registered_on) >= 18
            assert rep.position


def _age(citizen: Citizen, on: dt.date) -> int:
    born = citizen.date_of_birth
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def test_most_citizens_represent_nothing_some_several(register: Register) -> None:
    counts = {pid: len(found) for pid, found in register.by_representative.items()}
    assert len(counts) < len(load_citizens()) / 3
    assert sum(1 for n in counts.values() if n >= 2) >= 50
    private_owners = collections.Counter(
        e.representatives[0].personal_id for e in register.enterprises if e.legal_form == "private"
    )
    assert max(private_owners.values()) == 1  # one private enterprise per person


def test_statuses_lines_capital_and_addresses(register: Register) -> None:
    statuses = collections.Counter(e.status for e in register.enterprises)
    assert statuses["active"] > 0.6 * len(register.enterprises)
    assert set(statuses) == {
        "active",
        "suspended",
        "dissolving",
        "dissolved",
        "bankrupt",
        "revoked",
    }
    wards = {
        (w.province_code, w.district_code, w.code)
        for wards in Geography(random.Random(POPULATION_SEED)).wards.values()
        for w in wards
    }
    for e in register.enterprises:
        assert sum(line.main for line in e.business_lines) == 1
        assert all(VSIC[line.code] == line.name for line in e.business_lines)
        office = e.head_office
        assert office.province_code in PROVINCES and office.detail
        assert (office.province_code, office.district_code, office.ward_code) in wards
        if e.is_branch or e.legal_form == "private":
            assert e.charter_capital_vnd is None
        else:
            assert isinstance(e.charter_capital_vnd, int)
            assert 100_000_000 <= e.charter_capital_vnd <= 10**13
        assert dt.date(1995, 1, 1) <= e.registered_on < AS_OF
    forms = collections.Counter(e.name.split(" ")[0] for e in register.enterprises)
    assert set(forms) == {"CÔNG", "DOANH", "CHI"}


def test_branches_have_their_own_seat_and_the_parents_representatives(
    register: Register,
) -> None:
    head = head_with_branches(register)
    branch = register.by_code[f"{head.code}-001"]
    assert branch.name.startswith(f"CHI NHÁNH {head.name} TẠI ")
    assert branch.head_office.province_code != head.head_office.province_code
    assert branch.representatives == head.representatives
    assert branch.registered_on > head.registered_on


# -- gateway token -------------------------------------------------------------------------


async def test_token_then_call(client: httpx.AsyncClient, register: Register) -> None:
    response = await token(client)
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["access_token"]
    code = register.enterprises[0].code
    assert (await api(client, DETAIL, msdn=code)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        lgsp_access_token("hub", "wrong", "A", "P"),
        lgsp_access_token("other", "business-registration-secret", "A", "P"),
        lgsp_access_token("hub", "business-registration-secret", "", "P"),
        "not base64!",
        "W10=",  # base64 of []
        "",
    ],
)
async def test_token_refused_for_bad_gateway_credentials(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await token(client, {"lgspaccesstoken": header})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_token_needs_the_client_credentials_grant(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/token", data={"grant_type": "password"}, headers=GATEWAY)
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


async def test_api_needs_both_headers(client: httpx.AsyncClient, register: Register) -> None:
    headers = await authorized(client)
    params = {"msdn": register.enterprises[0].code}
    no_gateway = {"authorization": headers["authorization"]}
    for sent in (GATEWAY, no_gateway):
        response = await client.get(DETAIL, params=params, headers=sent)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_forged_and_expired_tokens_are_refused(
    client: httpx.AsyncClient, clock: Clock, register: Register
) -> None:
    headers = await authorized(client)
    params = {"msdn": register.enterprises[0].code}
    expiry, nonce, signature = headers["authorization"].removeprefix("Bearer ").split(".", 2)
    forged = f"Bearer {float(expiry) + 10_000:.3f}.{nonce}.{signature}"
    response = await client.get(DETAIL, params=params, headers=headers | {"authorization": forged})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
    clock.now += 599
    assert (await client.get(DETAIL, params=params, headers=headers)).status_code == 200
    clock.now += 1
    response = await client.get(DETAIL, params=params, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
    fresh = await authorized(client)
    assert (await client.get(DETAIL, params=params, headers=fresh)).status_code == 200


# -- chiTietDoanhNghiep --------------------------------------------------------------------


async def test_detail_of_an_enterprise(client: httpx.AsyncClient, register: Register) -> None:
    enterprise = next(e for e in register.enterprises if e.name_en and len(e.representatives) == 2)
    response = await api(client, DETAIL, msdn=enterprise.code)
    assert response.headers["content-type"].startswith("application/json")
    (cert,) = response.json()["GetEntCert"]
    assert cert["MaSoDoanhNghiep"] == enterprise.code
    assert cert["TenTiengViet"] == enterprise.name
    assert cert["TenNuocNgoai"] == enterprise.name_en
    assert cert["NgayDangKyLanDau"] == enterprise.registered_on.strftime("%Y%m%d")
    assert cert["TinhTrangPhapLy"][0].keys() == {"MaTinhTrang", "TenTinhTrang"}
    assert cert["VonDieuLe"] == enterprise.charter_capital_vnd
    citizens = citizen_index()
    for rep in cert["DaiDienPhapLuat"]:
        citizen = citizens[rep["SoGiayTo"]]
        assert rep["HoTen"] == citizen.full_name
        assert rep["NgaySinh"] == citizen.date_of_birth.strftime("%Y%m%d")
        assert rep["ChucDanh"]
    (seat,) = cert["DiaChiTruSo"]
    assert seat["MaTinh"] == enterprise.head_office.province_code
    assert seat["MaXa"] == enterprise.head_office.ward_code
    lines = cert["NganhNgheKinhDoanh"]
    assert [line["MaNganh"] for line in lines] == [b.code for b in enterprise.business_lines]
    assert sum(line["LaNganhChinh"] is True for line in lines) == 1


async def test_detail_of_a_branch(client: httpx.AsyncClient, register: Register) -> None:
    code = f"{head_with_branches(register).code}-001"
    (cert,) = (await api(client, DETAIL, msdn=code)).json()["GetEntCert"]
    assert cert["MaSoDoanhNghiep"] == code
    assert cert["TenTiengViet"].startswith("CHI NHÁNH ")
    assert cert["VonDieuLe"] is None and cert["TenNuocNgoai"] == ""


async def test_unknown_code_is_an_empty_list(client: httpx.AsyncClient, register: Register) -> None:
    head = register.enterprises[0].code
    for code in (f"{head}-999", "0100000000"[:9] + "9"):
        response = await api(client, DETAIL, msdn=code)
        assert (response.status_code, response.json()) == (200, {"GetEntCert": []})


@pytest.mark.parametrize("msdn", ["", "123", "01001091061", "0100109106-1", "０１００１０９１０６"])
async def test_malformed_code_is_a_400(client: httpx.AsyncClient, msdn: str) -> None:
    response = await api(client, DETAIL, msdn=msdn)
    assert response.status_code == 400
    assert response.json()["MaLoi"] == "01"


# -- timKiem -------------------------------------------------------------------------------


async def test_search_pages_through_every_match(client: httpx.AsyncClient) -> None:
    first = (await api(client, SEARCH, ten="thương mại", trang=1, soBanGhi=100)).json()
    total = first["TongSoBanGhi"]
    assert total > 200 and (first["Trang"], first["SoBanGhi"]) == (1, 100)
    codes: list[str] = []
    for page in range(1, total // 100 + 2):
        body = (await api(client, SEARCH, ten="thương mại", trang=page, soBanGhi=100)).json()
        assert body["TongSoBanGhi"] == total
        codes += [item["MaSoDoanhNghiep"] for item in body["DanhSachDoanhNghiep"]]
    assert len(codes) == len(set(codes)) == total
    beyond = await api(client, SEARCH, ten="thương mại", trang=total // 100 + 2, soBanGhi=100)
    assert beyond.json()["DanhSachDoanhNghiep"] == []


async def test_search_is_accent_and_case_insensitive_from_any_word(
    client: httpx.AsyncClient, register: Register
) -> None:
    enterprise = next(
        e
        for e in register.enterprises
        if e.name.startswith("CÔNG TY TNHH XÂY DỰNG ") and len(e.name.split(" ")) == 7
    )
    distinct = enterprise.name.split(" ")[-2:]  # "CÔNG TY TNHH XÂY DỰNG <trade name>"
    spelled = [
        " ".join(distinct).lower(),
        _strip_accents(" ".join(distinct)),
        "CÔNG TY TNHH " + " ".join(distinct),  # a leading legal form is ignored
        "xay dung " + distinct[0].lower(),
    ]
    for query in spelled:
        body = (await api(client, SEARCH, ten=query, soBanGhi=100)).json()
        found = [item["MaSoDoanhNghiep"] for item in body["DanhSachDoanhNghiep"]]
        assert enterprise.code in found, query
    item = next(
        i
        for i in (await api(client, SEARCH, ten=" ".join(distinct), soBanGhi=100)).json()[
            "DanhSachDoanhNghiep"
        ]
        if i["MaSoDoanhNghiep"] == enterprise.code
    )
    assert item["TenTiengViet"] == enterprise.name
    assert item["DiaChiTruSo"][0]["MaTinh"] == enterprise.head_office.province_code


def _strip_accents(text: str) -> str:
    from mocks.business_registration.data import ascii_upper

    return ascii_upper(text)


async def test_search_matches_word_starts_only(client: httpx.AsyncClient) -> None:
    every = (await api(client, SEARCH, ten="hoang", soBanGhi=100)).json()
    assert every["TongSoBanGhi"] > 0
    for item in every["DanhSachDoanhNghiep"]:
        assert "HOÀNG" in item["TenTiengViet"]
    inside = (await api(client, SEARCH, ten="oang")).json()
    assert inside["TongSoBanGhi"] == 0 and inside["DanhSachDoanhNghiep"] == []
    assert (await api(client, SEARCH, ten="công ty tnhh")).json()["TongSoBanGhi"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"ten": "a"},
        {"ten": "x" * 101},
        {"ten": "an", "trang": 0},
        {"ten": "an", "soBanGhi": 101},
        {"ten": "an", "soBanGhi": "ten"},
    ],
)
async def test_bad_search_parameters_are_a_400(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await api(client, SEARCH, **params)
    assert (response.status_code, response.json()["MaLoi"]) == (400, "01")


# -- theoNguoiDaiDien ----------------------------------------------------------------------


async def test_by_representative_lists_every_head_office(
    client: httpx.AsyncClient, register: Register
) -> None:
    records = (await client.get("/_mock/records", params={"limit": 5})).json()
    person = records["representatives_of_several"][0]
    body = (await api(client, BY_REP, soGiayTo=person)).json()
    codes = {item["MaSoDoanhNghiep"] for item in body["DanhSachDoanhNghiep"]}
    expected = {
        e.code
        for e in register.enterprises
        if not e.is_branch and person in {r.personal_id for r in e.representatives}
    }
    assert body["TongSoBanGhi"] == len(codes) >= 2 and codes == expected


async def test_by_representative_of_nobody_and_bad_ids(
    client: httpx.AsyncClient, register: Register
) -> None:
    nobody = next(c for c in load_citizens() if c.personal_id not in register.by_representative)
    body = (await api(client, BY_REP, soGiayTo=nobody.personal_id)).json()
    assert body == {"TongSoBanGhi": 0, "DanhSachDoanhNghiep": []}
    for bad in ("", "12345", "00108501234x"):
        assert (await api(client, BY_REP, soGiayTo=bad)).status_code == 400


# -- mock-only endpoints and faults -------------------------------------------------------


async def test_records_and_health(client: httpx.AsyncClient, register: Register) -> None:
    body = (await client.get("/_mock/records", params={"limit": 3, "offset": 1})).json()
    assert body["total"] == len(register.enterprises)
    assert [r["enterprise_code"] for r in body["records"]] == [
        e.code for e in register.enterprises[1:4]
    ]
    assert body["records"][0].keys() == {
        "enterprise_code",
        "name",
        "status",
        "branch",
        "representatives",
    }
    assert all(len(register.by_representative[p]) >= 2 for p in body["representatives_of_several"])
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        assert (await client.get("/_mock/records", params=bad)).status_code == 400
    assert (await client.get("/_mock/health")).json() == {"status": "ok"}


async def test_error_fault_is_dkkd_s_own_error(
    client: httpx.AsyncClient, register: Register
) -> None:
    response = await api(client, DETAIL, fault="error", msdn=register.enterprises[0].code)
    assert (response.status_code, response.json()["MaLoi"]) == (500, "99")
    response = await api(client, DETAIL, fault="soap-fault", msdn=register.enterprises[0].code)
    assert response.status_code == 500


async def test_http_503_malformed_and_oversized(
    client: httpx.AsyncClient, register: Register
) -> None:
    code = register.enterprises[0].code
    response = await api(client, DETAIL, fault="http-503", msdn=code)
    assert (response.status_code, response.content) == (503, b"")
    response = await api(client, DETAIL, fault="malformed", msdn=code)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)
    response = await api(client, DETAIL, fault="oversized", msdn=code)
    assert response.status_code == 200 and len(response.content) > 5 * 1024 * 1024
    assert response.json()["GetEntCert"][0]["MaSoDoanhNghiep"] == code


async def test_timeout_holds_the_request(client: httpx.AsyncClient, register: Register) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            api(client, DETAIL, fault="timeout", msdn=register.enterprises[0].code), 0.3
        )


async def test_faults_apply_to_the_token_endpoint_and_before_auth(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/token", data={"grant_type": "client_credentials"}, headers={"x-mock-fault": "error"}
    )
    assert response.status_code == 500
    response = await client.get(DETAIL, params={"msdn": "x"}, headers={"x-mock-fault": "http-503"})
    assert response.status_code == 503
    response = await client.get(DETAIL, headers={"x-mock-fault": "meltdown"})
    assert response.status_code == 400 and "unknown fault kind" in response.json()["error"]


async def test_runtime_faults_put_and_delete(client: httpx.AsyncClient, register: Register) -> None:
    code = register.enterprises[0].code
    headers = await authorized(client)
    put = await client.put("/_mock/faults", json={"fault": "http-503"})
    assert put.json()["http_503"] is True
    assert (await client.get(DETAIL, params={"msdn": code}, headers=headers)).status_code == 503
    deleted = await client.delete("/_mock/faults")
    assert deleted.json() == FaultConfig().model_dump()
    assert (await client.get(DETAIL, params={"msdn": code}, headers=headers)).status_code == 200


async def test_startup_faults_and_seeded_error_rate(register: Register) -> None:
    app = create_app(faults=FaultConfig(error_rate=0.5), fault_seed=11)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        statuses = [(await token(c)).status_code for _ in range(40)]
    assert set(statuses) == {200, 500}
