"""The hub's job machinery for asynchronous services: submit, push, poll, restart, webhooks.

A fake judicial-records adapter holds upstream's state in memory, so every step is chosen
by the test; the real adapter against its mock is tested in test_judicial_records_*.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from hub.capabilities.webhooks import verify, webhook_secret
from hub.core.config import Settings
from hub.core.models import Job
from hub.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.conftest import RunningHub, running_hub
from tests.core import fakes
from tests.core.fakes import FakeJudicialAdapter, WebhookReceiver, push_signature

APPLICATION = {
    "certificate_type": 1,
    "purpose_code": "01",
    "personal_id": "001085012345",
    "full_name": "Nguyễn Văn An",
    "gender": "male",
    "date_of_birth": "1985-03-02",
    "permanent_address": "Số 1 Tràng Tiền, Hà Nội",
}


@pytest.fixture
def upstream() -> fakes.FakeUpstream:
    return fakes.reset()


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def hub(settings: Settings, receiver: WebhookReceiver) -> AsyncIterator[RunningHub]:
    settings.webhook_initial_backoff_s = 0
    settings.adapters = {"judicial-records": {"base_url": "http://unused.test"}}
    async with running_hub(
        settings,
        adapters=[FakeJudicialAdapter],
        webhook_transport=httpx.ASGITransport(app=receiver.app()),
    ) as running:
        yield running


async def submit(
    hub: RunningHub, key: str, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return await hub.http.post(
        "/v1/judicial-records/requests",
        json=APPLICATION if body is None else body,
        headers=hub.headers(key, **headers),
    )


async def push(
    hub: RunningHub, payload: dict[str, Any], *, signature: str | None = None
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await hub.http.post(
        "/v1/judicial-records/results",
        content=body,
        headers={"x-signature": signature if signature is not None else push_signature(body)},
    )


def job_rows(hub: RunningHub) -> list[dict[str, Any]]:
    with hub.hub.engine.connect() as conn:
        # through the table's column types: `result` is sealed at rest (hub.core.sealed)
        return [dict(r) for r in conn.execute(select(Job.__table__)).mappings()]


def make_due(hub: RunningHub) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with hub.hub.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET next_poll_at = :t"), {"t": past})


async def test_submit_answers_202_with_a_job_the_client_can_read(hub, upstream) -> None:
    key = hub.client()
    response = await submit(hub, key, **{"x-dossier-id": "HS-1"})
    assert response.status_code == 202
    job = response.json()["data"]
    assert job["id"].startswith("job_") and job["status"] == "received" and not job["final"]
    assert response.headers["location"] == f"/v1/judicial-records/requests/{job['id']}"
    assert response.json()["meta"]["operation"] == "submit"

    read = await hub.http.get(response.headers["location"], headers=hub.headers(key))
    assert read.status_code == 200
    assert read.json()["data"]["upstream_reference"] == "REF0001"
    rows = hub.audit_rows()
    # The upstream call, the agency's application around it, then the read.
    assert [(r["operation"], r["status"]) for r in rows] == [
        ("submit", 200),
        ("request", 202),  # what the client was answered (issue 18, finding 6)
        ("status", 200),
    ]
    assert rows[0]["subject_id"] == APPLICATION["personal_id"]
    assert rows[1]["subject_id"] == APPLICATION["personal_id"]
    assert rows[0]["dossier_id"] == "HS-1"


async def test_another_client_cannot_see_the_job(hub, upstream) -> None:
    job = (await submit(hub, hub.client())).json()["data"]
    other = hub.client()
    read = await hub.http.get(
        f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(other)
    )
    assert read.status_code == 404
    assert read.json()["code"] == "NOT_FOUND"


async def test_refused_submission_leaves_no_job(hub, upstream) -> None:
    upstream.submit_error = UpstreamRejected()
    response = await submit(hub, hub.client())
    assert response.status_code == 502
    assert job_rows(hub) == []
    assert upstream.submits == 1  # not idempotent: never retried


async def test_refusals_before_upstream_write_nothing(hub, upstream) -> None:
    key = hub.client()
    no_purpose = await hub.http.post(
        "/v1/judicial-records/requests", json=APPLICATION, headers=hub.headers(key, purpose=None)
    )
    assert no_purpose.status_code == 400 and no_purpose.json()["code"] == "PURPOSE_REQUIRED"
    bad_url = await submit(hub, key, {**APPLICATION, "callback_url": "ftp://agency.test/x"})
    assert bad_url.status_code == 400 and bad_url.json()["code"] == "INVALID_CALLBACK_URL"
    bad_id = await submit(hub, key, {**APPLICATION, "personal_id": "999085012345"})
    assert bad_id.status_code == 400 and bad_id.json()["code"] == "INVALID_PERSONAL_ID"
    anonymous = await hub.http.post("/v1/judicial-records/requests", json=APPLICATION)
    assert anonymous.status_code == 401
    assert upstream.submits == 0
    assert job_rows(hub) == []


async def test_push_completes_the_job_and_signs_a_webhook(hub, upstream, receiver) -> None:
    key = hub.client()
    body = {**APPLICATION, "callback_url": "http://agency.test/hook"}
    job = (await submit(hub, key, body)).json()["data"]
    result = {"reference": "REF0001", "status": "issued", "certificate": fakes.CERTIFICATE}
    pushed = await push(hub, result)
    assert pushed.status_code == 200
    assert pushed.json()["data"] == {"id": job["id"], "status": "issued", "applied": True}

    read = (
        await hub.http.get(f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(key))
    ).json()["data"]
    assert read["status"] == "issued" and read["final"] and read["completed_at"]
    assert read["certificate"]["number"] == "25HN2013/00001"

    assert await hub.hub.worker.run_once() == 1
    [(headers, raw)] = receiver.received
    client_id = hub.audit_rows()[0]["client_id"]
    secret = webhook_secret(hub.settings.secret_key.get_secret_value().encode(), client_id)
    assert verify(secret, raw, headers["x-hub-signature"])
    assert not verify(secret, raw + b" ", headers["x-hub-signature"])
    event = json.loads(raw)
    assert headers["x-hub-event"] == event["event"] == "judicial-records.request.completed"
    assert event["data"]["certificate"]["number"] == "25HN2013/00001"

    # The same push again (upstream retrying) changes nothing and sends nothing.
    again = await push(hub, result)
    assert again.status_code == 200 and again.json()["data"]["applied"] is False
    await hub.hub.worker.run_once()
    assert len(receiver.received) == 1


async def test_forged_or_unknown_pushes_change_nothing(hub, upstream) -> None:
    key = hub.client()
    job = (await submit(hub, key)).json()["data"]
    forged = await push(hub, {"reference": "REF0001", "status": "rejected"}, signature="0" * 64)
    assert forged.status_code == 401 and forged.json()["code"] == "INVALID_SIGNATURE"
    unknown = await push(hub, {"reference": "NOPE", "status": "issued"})
    assert unknown.status_code == 404
    read = (
        await hub.http.get(f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(key))
    ).json()["data"]
    assert read["status"] == "received"


async def test_polling_finishes_a_job_when_no_push_comes(hub, upstream) -> None:
    key = hub.client()
    job = (await submit(hub, key)).json()["data"]
    assert await hub.hub.worker.run_once() == 0  # not due yet
    upstream.requests["REF0001"] = "processing"
    make_due(hub)
    await hub.hub.worker.run_once()
    assert job_rows(hub)[0]["status"] == "processing"
    upstream.requests["REF0001"] = "issued"
    make_due(hub)
    await hub.hub.worker.run_once()
    [row] = job_rows(hub)
    assert row["status"] == "issued" and row["final"] and row["next_poll_at"] is None
    read = (
        await hub.http.get(f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(key))
    ).json()["data"]
    assert read["certificate"]["has_criminal_record"] is False
    polls = [
        r
        for r in hub.audit_rows()
        if r["operation"] == "status" and r["request_id"].startswith(job["id"])
    ]
    assert len(polls) == 2 and all(
        r["client_id"] == hub.audit_rows()[0]["client_id"] for r in polls
    )


async def test_a_failing_poll_backs_off_and_keeps_the_job(hub, upstream) -> None:
    await submit(hub, hub.client())
    upstream.status_error = UpstreamUnavailable()
    make_due(hub)
    before = dt.datetime.now(dt.UTC)
    await hub.hub.worker.run_once()
    with Session(hub.hub.engine) as session:
        [row] = session.exec(select(Job)).all()
    assert row.status == "received" and not row.final and row.poll_attempts == 1
    assert row.next_poll_at is not None
    next_poll = (
        row.next_poll_at if row.next_poll_at.tzinfo else row.next_poll_at.replace(tzinfo=dt.UTC)
    )
    assert next_poll > before


async def test_a_submission_interrupted_by_a_stop_waits_unconfirmed_then_fails(
    hub, upstream
) -> None:
    """A hub stopped mid-submit: upstream may have the application, so the job waits for
    upstream's push as `unconfirmed`; with none by HUB_JOB_UNCONFIRMED_S it ends failed."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with hub.hub.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, service, client_id, status, final, created_at, poll_attempts) "
                "VALUES ('job_stale', 'judicial-records', 'cl_x', 'submitting', :f, :t, 0)"
            ),
            {"t": old, "f": False},
        )
    await hub.hub.worker.run_once()
    [row] = job_rows(hub)
    assert row["status"] == "unconfirmed" and not row["final"]
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    with hub.hub.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET updated_at = :t"), {"t": long_ago})
    await hub.hub.worker.run_once()
    [row] = job_rows(hub)
    assert row["status"] == "failed" and row["final"]
    result = row["result"]  # JSON: text on SQLite, already decoded on PostgreSQL
    assert (json.loads(result) if isinstance(result, str) else result) == {
        "error": "SUBMIT_INTERRUPTED"
    }


