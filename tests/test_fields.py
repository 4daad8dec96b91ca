"""Field-level policy: a client receives only the canonical fields granted to it, through
every route (resource, generic, profile), nested objects and lists included; a client
allowed only `verify` never receives personal data at all. The hub's own views (a judicial
request's job, a payment) are cut the same, in the routes' answers and in the webhooks,
while the hub itself still reads upstream's whole answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select, text

from hub.core.models import WebhookDelivery
from hub.security.fields import check_field_grants, parse_field_grant, paths_of, trim, trim_view
from mocks.data import load_citizens
from tests.conftest import RunningHub
from tests.core.fakes import WebhookReceiver
from tests.test_async_e2e import ORDER, mock_call, open_payment, receiver, stack, wait_status  # noqa: F401
from tests.test_services_e2e import applicants, wait_final

CITIZEN = next(c for c in load_citizens() if c.marital_status == "married")
NAME_AND_PROVINCE = {
    "population": ["full_name", "date_of_birth", "permanent_address.province_code"],
}


async def test_a_client_receives_only_its_granted_fields(hub: RunningHub) -> None:
    trimmed, full = hub.client(fields=NAME_AND_PROVINCE), hub.client()
    url = f"/v1/citizens/{CITIZEN.personal_id}"
    answer = await hub.http.get(url, headers=hub.headers(trimmed))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "full_name": CITIZEN.full_name,
        "date_of_birth": CITIZEN.date_of_birth.isoformat(),
        "permanent_address": {"province_code": CITIZEN.permanent_address.province_code},
    }
    everything = (await hub.http.get(url, headers=hub.headers(full))).json()["data"]
    assert {"father", "household", "ethnicity_code"} <= set(everything)

    generic = await hub.http.post(
        "/v1/services/population/lookup",
        json={"personal_id": CITIZEN.personal_id},
        headers=hub.headers(trimmed),
    )
    assert generic.json()["data"] == answer.json()["data"]

    profile = (await hub.http.get(f"{url}/profile", headers=hub.headers(trimmed))).json()
    assert profile["data"]["citizen"]["data"] == answer.json()["data"]
    assert profile["data"]["civil_status"]["data"]["records"]  # no grant there: in full


async def test_lists_are_cut_element_by_element(hub: RunningHub) -> None:
    key = hub.client(fields={"civil-status": ["records.kind", "records.registered_on"]})
    answer = await hub.http.get(
        f"/v1/civil-status/records?personal_id={CITIZEN.personal_id}", headers=hub.headers(key)
    )
    assert answer.status_code == 200, answer.text
    records = answer.json()["data"]["records"]
    assert records and all(set(r) == {"kind", "registered_on"} for r in records)
    assert set(answer.json()["data"]) == {"records"}


async def test_a_verify_only_client_never_receives_personal_data(hub: RunningHub) -> None:
    key = hub.client(allow=["population:verify"])
    stated = {
        "personal_id": CITIZEN.personal_id,
        "full_name": "Someone Else",
        "date_of_birth": CITIZEN.date_of_birth.isoformat(),
    }
    answer = await hub.http.post("/v1/citizens/verify", json=stated, headers=hub.headers(key))
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert CITIZEN.full_name not in text and CITIZEN.permanent_address.detail not in text
    assert answer.json()["data"]["match"] is False
    lookup = await hub.http.get(f"/v1/citizens/{CITIZEN.personal_id}", headers=hub.headers(key))
    assert lookup.status_code == 403


def test_trim_keeps_whole_what_is_granted_whole():
    data = {"a": {"x": 1, "y": 2}, "b": [{"k": 1, "v": 2}, {"k": 3, "v": 4}], "c": 5}
    assert trim(data, ["a.x", "b.k"]) == {"a": {"x": 1}, "b": [{"k": 1}, {"k": 3}]}
    assert trim(data, ["a", "a.x"]) == {"a": {"x": 1, "y": 2}}  # "a" whole wins
    assert trim(data, ["a.x", "a"]) == {"a": {"x": 1, "y": 2}}
    assert trim({"a": None}, ["a.x"]) == {"a": None}


def test_grants_are_checked_against_what_services_answer():
    from adapters.population import PopulationAdapter

    outputs = {"population": [s.output_model for s in PopulationAdapter.operations.values()]}
    check_field_grants({"population": ["full_name", "household.head.full_name"]}, outputs)
    with pytest.raises(ValueError, match="answers no field 'colour'"):
        check_field_grants({"population": ["colour"]}, outputs)
    with pytest.raises(ValueError, match=r"answers no field 'full_name\.first'"):
        check_field_grants({"population": ["full_name.first"]}, outputs)
    with pytest.raises(ValueError, match="no service named 'weather'"):
        check_field_grants({"weather": ["x"]}, outputs)
    assert parse_field_grant("population: full_name, gender") == (
        "population",
        ["full_name", "gender"],
    )
    with pytest.raises(ValueError):
        parse_field_grant("population")


def test_hub_clients_create_refuses_a_field_no_service_answers(tmp_path):
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db"}
    hub = [sys.executable, "-m", "hub.cli", "clients", "create"]
    ok = subprocess.run(
        [*hub, "tax", "--allow", "population", "--fields", "population:full_name,gender"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*hub, "tax2", "--allow", "population", "--fields", "population:salary"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0 and "answers no field 'salary'" in bad.stderr


def test_a_view_keeps_the_hubs_keys_and_cuts_upstreams():
    view = {"id": "job_1", "status": "issued", "ref": "R1", "cert": {"n": 1, "pdf": "…"}, "new": 1}
    kw = {"hub_keys": {"id", "status"}, "renamed": {"ref": "reference"}}
    assert trim_view(view, None, **kw) == view
    assert trim_view(view, ["status"], **kw) == {"id": "job_1", "status": "issued"}
    assert trim_view(view, ["reference", "cert.n"], **kw) == {
        "id": "job_1",
        "status": "issued",
        "ref": "R1",
        "cert": {"n": 1},
    }
    assert trim_view(view, (), **kw) == {"id": "job_1", "status": "issued"}  # nothing granted


# -- the hub's own views: judicial-records jobs, payments, their webhooks ---------------------

ONLY_STATUS = {"judicial-records": ["reference", "status"]}
CERTIFICATE_NUMBER = {
    "judicial-records": ["status", "certificate.number", "certificate.has_criminal_record"]
}
HOOK = "http://agency.test/hook"


def audited_fields(hub: RunningHub, operation: str | None = None) -> list[list[str] | None]:
    rows = hub.audit_rows()
    return [
        None if r["fields"] is None else json.loads(r["fields"])
        for r in rows
        if operation is None or r["operation"] == operation
    ]


def outbox(hub: RunningHub) -> list[dict[str, Any]]:
    with hub.hub.engine.connect() as conn:
        # through the column's type: the payload is sealed at rest (hub.core.sealed)
        rows = conn.execute(select(WebhookDelivery.__table__.c.payload)).all()
    return [json.loads(row.payload) for row in rows]


def webhooks(hook: WebhookReceiver) -> dict[str, dict[str, Any]]:
    """The webhooks received, by the id of the job or payment they are about."""
    return {json.loads(raw)["data"]["id"]: json.loads(raw)["data"] for _, raw in hook.received}


async def test_a_judicial_request_is_cut_to_the_grant_in_its_view_and_webhook(
    stack,  # noqa: F811
    receiver,  # noqa: F811
) -> None:
    """The certificate (convictions, PDF) reaches only a client granted it, by the job's
    view and by the webhook alike; the outbox never holds what the client may not see."""
    hub, judicial, _ = stack
    convicted = (await applicants({"judicial-records": judicial}))["convictions"]
    body = {**convicted, "certificate_type": 1, "purpose_code": "01", "callback_url": HOOK}
    keys = {
        "status": hub.client(allow=["judicial-records"], fields=ONLY_STATUS),
        "number": hub.client(allow=["judicial-records"], fields=CERTIFICATE_NUMBER),
        "full": hub.client(allow=["judicial-records"]),
    }
    jobs, views, clients = {}, {}, {}
    for name, key in keys.items():
        submitted = await hub.http.post(
            "/v1/judicial-records/requests", json=body, headers=hub.headers(key)
        )
        assert submitted.status_code == 202, submitted.text
        jobs[name] = submitted.json()["data"]["id"]
        request_id = submitted.json()["meta"]["request_id"]
        [clients[name]] = {
            r["client_id"] for r in hub.audit_rows() if r["request_id"] == request_id
        }
    for name, key in keys.items():
        views[name] = await wait_final(hub, key, jobs[name])
    await hub.hub.worker.run_once()
    sent = webhooks(receiver)
    bookkeeping = {"id", "service", "status", "final", "submitted_at", "updated_at"}

    cut = views["status"]
    assert cut["status"] == "issued" and cut["upstream_reference"]
    assert bookkeeping | {"upstream_reference"} <= set(cut)
    assert not {"certificate", "rejection_reason"} & set(cut)
    assert sent[jobs["status"]] == cut

    number = views["number"]
    assert set(number["certificate"]) == {"number", "has_criminal_record"}
    assert number["certificate"]["has_criminal_record"] is True
    assert "upstream_reference" not in number  # `reference` not granted
    assert sent[jobs["number"]] == number

    full = views["full"]
    assert full["certificate"]["convictions"][0]["offence"] and full["certificate"]["pdf_base64"]
    assert sent[jobs["full"]] == full

    stored = {payload["data"]["id"]: payload["data"] for payload in outbox(hub)}
    assert stored[jobs["status"]] == cut and stored[jobs["number"]] == number
    assert "convictions" not in str(stored[jobs["number"]])

    # The audit records what went out: the reads list their views' fields; the hub's own
    # calls (the submission, any poll) went to no client and list none.
    disclosed: dict[str, set[str]] = {name: set() for name in keys}
    for row in hub.audit_rows():
        if row["fields"] is not None:
            disclosed[next(n for n, c in clients.items() if c == row["client_id"])].update(
                json.loads(row["fields"])
            )
    assert disclosed["status"] == set(paths_of(cut))
    assert disclosed["number"] == set(paths_of(number))
    assert "certificate.convictions.offence" in disclosed["full"]
    assert all(fields is None for fields in audited_fields(hub, "submit"))

    # Each webhook is audited as the answer it is: under its client, with its delivery id as
    # the request id, the person it concerns and the fields it carried.
    delivery = {json.loads(raw)["data"]["id"]: h["x-hub-delivery"] for h, raw in receiver.received}
    for name, job_id in jobs.items():
        [row] = [r for r in hub.audit_rows() if r["request_id"] == delivery[job_id]]
        assert (row["service"], row["operation"]) == ("judicial-records", "webhook")
        assert (row["status"], row["code"]) == (200, "OK")
        assert row["client_id"] == clients[name]
        assert row["subject_id"] == convicted["personal_id"]
        assert row["purpose"] == "test"  # the one stated with the request
        assert json.loads(row["fields"]) == paths_of(sent[job_id])


async def test_a_read_is_audited_with_the_fields_it_returned(stack) -> None:  # noqa: F811
    hub, judicial, _ = stack
    convicted = (await applicants({"judicial-records": judicial}))["convictions"]
    body = {**convicted, "certificate_type": 1, "purpose_code": "01"}
    for grant in (CERTIFICATE_NUMBER, ONLY_STATUS, None):
        key = hub.client(allow=["judicial-records"], fields=grant)
        submitted = await hub.http.post(
            "/v1/judicial-records/requests", json=body, headers=hub.headers(key)
        )
        assert submitted.status_code == 202, submitted.text
        assert audited_fields(hub)[-1] == paths_of(submitted.json()["data"])
        view = await wait_final(hub, key, submitted.json()["data"]["id"])
        # the last read's record (upstream's push may be recorded after it: the read can see
        # the job final between the push's commit and the push's own audit record)
        assert audited_fields(hub, "status")[-1] == paths_of(view)
        certificate = [p for p in paths_of(view) if p.startswith("certificate.")]
        if grant is ONLY_STATUS:
            assert certificate == []
        elif grant is CERTIFICATE_NUMBER:
            assert certificate == ["certificate.has_criminal_record", "certificate.number"]
        else:
            assert "certificate.pdf_base64" in certificate


async def test_a_grant_without_what_the_hub_needs_does_not_break_it(
    stack,  # noqa: F811
    receiver,  # noqa: F811
) -> None:
    """The hub reads upstream's `reference` (a submission), `transaction_id` and `pay_url`
    (a payment) whatever the client may see of them."""
    hub, judicial, payment_mock = stack
    clean = (await applicants({"judicial-records": judicial}))["clean"]
    key = hub.client(allow=["judicial-records", "payment"], fields={
        "judicial-records": ["status"], "payment": ["status"],
    })  # fmt: skip
    body = {**clean, "certificate_type": 1, "purpose_code": "01"}
    submitted = await hub.http.post(
        "/v1/judicial-records/requests", json=body, headers=hub.headers(key)
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["data"]["id"]
    assert "upstream_reference" not in submitted.json()["data"]
    assert (await wait_final(hub, key, job_id))["status"] == "issued"
    with hub.hub.engine.connect() as conn:
        reference = conn.execute(
            text("SELECT upstream_reference FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
    assert reference  # followed by upstream's reference the client was not given

    opened = await open_payment(hub, key, callback_url=HOOK)
    assert opened.status_code == 201, opened.text
    payment = opened.json()["data"]
    assert payment["status"] == "pending" and payment["amount"] == ORDER["amount"]
    assert not {"transaction_id", "pay_url"} & set(payment)
    again = await open_payment(hub, key, callback_url=HOOK)  # the replay is cut the same
    assert again.status_code == 200 and again.json()["data"] == payment
    with hub.hub.engine.connect() as conn:
        transaction_id, pay_url = conn.execute(
            text("SELECT transaction_id, pay_url FROM payments WHERE id = :id"),
            {"id": payment["id"]},
        ).one()
    assert pay_url.endswith(f"/pay/{transaction_id}")
    settled = await mock_call(
        payment_mock,
        "POST",
        f"/_mock/payments/{transaction_id}/settle",
        json={"outcome": "success"},
    )
    assert settled.status_code == 200, settled.text
    paid = await wait_status(hub, key, payment["id"], "paid")
    assert paid["paid_at"] and not {"transaction_id", "pay_url"} & set(paid)
    await hub.hub.worker.run_once()
    assert webhooks(receiver)[payment["id"]] == paid


async def test_a_payment_and_its_receipt_are_cut_to_the_grant(
    stack,  # noqa: F811
    receiver,  # noqa: F811
) -> None:
    hub, _, payment_mock = stack
    key = hub.client(allow=["payment"], fields={"payment": ["pay_url", "number"]})
    full_key = hub.client(allow=["payment"])
    opened = await open_payment(hub, key, callback_url=HOOK)
    assert opened.status_code == 201, opened.text
    payment = opened.json()["data"]
    assert payment["pay_url"] and "transaction_id" not in payment
    full = (await open_payment(hub, full_key, callback_url=HOOK)).json()["data"]
    assert full["transaction_id"] and full["pay_url"]

    transaction_id = payment["pay_url"].rsplit("/", 1)[1]
    for tx in (transaction_id, full["transaction_id"]):
        settled = await mock_call(
            payment_mock, "POST", f"/_mock/payments/{tx}/settle", json={"outcome": "success"}
        )
        assert settled.status_code == 200, settled.text
    paid = await wait_status(hub, key, payment["id"], "paid")
    assert paid["pay_url"] == payment["pay_url"] and "transaction_id" not in paid
    assert audited_fields(hub, "get")[-1] == paths_of(paid)
    await wait_status(hub, full_key, full["id"], "paid")
    await hub.hub.worker.run_once()
    sent = webhooks(receiver)
    stored = {item["data"]["id"]: item["data"] for item in outbox(hub)}  # in no set order
    assert sent[payment["id"]] == paid and "transaction_id" not in stored[payment["id"]]
    assert sent[full["id"]]["transaction_id"] == full["transaction_id"]

    receipt = await hub.http.get(f"/v1/payments/{payment['id']}/receipt", headers=hub.headers(key))
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["data"] == {"number": receipt.json()["data"]["number"]}
    assert receipt.json()["data"]["number"].startswith("BL-")
    assert audited_fields(hub, "receipt")[-1] == ["number"]
    whole = await hub.http.get(f"/v1/payments/{full['id']}/receipt", headers=hub.headers(full_key))
    assert set(whole.json()["data"]) == {"reference", "number", "pdf_base64"}
