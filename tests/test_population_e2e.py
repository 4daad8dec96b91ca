"""End to end through the hub's API against the in-process population mock."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import zeep
from lxml import etree
from zeep.transports import AsyncTransport

from adapters.population import wsdl_text
from hub.provinces import PROVINCES
from mocks.data import load_citizens
from tests.test_pipeline import assert_problem

UNKNOWN_BUT_VALID = "001085999999"


@pytest.fixture(scope="module")
def citizen():
    """A citizen of the mock data set with a spouse and a full middle name."""
    return next(c for c in load_citizens() if c.spouse is not None and c.middle_name)


async def test_lookup_returns_the_canonical_citizen(hub, citizen):
    key = hub.client()
    response = await hub.http.get(f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(key))
    assert response.status_code == 200, response.text
    body = response.json()
    data = body["data"]
    assert data["personal_id"] == citizen.personal_id
    assert data["full_name"] == citizen.full_name
    assert data["gender"] == citizen.gender
    assert data["date_of_birth"] == citizen.date_of_birth.isoformat()
    assert (
        data["permanent_address"]["province_name"]
        == PROVINCES[data["permanent_address"]["province_code"]]
    )
    assert data["spouse"]["personal_id"] == citizen.spouse.personal_id
    assert body["meta"]["service"] == "population" and body["meta"]["operation"] == "lookup"
    assert body["meta"]["adapter_version"] == "1.0.0"


async def test_generic_route_serves_the_same_operation(hub, citizen):
    key = hub.client()
    direct = await hub.http.get(f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(key))
    generic = await hub.http.post(
        "/v1/services/population/lookup",
        json={"personal_id": citizen.personal_id},
        headers=hub.headers(key),
    )
    assert generic.status_code == 200
    assert generic.json()["data"] == direct.json()["data"]


async def test_unknown_citizen_is_404_and_audited(hub):
    key = hub.client()
    response = await hub.http.get(f"/v1/citizens/{UNKNOWN_BUT_VALID}", headers=hub.headers(key))
    assert_problem(response, 404, "NOT_FOUND")
    assert UNKNOWN_BUT_VALID not in response.text
    row = hub.audit_rows()[-1]
    assert (row["status"], row["code"], row["subject_id"]) == (404, "NOT_FOUND", UNKNOWN_BUT_VALID)


async def test_documented_refusals(hub, citizen):
    pid = citizen.personal_id
    assert_problem(await hub.http.get(f"/v1/citizens/{pid}"), 401, "UNAUTHENTICATED")
    key = hub.client()
    assert_problem(
        await hub.http.get(f"/v1/citizens/{pid}", headers=hub.headers(key, purpose=None)),
        400,
        "PURPOSE_REQUIRED",
    )
    assert_problem(
        await hub.http.get("/v1/citizens/12345", headers=hub.headers(key)),
        400,
        "INVALID_PERSONAL_ID",
    )


async def test_verify_answers_one_overall_match_by_default(hub, citizen):
    """Issue 18, finding 2: a verify-only client learns match or no match, nothing about
    which detail differs or whether the ID exists (an unknown ID is a plain no-match)."""
    key = hub.client(allow=["population:verify"])
    stated = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name.upper(),  # case does not matter, diacritics do
        "date_of_birth": citizen.date_of_birth.isoformat(),
        "gender": citizen.gender,
    }
    ok = await hub.http.post("/v1/citizens/verify", json=stated, headers=hub.headers(key))
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"] == {"match": True}
    wrong_day = (citizen.date_of_birth + dt.timedelta(days=1)).isoformat()
    bad = await hub.http.post(
        "/v1/citizens/verify", json=stated | {"date_of_birth": wrong_day}, headers=hub.headers(key)
    )
    assert bad.json()["data"] == {"match": False}
    unknown = await hub.http.post(
        "/v1/citizens/verify",
        json=stated | {"personal_id": UNKNOWN_BUT_VALID},
        headers=hub.headers(key),
    )
    assert unknown.json()["data"] == {"match": False}
    assert [r["fields"] for r in hub.audit_rows()] == ['["match"]'] * 3  # what went out


async def test_verify_field_by_field_only_where_granted(hub, citizen):
    key = hub.client(fields={"population": ["match", "found", "fields"]})
    stated = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name.upper(),
        "date_of_birth": citizen.date_of_birth.isoformat(),
        "gender": citizen.gender,
    }
    ok = await hub.http.post("/v1/citizens/verify", json=stated, headers=hub.headers(key))
    assert ok.json()["data"] == {
        "match": True,
        "found": True,
        "fields": {"full_name": True, "date_of_birth": True, "gender": True},
    }
    wrong_day = (citizen.date_of_birth + dt.timedelta(days=1)).isoformat()
    bad = await hub.http.post(
        "/v1/citizens/verify", json=stated | {"date_of_birth": wrong_day}, headers=hub.headers(key)
    )
    assert bad.json()["data"]["match"] is False
    assert bad.json()["data"]["fields"]["date_of_birth"] is False
    unknown = await hub.http.post(
        "/v1/citizens/verify",
        json=stated | {"personal_id": UNKNOWN_BUT_VALID},
        headers=hub.headers(key),
    )
    assert unknown.json()["data"]["found"] is False and unknown.json()["data"]["match"] is False
    # A field grant for the look-up alone still leaves the verdict to a verification.
    lookup_fields = hub.client(fields={"population": ["full_name"]})
    answer = await hub.http.post(
        "/v1/citizens/verify", json=stated, headers=hub.headers(lookup_fields)
    )
    assert answer.json()["data"] == {"match": True}


async def test_verify_schema_errors(hub):
    key = hub.client()
    response = await hub.http.post(
        "/v1/citizens/verify",
        json={"personal_id": "001085012345", "date_of_birth": "31/12/1985"},
        headers=hub.headers(key),
    )
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert {e["field"] for e in body["errors"]} == {"full_name", "date_of_birth"}


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("error", 502, "UPSTREAM_ERROR"),
        ("soap-fault", 502, "UPSTREAM_ERROR"),
        ("malformed", 502, "UPSTREAM_BAD_RESPONSE"),
        ("xxe", 502, "UPSTREAM_BAD_RESPONSE"),
        ("oversized", 502, "UPSTREAM_BAD_RESPONSE"),
        ("http-503", 503, "UPSTREAM_UNAVAILABLE"),
    ],
)
async def test_mock_faults_become_documented_errors(
    hub, population_mock, citizen, fault, status, code
):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=population_mock), base_url="http://m"
    ) as mock:
        assert (
            await mock.put("/_mock/faults", json={"fault": fault.replace("-", "_"), "rate": 1.0})
        ).status_code == 200
        key = hub.client()
        response = await hub.http.get(
            f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(key)
        )
        assert_problem(response, status, code)
        assert citizen.personal_id not in response.text
        assert (await mock.delete("/_mock/faults")).status_code in (200, 204)
    response = await hub.http.get(f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(key))
    assert response.status_code == 200


async def test_timeout_fault_is_504(hub, population_mock, citizen):
    hub.hub.registry.get("population").timeout_s = 0.1
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=population_mock), base_url="http://m"
    ) as mock:
        await mock.put("/_mock/faults", json={"fault": "timeout"})
        response = await hub.http.get(
            f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(hub.client())
        )
        await mock.delete("/_mock/faults")
    assert_problem(response, 504, "UPSTREAM_TIMEOUT")


async def test_catalogue_and_ready_show_population(hub):
    services = (await hub.http.get("/v1/services", headers=hub.headers(hub.client()))).json()[
        "data"
    ]
    population = next(s for s in services if s["name"] == "population")
    assert population["status"] == "up"
    assert {op["name"] for op in population["operations"]} == {"lookup", "verify"}
    ready = (await hub.http.get("/ready")).json()
    assert ready["status"] == "ready" and ready["services"]["population"]["ok"] is True, ready


# -- the WSDL is the contract --------------------------------------------------------------


def _structure(element: etree._Element) -> list[tuple[str, str]]:
    return [(e.tag, (e.text or "").strip()) for e in element.iter() if isinstance(e.tag, str)]


async def test_the_adapter_carries_the_wsdl_the_mock_serves(population_mock):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=population_mock), base_url="http://m"
    ) as mock:
        served = (await mock.get("/dancu/ws?wsdl")).text
    served_doc = etree.fromstring(served.encode())
    ours = etree.fromstring(wsdl_text().encode())
    for doc in (served_doc, ours):
        for address in doc.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
            address.set("location", "-")
    assert etree.tostring(served_doc, method="c14n") == etree.tostring(ours, method="c14n")


async def test_our_envelopes_match_what_zeep_builds_from_the_wsdl(population_mock, tmp_path):
    """The hot path builds envelopes by hand; they must be what the WSDL says (zeep's view)."""
    from adapters.population import PopulationAdapter, PopulationConfig
    from adapters.population.models import CitizenLookup
    from hub.adapter import CallContext
    from hub.core.registry import resolve_mapping
    from hub.errors import UpstreamUnavailable
    from hub.soap import SOAP_ENV
    from hub.upstream import HttpxBackend, UpstreamClient

    wsdl = tmp_path / "population.wsdl"
    wsdl.write_text(wsdl_text())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=population_mock)) as http:
        client = zeep.AsyncClient(str(wsdl), transport=AsyncTransport(client=http))
        expected = client.create_message(
            client.service,
            "TraCuuThongTinCongDan",
            MaYeuCau="r1",
            MaDVC="LGSP-HUB",
            MaTichHop="LGSP-HUB",
            MaCanBo="CB1",
            SoDinhDanh="001085012345",
        )
        captured: list[bytes] = []

        async def capture(request: httpx.Request) -> httpx.Response:
            captured.append(request.content)
            return httpx.Response(503)

        adapter = PopulationAdapter(
            config=PopulationConfig(base_url="http://x"),
            http=UpstreamClient(
                "http://x",
                timeout=httpx.Timeout(1),
                backend=HttpxBackend(httpx.MockTransport(capture)),
            ),
            mapping=resolve_mapping(PopulationAdapter),
        )
        await adapter.startup()
        with pytest.raises(UpstreamUnavailable):
            await adapter.lookup(
                CitizenLookup(personal_id="001085012345"), CallContext("r1", "c", officer_id="CB1")
            )
    ours = etree.fromstring(captured[0]).find(f"{{{SOAP_ENV}}}Body")[0]
    theirs = expected.find(f"{{{SOAP_ENV}}}Body")[0]
    assert _structure(ours) == _structure(theirs)


def test_soap_actions_come_from_the_wsdl():
    from adapters.population import soap_actions

    assert soap_actions() == {
        "TraCuuThongTinCongDan": "http://dancuquocgia.bca/TraCuuThongTinCongDan",
        "XacThucThongTinCongDan": "http://dancuquocgia.bca/XacThucThongTinCongDan",
    }