@pytest.mark.parametrize("error", [UpstreamTimeout(), UpstreamError(), UpstreamBadResponse()])
async def test_a_submission_whose_outcome_is_unknown_is_202_unconfirmed(
    hub, upstream, receiver, error
) -> None:
    """The answer to the submission was lost: upstream may have the application. The agency
    gets the job (not an error that invites a duplicate), and upstream's push, which carries
    the job id back as the portal's reference, confirms and finishes it."""
    upstream.submit_error = error
    key = hub.client()
    body = {**APPLICATION, "callback_url": "http://agency.test/hook"}
    response = await submit(hub, key, body)
    assert response.status_code == 202, response.text
    job = response.json()["data"]
    assert (job["status"], job["final"], job["error"]) == ("unconfirmed", False, error.code)
    assert job["upstream_reference"] is None
    assert upstream.submits == 1
    await hub.hub.worker.run_once()  # nothing to poll: no reference
    assert upstream.status_calls == 0
    pushed = {
        "reference": "REF0042",
        "status": "issued",
        "certificate": fakes.CERTIFICATE,
        "portal_reference": job["id"],
    }
    accepted = await push(hub, pushed)
    assert accepted.status_code == 200, accepted.text
    read = await hub.http.get(
        f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(key)
    )
    data = read.json()["data"]
    assert (data["status"], data["final"], data["upstream_reference"]) == (
        "issued",
        True,
        "REF0042",
    )
    assert "portal_reference" not in data and "error" not in data
    await hub.hub.worker.run_once()
    assert [json.loads(raw)["event"] for _, raw in receiver.received] == [
        "judicial-records.request.completed"
    ]


