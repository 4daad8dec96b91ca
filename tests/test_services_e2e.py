"""Civil status and judicial records end to end: the hub's resource routes, the real
adapters and their in-process mocks (the `hub` fixture wires every installed adapter)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from tests.conftest import RunningHub, eventually


async def mock_get(app: Any, path: str, **params: Any) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
        return (await http.get(path, params=params)).json()


# -- civil status ------------------------------------------------------------------------------


async def test_civil_status_records_agree_with_the_population_record(
    hub: RunningHub, mock_apps
) -> None:
    key = hub.client()
    persons = (await mock_get(mock_apps["civil-status"], "/_mock/records", limit=20))["persons"]
    person = persons[0]
    pid = person["personal_id"]
    listed = await hub.http.get(
        "/v1/civil-status/records", params={"personal_id": pid}, headers=hub.headers(key)
    )
    assert listed.status_code == 200, listed.text
    records = listed.json()["data"]["records"]
    assert len(records) == len(person["records"])
    birth = next(
        r
        for r in records
        if r["kind"] == "birth"
        and any(p["role"] == "subject" and p["personal_id"] == pid for p in r["persons"])
    )
    citizen = (await hub.http.get(f"/v1/citizens/{pid}", headers=hub.headers(key))).json()["data"]
    assert birth["date_of_birth"] == citizen["date_of_birth"]
    subject = next(p for p in birth["persons"] if p["role"] == "subject")
    assert subject["full_name"] == citizen["full_name"]

    one = await hub.http.get(
        f"/v1/civil-status/records/birth/{birth['number']}", headers=hub.headers(key)
    )
    assert one.status_code == 200 and one.json()["data"] == birth
    assert one.json()["meta"]["service"] == "civil-status"


async def test_marital_status_confirmation_agrees_with_the_population_record(
    hub: RunningHub, mock_apps
) -> None:
    key = hub.client()
    oldest = (await mock_get(mock_apps["civil-status"], "/_mock/records", limit=30))["persons"]
    anyone = (await mock_get(mock_apps["population"], "/_mock/records", limit=30))["records"]
    seen = set()
    for pid in [p["personal_id"] for p in oldest + anyone]:
        citizen = (await hub.http.get(f"/v1/citizens/{pid}", headers=hub.headers(key))).json()[
            "data"
        ]
        confirmed = await hub.http.get(
            "/v1/civil-status/marital-status", params={"personal_id": pid}, headers=hub.headers(key)
        )
        assert confirmed.status_code == 200
        assert confirmed.json()["data"]["status"] == citizen["marital_status"], pid
        seen.add(citizen["marital_status"])
    assert {"married", "single", "widowed"} <= seen


async def test_civil_status_refusals(hub: RunningHub) -> None:
    key = hub.client()
    missing = await hub.http.get("/v1/civil-status/records", headers=hub.headers(key))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "personal_id"
    bad = await hub.http.get(
        "/v1/civil-status/records", params={"personal_id": "12345"}, headers=hub.headers(key)
    )
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_PERSONAL_ID"
    unknown = await hub.http.get(
        "/v1/civil-status/records/death/KT-1999-01-999999", headers=hub.headers(key)
    )
    assert unknown.status_code == 404
    wrong_kind = await hub.http.get(
        "/v1/civil-status/records/burial/KS-2005-01-000123", headers=hub.headers(key)
    )
    assert wrong_kind.status_code == 422
    not_granted = await hub.http.get(
        "/v1/civil-status/records",
        params={"personal_id": "001085012345"},
        headers=hub.headers(hub.client(allow=["population"])),
    )
    assert not_granted.status_code == 403


# -- judicial records ---------------------------------------------------------------------------


async def applicants(mock_apps) -> dict[str, dict[str, Any]]:
    records = (await mock_get(mock_apps["judicial-records"], "/_mock/records", limit=3))["records"]
    return {r.pop("expected"): r for r in records}


async def wait_final(hub: RunningHub, key: str, job_id: str) -> dict[str, Any]:
    for _ in range(200):
        read = await hub.http.get(
            f"/v1/judicial-records/requests/{job_id}", headers=hub.headers(key)
        )
        assert read.status_code == 200
        data = read.json()["data"]
        if data["final"]:
            return data  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"the request is still {data['status']}")


async def test_certificate_issued_and_pushed_back(hub: RunningHub, mock_apps) -> None:
    key = hub.client()
    people = await applicants(mock_apps)
    results = {}
    for expected in ("clean", "convictions", "rejected"):
        body = {**people[expected], "certificate_type": 1, "purpose_code": "01"}
        submitted = await hub.http.post(
            "/v1/judicial-records/requests", json=body, headers=hub.headers(key)
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["data"]["status"] == "received"
        results[expected] = await wait_final(hub, key, submitted.json()["data"]["id"])

    clean = results["clean"]
    assert clean["status"] == "issued"
    certificate = clean["certificate"]
    assert certificate["has_criminal_record"] is False and certificate["convictions"] == []
    assert base64.b64decode(certificate["pdf_base64"]).startswith(b"%PDF")
    assert results["convictions"]["certificate"]["has_criminal_record"] is True
    assert results["convictions"]["certificate"]["convictions"]
    assert results["rejected"]["status"] == "rejected" and results["rejected"]["rejection_reason"]

    # The results came by upstream's push (the worker is off in tests: nothing polled).
    # Each push's audit record is committed after the job it finished: wait for all three.
    def pushes() -> list[dict[str, Any]]:
        return [r for r in hub.audit_rows() if r["operation"] == "push"]

    await eventually(lambda: len(pushes()) == 3, "three push records")
    assert all(r["status"] == 200 for r in pushes())


async def test_a_lost_answer_to_a_submission_is_found_again_by_the_push(
    hub: RunningHub, mock_apps
) -> None:
    """Upstream records the application but its answer is garbled on the way (the mock's
    `malformed` fault): the agency gets 202 `unconfirmed`, not an error inviting a second
    application, and upstream's push (which echoes the job id as `maHoSoMCDT`) finishes
    that very job."""
    judicial = mock_apps["judicial-records"]
    key = hub.client()
    person = (await applicants(mock_apps))["clean"]
    transport = httpx.ASGITransport(app=judicial)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as mock:
        await mock.put("/_mock/faults", json={"malformed": True})
        submitted = await hub.http.post(
            "/v1/judicial-records/requests",
            json={**person, "certificate_type": 1, "purpose_code": "01"},
            headers=hub.headers(key),
        )
        await mock.delete("/_mock/faults")
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["data"]
        assert (job["status"], job["error"]) == ("unconfirmed", "UPSTREAM_BAD_RESPONSE")
        [application] = (await mock.get("/_mock/requests")).json()["requests"]
        assert application["maHoSoMCDT"] == job["id"]  # upstream did take it
    done = await wait_final(hub, key, job["id"])
    assert done["status"] == "issued" and done["upstream_reference"] == application["maHoSoLLTP"]
    assert done["certificate"]["number"]


async def test_judicial_push_with_a_bad_signature_is_refused(hub: RunningHub) -> None:
    response = await hub.http.post(
        "/v1/judicial-records/results",
        content=b'{"maHoSoLLTP": "LLTP-00000000-000001", "trangThaiXuLy": "3"}',
        headers={"x-lltp-timestamp": "1", "x-lltp-signature": "00"},
    )
    assert response.status_code in (400, 401)
    assert response.headers["content-type"] == "application/problem+json"


# -- hostile upstream answers --------------------------------------------------------------------


async def set_fault(app: Any, fault: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
        assert (await http.put("/_mock/faults", json={"fault": fault})).status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("oversized", 502, "UPSTREAM_BAD_RESPONSE"),
        ("malformed", 502, "UPSTREAM_BAD_RESPONSE"),
        ("http-503", 503, "UPSTREAM_UNAVAILABLE"),
        ("error", 502, "UPSTREAM_ERROR"),
    ],
)
@pytest.mark.parametrize("service", ["civil-status", "business-registration"])
async def test_json_upstream_faults_become_documented_errors(
    hub: RunningHub, mock_apps, service: str, fault: str, status: int, code: str
) -> None:
    key = hub.client()
    if service == "civil-status":
        path, params = "/v1/civil-status/records", {"personal_id": "001085012345"}
    else:
        records = (await mock_get(mock_apps[service], "/_mock/records", limit=1))["records"]
        path, params = f"/v1/enterprises/{records[0]['enterprise_code']}", {}
    await set_fault(mock_apps[service], fault)
    response = await hub.http.get(path, params=params, headers=hub.headers(key))
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert len(response.content) < 2000  # nothing of upstream's answer is passed on
