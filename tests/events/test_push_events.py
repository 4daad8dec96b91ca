"""Events from the pushes the hub already receives: `judicial-records:certificate-issued`
when a certificate's result arrives, `payment:settled` when a payment's callback settles
it; each to the client that applied or paid, never to another subscriber."""

from __future__ import annotations

from typing import Any

from tests.test_async_e2e import (  # noqa: F401 - fixtures
    applicant,
    mock_call,
    open_payment,
    receiver,
    stack,
    wait_final,
    wait_status,
)


async def _subscribe(hub: Any, key: str, event_type: str) -> str:
    answer = await hub.http.post(
        "/v1/subscriptions",
        json={"event_type": event_type, "delivery": "pull"},
        headers=hub.headers(key),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


async def _next(hub: Any, key: str, sid: str) -> Any:
    return await hub.http.get(f"/v1/subscriptions/{sid}/events/next", headers=hub.headers(key))


async def test_an_issued_certificate_is_told_to_the_applying_agency_only(stack):  # noqa: F811
    hub, judicial, _ = stack
    mine, other = hub.client(), hub.client()
    sid = await _subscribe(hub, mine, "judicial-records:certificate-issued")
    other_sid = await _subscribe(hub, other, "judicial-records:certificate-issued")
    person = (await applicant(judicial))["records"][0]
    body = {k: v for k, v in person.items() if k != "expected"}
    created = await hub.http.post(
        "/v1/judicial-records/requests",
        json={**body, "certificate_type": 1, "purpose_code": "01"},
        headers=hub.headers(mine),
    )
    assert created.status_code == 202, created.text
    job = await wait_final(hub, mine, created.json()["data"]["id"])
    assert job["status"] == "issued"
    event = await _next(hub, mine, sid)
    assert event.status_code == 200, event.text
    data = event.json()["data"]
    assert data["event_type"] == "judicial-records:certificate-issued"
    assert data["data"]["id"] == job["id"] and data["data"]["personal_id"] == person["personal_id"]
    assert data["data"]["certificate"] == job["certificate"]
    assert (await _next(hub, other, other_sid)).status_code == 204, "not another's applicant"
    audited = [r for r in hub.audit_rows() if r["operation"] == "pull:certificate-issued"]
    assert [r["subject_id"] for r in audited] == [person["personal_id"]]


async def test_a_settled_payment_is_told_to_the_paying_client_only(stack):  # noqa: F811
    hub, _, payment_mock = stack
    mine, other = hub.client(), hub.client()
    sid = await _subscribe(hub, mine, "payment:settled")
    other_sid = await _subscribe(hub, other, "payment:settled")
    payment = (await open_payment(hub, mine)).json()["data"]
    settled = await mock_call(
        payment_mock,
        "POST",
        f"/_mock/payments/{payment['transaction_id']}/settle",
        json={"outcome": "success"},
    )
    assert settled.status_code == 200
    await wait_status(hub, mine, payment["id"], "paid")
    event = await _next(hub, mine, sid)
    assert event.status_code == 200, event.text
    data = event.json()["data"]["data"]
    assert (data["id"], data["status"], data["amount"]) == (payment["id"], "paid", 200000)
    assert "payer_personal_id" not in data and "payer_name" not in data
    assert (await _next(hub, other, other_sid)).status_code == 204