async def test_a_push_names_only_an_unconfirmed_job_of_its_own_service(hub, upstream) -> None:
    key = hub.client()
    job = (await submit(hub, key)).json()["data"]  # confirmed: it has upstream's reference
    stray = {"reference": "REF0099", "status": "issued", "certificate": fakes.CERTIFICATE}
    for portal_reference in (job["id"], "job_unknown", "x" * 100):
        answer = await push(hub, {**stray, "portal_reference": portal_reference})
        assert answer.status_code == 404
    [row] = job_rows(hub)
    assert row["upstream_reference"] == "REF0001" and not row["final"]


def insert_submitting(hub: RunningHub, job_id: str) -> None:
    """A job as a hub killed mid-submit leaves it: written, never answered by upstream."""
    with hub.hub.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, service, client_id, status, final, created_at, poll_attempts) "
                "VALUES (:id, 'judicial-records', 'cl_x', 'submitting', :f, :t, 0)"
            ),
            {"id": job_id, "t": dt.datetime.now(dt.UTC), "f": False},
        )


async def test_a_push_finishes_a_job_left_submitting_by_a_killed_hub(hub, upstream) -> None:
    """Found by bench/faults.py (kill -9 under load): a hub killed between writing its job
    and recording upstream's answer leaves the job `submitting`, which turns `unconfirmed`
    only after HUB_JOB_SUBMIT_STALE_S (120 s). Upstream had the application and pushes the
    result within seconds, naming the job: that push finishes it (it was refused, 404, and
    the job waited a day to end failed while upstream had issued the certificate)."""
    insert_submitting(hub, "job_cut")
    pushed = {
        "reference": "REF0042",
        "status": "issued",
        "certificate": fakes.CERTIFICATE,
        "portal_reference": "job_cut",
    }
    accepted = await push(hub, pushed)
    assert accepted.status_code == 200, accepted.text
    [row] = job_rows(hub)
    assert (row["status"], bool(row["final"]), row["upstream_reference"]) == (
        "issued",
        True,
        "REF0042",
    )


