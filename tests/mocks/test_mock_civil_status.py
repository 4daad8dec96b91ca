"""The civil-status mock against docs/mock-civil-status.md: OAuth2, record shapes, agreement
with the population data set, faults."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.identifiers import parse_personal_id
from mocks.civil_status.app import create_app
from mocks.data import Citizen, citizen_index, load_citizens

BASE_URL = "http://civil-status.mock"
CREDENTIALS = ("hub", "civil-status-secret")
KEY = re.compile(r"^(KS|KH|KT)-(\d{4})-(\d{2})-(\d{6})$")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def citizens() -> list[Citizen]:
    return load_citizens()


@pytest.fixture(scope="module")
def registry() -> Any:
    return create_app().state.registry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(clock=clock, token_ttl_s=60, fault_seed=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


async def token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=CREDENTIALS
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def get(client: httpx.AsyncClient, path: str, **headers: str) -> httpx.Response:
    bearer = await token(client)
    return await client.get(path, headers={"authorization": f"Bearer {bearer}", **headers})


def first(citizens: list[Citizen], status: str) -> Citizen:
    return next(c for c in citizens if c.marital_status == status)


def ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


# -- OAuth2 ----------------------------------------------------------------------------------


async def test_token_by_basic_auth_is_an_rfc_6749_reply(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=CREDENTIALS
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60
    assert response.headers["cache-control"] == "no-store"


async def test_token_by_form_fields(client: httpx.AsyncClient) -> None:
    form = {"grant_type": "client_credentials", "client_id": "hub"}
    response = await client.post(
        "/oauth2/token", data=form | {"client_secret": "civil-status-secret"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "auth,form",
    [
        (("hub", "wrong"), {}),
        (("other", "civil-status-secret"), {}),
        (None, {"client_id": "hub", "client_secret": "nope"}),
        (None, {}),
    ],
)
async def test_bad_client_credentials_are_401_invalid_client(
    client: httpx.AsyncClient, auth: Any, form: dict[str, str]
) -> None:
    response = await client.post(
        "/oauth2/token", data={"grant_type": "client_credentials", **form}, auth=auth
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


async def test_other_grants_are_unsupported(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth2/token", data={"grant_type": "password"}, auth=CREDENTIALS)
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}
    missing = await client.post("/oauth2/token", data={}, auth=CREDENTIALS)
    assert missing.json() == {"error": "invalid_request"}


async def test_tokens_expire(client: httpx.AsyncClient, clock: Clock, citizens: list) -> None:
    bearer = await token(client)
    path = f"/api/v1/hotich/congdan/{citizens[0].personal_id}"
    headers = {"authorization": f"Bearer {bearer}"}
    assert (await client.get(path, headers=headers)).status_code == 200
    clock.now += 61
    expired = await client.get(path, headers=headers)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert expired.json()["errorCode"] == "XAC_THUC_THAT_BAI"


@pytest.mark.parametrize("header", [None, "Bearer made-up", "Basic aHViOnNlY3JldA=="])
async def test_the_api_needs_a_live_bearer_token(
    client: httpx.AsyncClient, citizens: list, header: str | None
) -> None:
    headers = {} if header is None else {"authorization": header}
    response = await client.get(
        f"/api/v1/hotich/congdan/{citizens[0].personal_id}", headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# -- shapes ----------------------------------------------------------------------------------


async def test_a_person_reply_lists_every_record_naming_them(
    client: httpx.AsyncClient, citizens: list[Citizen]
) -> None:
    wife = next(c for c in citizens if c.marital_status == "married" and c.gender == "female")
    response = await get(client, f"/api/v1/hotich/congdan/{wife.personal_id}")
    body = response.json()
    assert body["status"] == "1" and body["errorCode"] is None
    data = body["data"]
    assert data["soDinhDanh"] == wife.personal_id and data["tongSo"] == len(data["danhSach"])
    kinds = [r["loaiHoTich"] for r in data["danhSach"]]
    assert kinds.count("KH") == 1 and "KS" in kinds
    dates = [r["ngayDangKy"] for r in data["danhSach"]]
    assert dates == sorted(dates)
    for record in data["danhSach"]:
        names = {record.get(f) for f in ("nksSoDinhDanh", "meSoDinhDanh", "voSoDinhDanh")}
        assert wife.personal_id in names


async def test_one_record_by_kind_and_key(
    client: httpx.AsyncClient, citizens: list[Citizen]
) -> None:
    citizen = citizens[0]
    listing = await get(client, f"/api/v1/hotich/congdan/{citizen.personal_id}")
    birth = next(
        r
        for r in listing.json()["data"]["danhSach"]
        if r.get("nksSoDinhDanh") == citizen.personal_id
    )
    response = await get(client, f"/api/v1/hotich/KS/{birth['maHoTich']}")
    assert response.json()["data"] == birth
    kind, year, book, number = KEY.match(birth["maHoTich"]).groups()  # type: ignore[union-attr]
    assert kind == "KS" and birth["ngayDangKy"][:4] == year
    assert birth["quyenSo"] == f"{book}/{year}" and birth["soDangKy"] == str(int(number))
    assert set(birth["noiDangKy"]) == {"maCoQuan", "tenCoQuan", "maTinh", "maHuyen", "maXa"}
    assert set(birth["nksNoiSinh"]) == {"maTinh", "maHuyen", "maXa", "dcChiTiet"}


async def test_unknown_and_bad_requests(client: httpx.AsyncClient) -> None:
    missing = await get(client, "/api/v1/hotich/KH/KH-1800-01-000001")
    assert missing.status_code == 200
    assert missing.json()["status"] == "0" and missing.json()["errorCode"] == "KHONG_TIM_THAY"
    wrong_kind = await get(client, "/api/v1/hotich/KT/KS-1990-01-000001")
    assert wrong_kind.json()["errorCode"] == "KHONG_TIM_THAY"
    for path in ("/api/v1/hotich/XX/KS-1990-01-000001", "/api/v1/hotich/congdan/12ab"):
        bad = await get(client, path)
        assert bad.status_code == 400 and bad.json()["errorCode"] == "YEU_CAU_KHONG_HOP_LE"
    nobody = await get(client, "/api/v1/hotich/congdan/001085999999")
    assert nobody.json()["data"] == {"soDinhDanh": "001085999999", "tongSo": 0, "danhSach": []}


# -- agreement with the population data set ---------------------------------------------------


def test_every_citizen_has_one_birth_record_agreeing_with_the_data_set(
    registry: Any, citizens: list[Citizen]
) -> None:
    births = {r["nksSoDinhDanh"]: r for r in registry.records.values() if r["loaiHoTich"] == "KS"}
    assert (
        len(births)
        == len(citizens)
        == sum(r["loaiHoTich"] == "KS" for r in registry.records.values())
    )
    for c in citizens:
        record = births[c.personal_id]
        assert record["nksHoTen"] == c.full_name
        assert record["nksNgaySinh"] == ymd(c.date_of_birth)
        assert record["nksGioiTinh"] == {"male": "1", "female": "2"}[c.gender]
        assert record["ngayDangKy"] >= record["nksNgaySinh"]
        for prefix, ref in (("cha", c.father), ("me", c.mother)):
            assert record.get(f"{prefix}HoTen") == (ref.full_name if ref else None)
            assert record.get(f"{prefix}SoDinhDanh") == (ref.personal_id if ref else None)


def _marriages_of(registry: Any, personal_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in registry.of_person(personal_id)
        if r["loaiHoTich"] == "KH" and personal_id in (r["chongSoDinhDanh"], r["voSoDinhDanh"])
    ]


def test_marriage_and_death_records_agree_with_marital_status(
    registry: Any, citizens: list[Citizen]
) -> None:
    index = citizen_index()
    deaths = {r["nktSoDinhDanh"]: r for r in registry.records.values() if r["loaiHoTich"] == "KT"}
    absent: dict[str, set[str]] = {}  # parent ID -> names of their children's other parent
    for child in citizens:
        if child.father and child.mother:
            for known, other in ((child.father, child.mother), (child.mother, child.father)):
                if known.personal_id and other.personal_id is None:
                    absent.setdefault(known.personal_id, set()).add(other.full_name)
    for c in citizens:
        marriages = _marriages_of(registry, c.personal_id)
        if c.marital_status == "single":
            assert marriages == []
            continue
        (marriage,) = marriages
        husband = marriage["chongSoDinhDanh"] == c.personal_id
        spouse = marriage["voSoDinhDanh" if husband else "chongSoDinhDanh"]
        assert (c.gender == "male") == husband
        assert marriage[("chong" if husband else "vo") + "HoTen"] == c.full_name
        if c.marital_status == "married":
            assert spouse == c.spouse.personal_id and "ghiChuLyHon" not in marriage
            assert index[spouse].spouse.personal_id == c.personal_id
        elif c.marital_status == "divorced":
            assert marriage["ghiChuLyHon"]["ngayHieuLuc"] >= marriage["ngayDangKy"]
            assert spouse is None
        else:  # widowed: the spouse is outside the data set and their death is registered
            death = deaths[spouse]
            assert spouse not in index and "ghiChuLyHon" not in marriage
            assert death["nycSoDinhDanh"] == c.personal_id
            assert death["nktNgayChet"] >= marriage["ngayDangKy"]
            assert death["ngayDangKy"] >= death["nktNgayChet"]
            assert absent.get(c.personal_id, set()) <= {death["nktHoTen"]}
        assert marriage["ngayDangKy"] <= "20241231"


def test_nobody_in_the_data_set_is_dead_and_every_id_is_valid(
    registry: Any, citizens: list[Citizen]
) -> None:
    index = citizen_index()
    deaths = [r for r in registry.records.values() if r["loaiHoTich"] == "KT"]
    assert deaths and not any(r["nktSoDinhDanh"] in index for r in deaths)
    declared_by_children = [r for r in deaths if r["nycQuanHe"] == "Con"]
    assert declared_by_children
    for record in declared_by_children:
        child = index[record["nycSoDinhDanh"]]
        parent = child.father if record["nktGioiTinh"] == "1" else child.mother
        assert record["nktHoTen"] == parent.full_name and parent.personal_id is None
    for personal_id in registry.by_person:
        parse_personal_id(personal_id)


def test_keys_are_unique_url_safe_and_numbered_per_kind_and_year(registry: Any) -> None:
    seen: dict[tuple[str, str], list[int]] = {}
    for key, record in registry.records.items():
        kind, year, _, number = KEY.match(key).groups()  # type: ignore[union-attr]
        assert record["maHoTich"] == key and record["loaiHoTich"] == kind
        seen.setdefault((kind, year), []).append(int(number))
    for numbers in seen.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))


def test_the_registry_is_deterministic(registry: Any) -> None:
    again = create_app(citizens=load_citizens()).state.registry
    assert json.dumps(again.records, sort_keys=True) == json.dumps(registry.records, sort_keys=True)


# -- mock-only endpoints and faults ---------------------------------------------------------------


async def test_records_listing_and_health(client: httpx.AsyncClient, registry: Any) -> None:
    listing = (await client.get("/_mock/records", params={"limit": 6})).json()
    assert len(listing["persons"]) == 6 and len(listing["records"]) == 6
    assert {r["kind"] for r in listing["records"]} == {"KS", "KH", "KT"}
    for person in listing["persons"]:
        assert person["records"] == registry.by_person[person["personal_id"]]
    assert listing["total_records"] == len(registry.records)
    assert (await client.get("/_mock/records", params={"limit": 0})).status_code == 400
    assert (await client.get("/_mock/health")).json() == {"status": "ok"}


async def test_fault_error_is_the_registry_system_error(
    client: httpx.AsyncClient, citizens: list
) -> None:
    path = f"/api/v1/hotich/congdan/{citizens[0].personal_id}"
    response = await get(client, path, **{"x-mock-fault": "error"})
    assert response.status_code == 500
    assert response.json()["status"] == "0" and response.json()["errorCode"] == "LOI_HE_THONG"


async def test_fault_http_503_malformed_and_oversized(
    client: httpx.AsyncClient, citizens: list
) -> None:
    path = f"/api/v1/hotich/congdan/{citizens[0].personal_id}"
    down = await get(client, path, **{"x-mock-fault": "http-503"})
    assert down.status_code == 503 and down.content == b""
    broken = await get(client, path, **{"x-mock-fault": "malformed"})
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    big = await get(client, path, **{"x-mock-fault": "oversized"})
    assert len(big.content) > 5 * 1024 * 1024 and big.json()["status"] == "1"


async def test_runtime_faults_take_the_api_down_and_back(
    client: httpx.AsyncClient, citizens: list
) -> None:
    path = f"/api/v1/hotich/congdan/{citizens[0].personal_id}"
    assert (await client.put("/_mock/faults", json={"fault": "http-503"})).status_code == 200
    assert (await get(client, path)).status_code == 503
    await client.delete("/_mock/faults")
    assert (await get(client, path)).status_code == 200
    bad = await get(client, path, **{"x-mock-fault": "nonsense"})
    assert bad.status_code == 400
