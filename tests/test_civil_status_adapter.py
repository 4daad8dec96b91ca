"""The civil-status adapter: end to end against the in-process mock, and exact upstream
answers (respx) for OAuth2 renewal, refusals and off-contract replies. Timeouts, 5xx and a
cut answer, for every operation, are the conformance battery's (tests/test_conformance.py)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from adapters.civil_status import CivilStatusAdapter, CivilStatusConfig, marital_summary
from adapters.civil_status.models import CivilStatusQuery, RecordLookup
from hub.adapter import CallContext
from hub.core.registry import resolve_mapping
from hub.errors import NotFound, UpstreamRejected
from hub.upstream import HttpxBackend, UpstreamClient
from mocks.civil_status.app import create_app as create_mock
from mocks.data import Citizen, load_citizens
from tests.conftest import running_hub
from tests.test_pipeline import assert_problem

MOCK_BASE = "http://civil-status.mock"
BASE = "http://civil-status.upstream"
TOKEN_URL = f"{BASE}/oauth2/token"
PID = "001085012345"
UNKNOWN_BUT_VALID = "001085999999"
PERSON_URL = f"{BASE}/api/v1/hotich/congdan/{PID}"


@pytest.fixture(scope="module")
def citizens() -> list[Citizen]:
    return load_citizens()


def first(citizens: list[Citizen], status: str) -> Citizen:
    return next(c for c in citizens if c.marital_status == status)


# -- end to end through the hub, against the mock ---------------------------------------------


@pytest.fixture(scope="module")
def mock_app() -> Any:
    return create_mock()


@pytest.fixture
async def hub(settings, mock_app):
    settings.adapters = {"civil-status": {"base_url": MOCK_BASE}}
    transports = {"civil-status": httpx.ASGITransport(app=mock_app)}
    async with running_hub(
        settings, adapters=[CivilStatusAdapter], transports=transports
    ) as running:
        running.key = running.client()
        yield running


async def call(hub, operation: str, payload: dict[str, Any]) -> httpx.Response:
    return await hub.http.post(
        f"/v1/services/civil-status/{operation}", json=payload, headers=hub.headers(hub.key)
    )


async def test_records_of_a_married_citizen(hub, citizens):
    husband = next(c for c in citizens if c.marital_status == "married" and c.gender == "male")
    response = await call(hub, "records", {"personal_id": husband.personal_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["service"] == "civil-status" and body["meta"]["operation"] == "records"
    data = body["data"]
    assert data["personal_id"] == husband.personal_id
    births = [r for r in data["records"] if r["kind"] == "birth"]
    own = next(r for r in births if r["persons"][0]["personal_id"] == husband.personal_id)
    assert own["persons"][0] == {
        "role": "subject",
        "personal_id": husband.personal_id,
        "full_name": husband.full_name,
        "date_of_birth": husband.date_of_birth.isoformat(),
    }
    assert own["date_of_birth"] == husband.date_of_birth.isoformat()
    assert own["gender"] == "male"
    assert own["place_of_birth"]["province_code"] == husband.personal_id[:3]
    assert own["authority"]["name"].startswith("UBND ")
    assert own["number"].startswith("KS-") and own["book"].endswith(own["number"][3:7])
    roles = {p["role"]: p["full_name"] for p in own["persons"]}
    assert roles.get("father") == husband.father.full_name
    (marriage,) = [r for r in data["records"] if r["kind"] == "marriage"]
    partners = {p["role"]: p["personal_id"] for p in marriage["persons"]}
    assert partners == {"husband": husband.personal_id, "wife": husband.spouse.personal_id}
    assert marriage["divorce"] is None and marriage["date_of_death"] is None
    dates = [r["registered_on"] for r in data["records"]]
    assert dates == sorted(dates)


async def test_the_resource_route_serves_the_same_records(hub, citizens):
    citizen = citizens[0]
    direct = await hub.http.get(
        "/v1/civil-status/records",
        params={"personal_id": citizen.personal_id},
        headers=hub.headers(hub.key),
    )
    generic = await call(hub, "records", {"personal_id": citizen.personal_id})
    assert direct.status_code == 200, direct.text
    assert direct.json()["data"] == generic.json()["data"]


async def test_unknown_person_has_no_records_but_no_marital_status(hub):
    response = await call(hub, "records", {"personal_id": UNKNOWN_BUT_VALID})
    assert response.status_code == 200
    assert response.json()["data"] == {"personal_id": UNKNOWN_BUT_VALID, "records": []}
    assert_problem(
        await call(hub, "marital-status", {"personal_id": UNKNOWN_BUT_VALID}), 404, "NOT_FOUND"
    )


async def test_invalid_personal_id_never_reaches_upstream(hub):
    response = await call(hub, "records", {"personal_id": "123"})
    assert_problem(response, 400, "INVALID_PERSONAL_ID")


async def test_one_record_by_kind_and_number(hub, citizens):
    widow = first(citizens, "widowed")
    listing = await call(hub, "records", {"personal_id": widow.personal_id})
    death = next(r for r in listing.json()["data"]["records"] if r["kind"] == "death")
    response = await hub.http.get(
        f"/v1/civil-status/records/death/{death['number']}", headers=hub.headers(hub.key)
    )
    assert response.status_code == 200, response.text
    record = response.json()["data"]
    assert record == death
    assert record["date_of_death"] >= record["persons"][0]["date_of_birth"]
    assert record["cause_of_death"] and record["place_of_death"]["province_name"]
    declarant = next(p for p in record["persons"] if p["role"] == "declarant")
    assert declarant["personal_id"] == widow.personal_id


async def test_unknown_record_is_404_and_a_kind_mismatch_is_422(hub):
    missing = await call(hub, "record", {"kind": "birth", "number": "KS-1800-01-000001"})
    assert_problem(missing, 404, "NOT_FOUND")
    mismatch = await call(hub, "record", {"kind": "death", "number": "KS-2005-01-000001"})
    assert_problem(mismatch, 422, "VALIDATION_ERROR")
    bad = await call(hub, "record", {"kind": "birth", "number": "../../etc"})
    assert_problem(bad, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("status", ["single", "married", "divorced", "widowed"])
async def test_marital_status_agrees_with_the_population_data(hub, citizens, status):
    citizen = first(citizens, status)
    response = await call(hub, "marital-status", {"personal_id": citizen.personal_id})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["personal_id"] == citizen.personal_id
    assert data["status"] == status
    dt.date.fromisoformat(data["as_of"])
    kinds = [e["kind"] for e in data["evidence"]]
    assert (
        kinds
        == {
            "single": [],
            "married": ["marriage"],
            "divorced": ["marriage"],
            "widowed": ["marriage", "death"],
        }[status]
    )


async def test_the_audit_names_the_subject(hub, citizens):
    await call(hub, "records", {"personal_id": citizens[0].personal_id})
    row = hub.audit_rows()[-1]
    assert row["service"] == "civil-status" and row["operation"] == "records"


# -- direct adapter calls -----------------------------------------------------------------


@pytest.fixture
async def adapter(mock_app):
    client = UpstreamClient(
        MOCK_BASE,
        timeout=httpx.Timeout(5.0),
        backend=HttpxBackend(httpx.ASGITransport(app=mock_app)),
    )
    instance = CivilStatusAdapter(
        config=CivilStatusConfig(base_url=MOCK_BASE),
        http=client,
        mapping=resolve_mapping(CivilStatusAdapter),
    )
    await instance.startup()
    yield instance
    await client.aclose()


CTX = CallContext(request_id="req-1", client_id="test")


async def test_direct_calls_and_health(adapter, citizens):
    divorced = first(citizens, "divorced")
    result = await adapter.marital_status(CivilStatusQuery(personal_id=divorced.personal_id), CTX)
    assert result.status == "divorced"
    marriage = await adapter.record(
        RecordLookup(kind="marriage", number=result.evidence[0].number), CTX
    )
    assert marriage.divorce is not None and marriage.divorce.effective_on >= marriage.registered_on
    assert divorced.personal_id in {p.personal_id for p in marriage.persons}
    with pytest.raises(NotFound):
        await adapter.record(RecordLookup(kind="marriage", number="KH-1800-01-000001"), CTX)
    assert (await adapter.health()).ok


async def test_wrong_client_secret_is_rejected(mock_app):
    client = UpstreamClient(
        MOCK_BASE,
        timeout=httpx.Timeout(5.0),
        backend=HttpxBackend(httpx.ASGITransport(app=mock_app)),
    )
    instance = CivilStatusAdapter(
        config=CivilStatusConfig(base_url=MOCK_BASE, client_secret="wrong"),
        http=client,
        mapping=resolve_mapping(CivilStatusAdapter),
    )
    await instance.startup()
    with pytest.raises(UpstreamRejected) as raised:
        await instance.records(CivilStatusQuery(personal_id=PID), CTX)
    assert raised.value.log_context["oauth_error"] == "invalid_client"
    await client.aclose()


def test_marital_summary_takes_the_latest_marriage():
    me, first_wife, second_wife = "001085012345", "001185000001", "001190000002"
    records = [
        {"loaiHoTich": "KH", "maHoTich": "KH-2010-01-000001", "ngayDangKy": "20100101",
         "chongSoDinhDanh": me, "voSoDinhDanh": first_wife},
        {"loaiHoTich": "KT", "maHoTich": "KT-2015-01-000001", "ngayDangKy": "20150101",
         "nktSoDinhDanh": first_wife},
        {"loaiHoTich": "KH", "maHoTich": "KH-2018-01-000001", "ngayDangKy": "20180101",
         "chongSoDinhDanh": me, "voSoDinhDanh": second_wife},
    ]  # fmt: skip
    summary = marital_summary(me, records, dt.date(2025, 1, 2))
    assert summary["tinhTrangHonNhan"] == "2" and summary["ngayXacNhan"] == "20250102"
    assert [e["maHoTich"] for e in summary["canCu"]] == ["KH-2018-01-000001"]
    widowed = marital_summary(me, records[:2], dt.date(2025, 1, 2))
    assert widowed["tinhTrangHonNhan"] == "4" and len(widowed["canCu"]) == 2


# -- exact upstream answers (respx) ---------------------------------------------------------


def ok(data: Any) -> dict[str, Any]:
    return {"status": "1", "errorCode": None, "errorDescription": None, "data": data}


def token_reply(token: str, expires_in: int = 300) -> httpx.Response:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    return httpx.Response(200, json=body)


BIRTH = {
    "maHoTich": "KS-1985-01-000007",
    "loaiHoTich": "KS",
    "soDangKy": "7",
    "quyenSo": "01/1985",
    "trangSo": "4",
    "ngayDangKy": "19850320",
    "noiDangKy": {"maCoQuan": "00100500160", "tenCoQuan": "UBND phường A, Hà Nội",
                  "maTinh": "001", "maHuyen": "005", "maXa": "00160"},
    "nksHoTen": "Nguyễn Văn An",
    "nksGioiTinh": "1",
    "nksNgaySinh": "19850304",
    "nksNoiSinh": {"maTinh": "001", "maHuyen": "005", "maXa": "00160", "dcChiTiet": ""},
    "nksSoDinhDanh": PID,
    "chaHoTen": "Nguyễn Văn Ba",
    "chaSoDinhDanh": None,
    "meHoTen": "Trần Thị Cúc",
    "meSoDinhDanh": None,
}  # fmt: skip


def person_reply(records: list[dict[str, Any]] | None = None) -> httpx.Response:
    records = [BIRTH] if records is None else records
    return httpx.Response(
        200, json=ok({"soDinhDanh": PID, "tongSo": len(records), "danhSach": records})
    )


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
async def edge_hub(settings, upstream):
    settings.adapters = {
        "civil-status": {"base_url": BASE, "client_id": "lgsp", "client_secret": "s3cret"}
    }
    transports = {"civil-status": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(
        settings, adapters=[CivilStatusAdapter], transports=transports
    ) as running:
        running.key = running.client()
        yield running


async def records(hub) -> httpx.Response:
    return await hub.http.get(
        "/v1/civil-status/records", params={"personal_id": PID}, headers=hub.headers(hub.key)
    )


async def test_maps_a_birth_record_and_sends_the_client_credentials(edge_hub, upstream):
    token = upstream.post(TOKEN_URL).mock(return_value=token_reply("t1"))
    api = upstream.get(PERSON_URL).mock(return_value=person_reply())
    response = await records(edge_hub)
    assert response.status_code == 200, response.text
    (record,) = response.json()["data"]["records"]
    assert record["kind"] == "birth" and record["registered_on"] == "1985-03-20"
    assert record["authority"] == {"code": "00100500160", "name": "UBND phường A, Hà Nội"}
    assert record["place"]["province_name"] == "Hà Nội"
    assert record["place_of_birth"]["detail"] is None
    assert [p["role"] for p in record["persons"]] == ["subject", "father", "mother"]
    sent = token.calls.last.request
    assert parse_qs(sent.content.decode()) == {"grant_type": ["client_credentials"]}
    assert base64.b64decode(sent.headers["authorization"].split()[1]) == b"lgsp:s3cret"
    assert api.calls.last.request.headers["authorization"] == "Bearer t1"


async def test_the_token_is_reused_until_it_expires(edge_hub, upstream):
    token = upstream.post(TOKEN_URL).mock(return_value=token_reply("t1"))
    upstream.get(PERSON_URL).mock(return_value=person_reply())
    for _ in range(3):
        assert (await records(edge_hub)).status_code == 200
    assert token.call_count == 1


async def test_an_expired_token_is_renewed_and_the_call_repeated_once(edge_hub, upstream):
    token = upstream.post(TOKEN_URL).mock(side_effect=[token_reply("old"), token_reply("new")])

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer new":
            return person_reply()
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return httpx.Response(401, headers=challenge)

    route = upstream.get(PERSON_URL).mock(side_effect=api)
    response = await records(edge_hub)
    assert response.status_code == 200, response.text
    assert token.call_count == 2 and route.call_count == 2


async def test_a_token_refused_twice_is_a_clean_rejection(edge_hub, upstream):
    token = upstream.post(TOKEN_URL).mock(return_value=token_reply("secret-token-value"))
    route = upstream.get(PERSON_URL).respond(401)
    response = await records(edge_hub)
    assert_problem(response, 502, "UPSTREAM_REJECTED")
    assert PID not in response.text and "secret-token-value" not in response.text
    assert route.call_count == 2 and token.call_count == 2


async def test_bad_client_credentials_are_not_retried(edge_hub, upstream):
    token = upstream.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
    route = upstream.get(PERSON_URL).mock(return_value=person_reply())
    assert_problem(await records(edge_hub), 502, "UPSTREAM_REJECTED")
    assert token.call_count == 1 and route.call_count == 0


async def test_the_token_is_fetched_once_for_many_concurrent_calls(edge_hub, upstream):
    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return token_reply("shared")

    token = upstream.post(TOKEN_URL).mock(side_effect=slow_token)
    route = upstream.get(PERSON_URL).mock(return_value=person_reply())
    responses = await asyncio.gather(*(records(edge_hub) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert token.call_count == 1 and route.call_count == 10
    assert {c.request.headers["authorization"] for c in route.calls} == {"Bearer shared"}


async def test_json_nested_100_000_deep_is_502_and_not_retried(edge_hub, upstream):
    upstream.post(TOKEN_URL).mock(return_value=token_reply("t"))
    route = upstream.get(PERSON_URL).respond(200, content=b"[" * 100_000 + b"]" * 100_000)
    assert_problem(await records(edge_hub), 502, "UPSTREAM_BAD_RESPONSE")
    assert route.call_count == 1


async def test_off_contract_values_are_502_without_the_value(edge_hub, upstream):
    upstream.post(TOKEN_URL).mock(return_value=token_reply("t"))
    upstream.get(PERSON_URL).mock(return_value=person_reply([BIRTH | {"ngayDangKy": "20-03-1985"}]))
    response = await records(edge_hub)
    assert_problem(response, 502, "UPSTREAM_BAD_RESPONSE")
    assert "20-03-1985" not in response.text


async def test_system_error_is_retried_then_502(edge_hub, upstream):
    upstream.post(TOKEN_URL).mock(return_value=token_reply("t"))
    error = {"status": "0", "errorCode": "LOI_HE_THONG", "errorDescription": f"Lỗi {PID}"}
    route = upstream.get(PERSON_URL).respond(500, json=error)
    response = await records(edge_hub)
    assert_problem(response, 502, "UPSTREAM_ERROR")
    assert route.call_count == edge_hub.settings.retry_attempts
    assert PID not in response.text


async def test_not_found_code_is_404_and_bad_request_code_is_rejected(edge_hub, upstream):
    upstream.post(TOKEN_URL).mock(return_value=token_reply("t"))
    url = f"{BASE}/api/v1/hotich/KS/KS-2005-01-000001"
    payload = {"kind": "birth", "number": "KS-2005-01-000001"}
    not_found = {"status": "0", "errorCode": "KHONG_TIM_THAY", "errorDescription": "x"}
    route = upstream.get(url).respond(200, json=not_found)
    assert_problem(await call(edge_hub, "record", payload), 404, "NOT_FOUND")
    bad = {"status": "0", "errorCode": "YEU_CAU_KHONG_HOP_LE", "errorDescription": "x"}
    route.reset()
    route.respond(400, json=bad)
    assert_problem(await call(edge_hub, "record", payload), 502, "UPSTREAM_REJECTED")
    assert route.call_count == 1