async def test_a_push_overtaking_the_answer_to_its_submission_is_not_undone(hub, upstream) -> None:
    """Upstream's push names a job whose submission's answer the hub has not recorded yet;
    recording that answer (or its loss) afterwards must not take the job back."""
    insert_submitting(hub, "job_overtaken")
    pushed = {
        "reference": "REF0042",
        "status": "issued",
        "certificate": fakes.CERTIFICATE,
        "portal_reference": "job_overtaken",
    }
    assert (await push(hub, pushed)).status_code == 200
    service = hub.hub.jobs["judicial-records"]
    view = service._submitted(
        "job_overtaken", {"reference": "REF0042", "status": "received"}, None, None
    )
    assert (view["status"], view["final"]) == ("issued", True)
    view = service._unconfirmed("job_overtaken", "UPSTREAM_TIMEOUT", None, None)
    assert (view["status"], view["final"]) == ("issued", True)
    [row] = job_rows(hub)
    assert (row["status"], bool(row["final"]), row["upstream_reference"]) == (
        "issued",
        True,
        "REF0042",
    )


async def test_webhook_retried_until_delivered(hub, upstream, receiver) -> None:
    key = hub.client()
    await submit(hub, key, {**APPLICATION, "callback_url": "http://agency.test/hook"})
    receiver.statuses = [500, 503]
    await push(hub, {"reference": "REF0001", "status": "rejected", "rejection_reason": "x"})
    for _ in range(3):
        await hub.hub.worker.run_once()
    assert len(receiver.received) == 3
    ids = {headers["x-hub-delivery"] for headers, _ in receiver.received}
    assert len(ids) == 1  # the same delivery id on every attempt: receivers dedupe on it
    with hub.hub.engine.connect() as conn:
        row = conn.execute(
            text("SELECT attempts, delivered_at, last_status FROM webhook_deliveries")
        ).one()
    assert row.attempts == 3 and row.delivered_at is not None and row.last_status == 200


async def test_restart_resumes_pending_jobs(settings: Settings, upstream) -> None:
    """A hub stopped while a request is pending; a new hub on the same database finishes it."""
    settings.adapters = {"judicial-records": {"base_url": "http://unused.test"}}
    async with running_hub(settings, adapters=[FakeJudicialAdapter]) as first:
        key = first.client()
        job = (await submit(first, key)).json()["data"]
    upstream.requests["REF0001"] = "issued"  # upstream finished while no hub was running
    settings.background_tasks = True
    settings.job_poll_initial_s = 0.05
    settings.worker_interval_s = 0.05
    async with running_hub(settings, adapters=[FakeJudicialAdapter]) as second:
        make_due(second)
        for _ in range(200):
            read = await second.http.get(
                f"/v1/judicial-records/requests/{job['id']}", headers=second.headers(key)
            )
            if read.json()["data"]["status"] == "issued":
                break
            await asyncio.sleep(0.05)
        assert read.json()["data"]["status"] == "issued"
        assert read.json()["data"]["certificate"]["number"] == "25HN2013/00001"


