"""The business-registration adapter: end to end through the hub against the in-process mock,
and against exact upstream answers (respx) for the token's life and the failure modes."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from adapters.business_registration import BusinessRegistrationAdapter
from hub.provinces import PROVINCES
from mocks.business_registration.app import create_app as create_mock
from mocks.business_registration.data import Enterprise, Register, load_register
from mocks.data import load_citizens
from tests.conftest import RunningHub, running_hub
from tests.test_pipeline import assert_problem

SERVICE = "/v1/services/business-registration"
BASE = "http://business.upstream"
TOKEN_URL = f"{BASE}/api/token"
DETAIL_URL = f"{BASE}/apiDKKD/DoanhNghiep/chiTietDoanhNghiep"
CODE = "0100109106"  # a valid check digit
BAD_CHECK = "0100109107"


@pytest.fixture(scope="module")
def register() -> Register:
    return load_register()


# -- end to end against the mock -----------------------------------------------------------


@pytest.fixture
async def hub(settings: Any) -> AsyncIterator[RunningHub]:
    settings.adapters = {"business-registration": {"base_url": "http://business.mock"}}
    transports = {"business-registration": httpx.ASGITransport(app=create_mock())}
    async with running_hub(
        settings, adapters=[BusinessRegistrationAdapter], transports=transports
    ) as running:
        running.key = running.client()  # type: ignore[attr-defined]
        yield running


async def call(hub: RunningHub, operation: str, body: dict[str, Any], **headers: Any):
    return await hub.http.post(
        f"{SERVICE}/{operation}",
        json=body,
        headers=hub.headers(hub.key, **headers),  # type: ignore[attr-defined]
    )


def _with_everything(register: Register) -> Enterprise:
    return next(
        e
        for e in register.enterprises
        if e.name_en and e.short_name and len(e.representatives) == 2 and e.status != "active"
    )


async def test_lookup_maps_the_record_to_the_canonical_enterprise(hub, register):
    enterprise = _with_everything(register)
    response = await call(hub, "lookup", {"enterprise_code": enterprise.code})
    assert response.status_code == 200, response.text
    body = response.json()
    data = body["data"]
    assert body["meta"]["service"] == "business-registration"
    assert body["meta"]["operation"] == "lookup"
    assert data["enterprise_code"] == enterprise.code
    assert (data["name"], data["name_en"], data["short_name"]) == (
        enterprise.name,
        enterprise.name_en,
        enterprise.short_name,
    )
    assert data["status"] == enterprise.status
    assert data["registered_on"] == enterprise.registered_on.isoformat()
    assert data["charter_capital_vnd"] == enterprise.charter_capital_vnd
    assert data["legal_representatives"] == [
        {"personal_id": r.personal_id, "full_name": r.full_name, "position": r.position}
        for r in enterprise.representatives
    ]
    office = enterprise.head_office
    assert data["head_office"] == {
        "province_code": office.province_code,
        "province_name": PROVINCES[office.province_code],
        "district_code": office.district_code,
        "ward_code": office.ward_code,
        "detail": office.detail,
        "country": "VN",
    }
    assert data["business_lines"] == [
        {"code": b.code, "name": b.name, "main": b.main} for b in enterprise.business_lines
    ]


async def test_resource_route_and_branch_record(hub, register):
    branch = next(e for e in register.enterprises if e.is_branch)
    headers = hub.headers(hub.key)
    response = await hub.http.get(f"/v1/enterprises/{branch.code}", headers=headers)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["enterprise_code"] == branch.code and data["name"].startswith("CHI NHÁNH")
    assert data["name_en"] is None and data["charter_capital_vnd"] is None
    generic = await call(hub, "lookup", {"enterprise_code": branch.code})
    assert generic.json()["data"] == data


async def test_unknown_enterprise_is_404_and_audited(hub, register):
    unknown = f"{register.enterprises[0].code}-999"
    assert_problem(await call(hub, "lookup", {"enterprise_code": unknown}), 404, "NOT_FOUND")
    row = hub.audit_rows()[-1]
    assert (row["service"], row["operation"], row["code"]) == (
        "business-registration",
        "lookup",
        "NOT_FOUND",
    )


async def test_lookup_needs_a_purpose_search_does_not(hub, register):
    code = register.enterprises[0].code
    response = await call(hub, "lookup", {"enterprise_code": code}, purpose=None)
    assert_problem(response, 400, "PURPOSE_REQUIRED")
    response = await call(hub, "search", {"name_prefix": "thương mại"}, purpose=None)
    assert response.status_code == 200, response.text


async def test_search_pages(hub):
    first = await call(hub, "search", {"name_prefix": "Thuong Mai", "page_size": 7})
    assert first.status_code == 200, first.text
    page1 = first.json()["data"]
    assert (page1["page"], page1["page_size"]) == (1, 7) and page1["total"] > 7
    assert len(page1["items"]) == 7
    item = page1["items"][0]
    assert set(item) == {
        "enterprise_code",
        "name",
        "status",
        "registered_on",
        "head_office_province_code",
    }
    assert "THƯƠNG MẠI" in item["name"] and item["head_office_province_code"] in PROVINCES
    response = await hub.http.get(
        "/v1/enterprises",
        params={"name": "thương mại", "page": 2, "page_size": 7},
        headers=hub.headers(hub.key),
    )
    page2 = response.json()["data"]
    assert page2["page"] == 2 and page2["total"] == page1["total"]
    assert not {i["enterprise_code"] for i in page1["items"]} & {
        i["enterprise_code"] for i in page2["items"]
    }


@pytest.mark.parametrize(
    "body",
    [
        {"name_prefix": "a"},
        {"name_prefix": " a "},
        {"name_prefix": "x" * 101},
        {"name_prefix": "an", "page": 0},
        {"name_prefix": "an", "page_size": 101},
    ],
)
async def test_search_input_is_checked_before_upstream(hub, body):
    assert_problem(await call(hub, "search", body), 422, "VALIDATION_ERROR")


async def test_by_representative(hub, register):
    person, found = next(
        (pid, heads) for pid, heads in register.by_representative.items() if len(heads) >= 2
    )
    response = await call(hub, "by-representative", {"personal_id": person})
    assert response.status_code == 200, response.text
    items = response.json()["data"]["items"]
    assert [i["enterprise_code"] for i in items] == [e.code for e in found]
    assert hub.audit_rows()[-1]["subject_id"] == person


async def test_by_representative_of_nobody_is_an_empty_list(hub, register):
    nobody = next(c for c in load_citizens() if c.personal_id not in register.by_representative)
    response = await call(hub, "by-representative", {"personal_id": nobody.personal_id})
    assert response.status_code == 200 and response.json()["data"] == {"items": []}
    response = await call(hub, "by-representative", {"personal_id": "000085012345"})
    assert_problem(response, 400, "INVALID_PERSONAL_ID")


async def test_citizen_profile_lists_the_enterprises(hub, register):
    person, found = next(iter(register.by_representative.items()))
    response = await hub.http.get(f"/v1/citizens/{person}/profile", headers=hub.headers(hub.key))
    assert response.status_code == 200, response.text
    section = response.json()["data"]["enterprises"]
    assert section["status"] == "ok"
    assert [i["enterprise_code"] for i in section["data"]["items"]] == [e.code for e in found]


async def test_health_fetches_a_token(hub):
    health = await hub.hub.registry.get("business-registration").instance.health()
    assert health.ok and health.detail == "token issued"


# -- exact upstream answers (respx) --------------------------------------------------------


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
async def rhub(settings, upstream) -> AsyncIterator[RunningHub]:
    settings.adapters = {
        "business-registration": {
            "base_url": BASE,
            "access_key": "ak",
            "secret_key": "sk",
            "app_name": "HUB",
            "partner_code": "P01",
        }
    }
    transports = {"business-registration": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(
        settings, adapters=[BusinessRegistrationAdapter], transports=transports
    ) as running:
        running.key = running.client()  # type: ignore[attr-defined]
        yield running


def certificate(**override: Any) -> dict[str, Any]:
    record = {
        "MaSoDoanhNghiep": CODE,
        "TenTiengViet": "CÔNG TY CỔ PHẦN THƯƠNG MẠI AN PHÁT",
        "TenNuocNgoai": "",
        "TenVietTat": "",
        "NgayDangKyLanDau": "20100315",
        "TinhTrangPhapLy": [{"MaTinhTrang": "02", "TenTinhTrang": "Tạm ngừng kinh doanh"}],
        "DaiDienPhapLuat": [
            {
                "HoTen": "Nguyễn Văn An",
                "SoGiayTo": "001085012345",
                "ChucDanh": "Tổng giám đốc",
                "NgaySinh": "19850304",
            }
        ],
        "DiaChiTruSo": [
            {"MaTinh": "001", "MaHuyen": "005", "MaXa": "00160", "DiaChiChiTiet": "Số 1"}
        ],
        "NganhNgheKinhDoanh": [
            {"MaNganh": "4669", "TenNganh": "Bán buôn chuyên doanh khác", "LaNganhChinh": True}
        ],
        "VonDieuLe": 5_000_000_000,
    } | override
    return {"GetEntCert": [record]}


def tokens(*values: str, expires_in: Any = 3600):
    """A token endpoint answering each value in turn."""
    return [
        httpx.Response(
            200, json={"access_token": v, "token_type": "Bearer", "expires_in": expires_in}
        )
        for v in values
    ]


async def lookup(hub: RunningHub, code: str = CODE) -> httpx.Response:
    return await call(hub, "lookup", {"enterprise_code": code})


async def test_bad_check_digit_is_400_before_any_upstream_call(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("t1"))
    detail = upstream.get(DETAIL_URL).respond(200, json=certificate())
    for code in (BAD_CHECK, f"{BAD_CHECK}-001", "010010910", f"{CODE}-000"):
        assert_problem(await lookup(rhub, code), 400, "INVALID_ENTERPRISE_CODE")
    response = await rhub.http.get(f"/v1/enterprises/{BAD_CHECK}", headers=rhub.headers(rhub.key))
    assert_problem(response, 400, "INVALID_ENTERPRISE_CODE")
    assert not token_route.called and not detail.called


async def test_sends_the_gateway_credential_and_the_token(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("t1"))
    detail = upstream.get(DETAIL_URL).respond(200, json=certificate())
    response = await lookup(rhub)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "suspended" and data["name_en"] is None
    assert data["business_lines"] == [
        {"code": "4669", "name": "Bán buôn chuyên doanh khác", "main": True}
    ]
    sent_token = token_route.calls.last.request
    assert parse_qs(sent_token.content.decode()) == {"grant_type": ["client_credentials"]}
    assert json.loads(base64.b64decode(sent_token.headers["lgspaccesstoken"])) == {
        "AccessKey": "ak",
        "SecretKey": "sk",
        "AppName": "HUB",
        "PartnerCode": "P01",
    }
    sent = detail.calls.last.request
    assert sent.headers["authorization"] == "Bearer t1"
    assert sent.headers["lgspaccesstoken"] == sent_token.headers["lgspaccesstoken"]
    assert sent.url.params["msdn"] == CODE


async def test_token_is_reused_until_it_is_due(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("t1", "t2"))
    upstream.get(DETAIL_URL).respond(200, json=certificate())
    for _ in range(3):
        assert (await lookup(rhub)).status_code == 200
    assert token_route.call_count == 1


async def test_short_lived_token_is_fetched_again(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("t1", "t2", expires_in=0))
    detail = upstream.get(DETAIL_URL).respond(200, json=certificate())
    for _ in range(2):
        assert (await lookup(rhub)).status_code == 200
    assert token_route.call_count == 2
    assert [c.request.headers["authorization"] for c in detail.calls] == [
        "Bearer t1",
        "Bearer t2",
    ]


async def test_expired_token_is_renewed_and_the_call_sent_once_more(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("old", "new"))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json=certificate())

    detail = upstream.get(DETAIL_URL).mock(side_effect=answer)
    assert (await lookup(rhub)).status_code == 200
    assert (token_route.call_count, detail.call_count) == (2, 2)
    assert (await lookup(rhub)).status_code == 200  # the new token is kept
    assert (token_route.call_count, detail.call_count) == (2, 3)


async def test_token_refused_after_renewal_is_502_rejected(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("a", "b", "c"))
    detail = upstream.get(DETAIL_URL).respond(401, json={"error": "invalid_token"})
    assert_problem(await lookup(rhub), 502, "UPSTREAM_REJECTED")
    assert (token_route.call_count, detail.call_count) == (2, 2)


async def test_gateway_refusing_our_credentials_is_502_rejected(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
    detail = upstream.get(DETAIL_URL).respond(200, json=certificate())
    assert_problem(await lookup(rhub), 502, "UPSTREAM_REJECTED")
    assert token_route.call_count == 1 and not detail.called


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "", "expires_in": 60},
        {"access_token": "t", "expires_in": "soon"},
        {"token": "t"},
        ["t"],
    ],
)
async def test_off_contract_token_answer_is_502(rhub, upstream, answer):
    upstream.post(TOKEN_URL).respond(200, json=answer)
    assert_problem(await lookup(rhub), 502, "UPSTREAM_BAD_RESPONSE")


async def test_one_token_fetch_for_many_concurrent_calls(rhub, upstream):
    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})

    token_route = upstream.post(TOKEN_URL).mock(side_effect=slow_token)
    detail = upstream.get(DETAIL_URL).respond(200, json=certificate())
    responses = await asyncio.gather(*(lookup(rhub) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert token_route.call_count == 1 and detail.call_count == 20


async def test_unknown_enterprise_is_404(rhub, upstream):
    upstream.post(TOKEN_URL).mock(side_effect=tokens("t"))
    upstream.get(DETAIL_URL).respond(200, json={"GetEntCert": []})
    assert_problem(await lookup(rhub), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "payload",
    [
        {"GetEntCert": "none"},
        [],
        certificate(TinhTrangPhapLy=[{"MaTinhTrang": "42"}]),
        certificate(NgayDangKyLanDau="2010-03-15"),
        certificate(VonDieuLe="nhiều"),
    ],
)
async def test_off_contract_record_is_502(rhub, upstream, payload):
    upstream.post(TOKEN_URL).mock(side_effect=tokens("t"))
    upstream.get(DETAIL_URL).respond(200, json=payload)
    response = await lookup(rhub)
    assert_problem(response, 502, "UPSTREAM_BAD_RESPONSE")
    assert "001085012345" not in response.text


async def test_upstream_error_reply_is_retried_then_502(rhub, upstream):
    token_route = upstream.post(TOKEN_URL).mock(side_effect=tokens("t"))
    detail = upstream.get(DETAIL_URL).respond(500, json={"MaLoi": "99", "MoTaLoi": "Lỗi hệ thống"})
    response = await lookup(rhub)
    assert_problem(response, 502, "UPSTREAM_ERROR")
    assert "Lỗi hệ thống" not in response.text
    assert detail.call_count == rhub.settings.retry_attempts
    assert token_route.call_count == 1


async def test_a_transient_error_then_success(rhub, upstream):
    upstream.post(TOKEN_URL).mock(side_effect=tokens("t"))
    detail = upstream.get(DETAIL_URL).mock(
        side_effect=[
            httpx.Response(502, text="Bad Gateway"),
            httpx.Response(200, json=certificate()),
        ]
    )
    assert (await lookup(rhub)).status_code == 200
    assert detail.call_count == 2


async def test_token_endpoint_down_is_upstream_unavailable(rhub, upstream):
    upstream.post(TOKEN_URL).respond(503)
    assert_problem(await lookup(rhub), 503, "UPSTREAM_UNAVAILABLE")


async def test_request_refused_by_upstream_is_502_rejected(rhub, upstream):
    upstream.post(TOKEN_URL).mock(side_effect=tokens("t"))
    detail = upstream.get(DETAIL_URL).respond(400, json={"MaLoi": "01", "MoTaLoi": "msdn"})
    assert_problem(await lookup(rhub), 502, "UPSTREAM_REJECTED")
    assert detail.call_count == 1