async def test_a_push_and_a_poll_finishing_at_once_notify_once(hub, upstream) -> None:
    """The poll read the job as unfinished; the push finishes it before the poll writes.
    The poll's change is refused, and only one webhook is queued."""
    from hub.capabilities.jobs.state import set_state
    from hub.core.models import utcnow

    key = hub.client()
    job = (
        await submit(hub, key, {**APPLICATION, "callback_url": "http://agency.test/hook"})
    ).json()["data"]
    service = hub.hub.jobs["judicial-records"]
    with Session(hub.hub.engine, expire_on_commit=False) as session:
        stale = session.get(Job, job["id"])
        assert stale is not None and not stale.final
        pushed = {
            "reference": stale.upstream_reference,
            "status": "issued",
            "certificate": fakes.CERTIFICATE,
        }
        assert (await push(hub, pushed)).status_code == 200  # meanwhile
        late = {"reference": stale.upstream_reference, "status": "rejected"}
        finals = service.final_statuses
        assert set_state(session, stale, late, utcnow(), final_statuses=finals) is False
        session.commit()
    [row] = job_rows(hub)
    assert row["status"] == "issued"
    with hub.hub.engine.connect() as conn:
        events = conn.execute(text("SELECT event FROM webhook_deliveries")).scalars().all()
    assert events == ["judicial-records.request.completed"]


async def test_refused_applications_are_audited_and_write_nothing(hub, upstream) -> None:
    key = hub.client(allow=["judicial-records:submit", "judicial-records:status"])
    bad_url = await submit(hub, key, {**APPLICATION, "callback_url": "ftp://agency.test/"})
    assert bad_url.status_code == 400 and bad_url.json()["code"] == "INVALID_CALLBACK_URL"
    too_long = await submit(hub, key, **{"x-dossier-id": "D" * 129})
    assert too_long.status_code == 400 and "X-Dossier-ID" in too_long.json()["detail"]
    no_purpose = await hub.http.post(
        "/v1/judicial-records/requests", json=APPLICATION, headers=hub.headers(key, purpose=None)
    )
    assert no_purpose.json()["code"] == "PURPOSE_REQUIRED"
    other = hub.client(allow=["population"])
    forbidden = await submit(hub, other)
    assert forbidden.status_code == 403
    assert upstream.submits == 0 and job_rows(hub) == []
    assert [(r["operation"], r["code"]) for r in hub.audit_rows()] == [
        ("request", "INVALID_CALLBACK_URL"),
        ("request", "BAD_REQUEST"),
        ("request", "PURPOSE_REQUIRED"),
        ("request", "FORBIDDEN"),
    ]


async def test_a_job_upstream_has_lost_ends_failed_instead_of_being_polled_for_ever(
    hub, upstream, receiver
) -> None:
    key = hub.client()
    body = {**APPLICATION, "callback_url": "http://agency.test/hook"}
    job = (await submit(hub, key, body)).json()["data"]
    upstream.requests.clear()  # upstream restarted and forgot it
    make_due(hub)
    await hub.hub.worker.run_once()
    assert not job_rows(hub)[0]["final"]  # just submitted: maybe upstream's own lag
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with hub.hub.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET created_at = :t"), {"t": old})
    make_due(hub)
    await hub.hub.worker.run_once()
    await hub.hub.worker.run_once()  # the webhook, on the next tick
    read = await hub.http.get(
        f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(key)
    )
    data = read.json()["data"]
    assert (data["status"], data["final"], data["error"]) == ("failed", True, "UPSTREAM_LOST")
    assert [json.loads(raw)["event"] for _, raw in receiver.received] == [
        "judicial-records.request.completed"
    ]
