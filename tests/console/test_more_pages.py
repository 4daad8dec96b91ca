"""Traffic, Work in flight and Data reused, through HTTP without a browser."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re

from sqlmodel import Session

from hub.core.models import Job, Payment, WebhookDelivery
from hub.security.auth import create_client
from tests.conftest import RunningHub, eventually
from tests.console.helpers import logged_in, post_form
from tests.console.test_pages import a_subject


async def test_traffic_counts_the_last_hours_calls(hub: RunningHub, mock_apps) -> None:
    key = hub.client(purposes=["test"])
    subject = await a_subject(hub, mock_apps)
    for _ in range(3):
        assert (
            await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key))
        ).status_code == 200
    await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key, purpose="not-granted"))
    await eventually(lambda: len(hub.audit_rows()) >= 4, "the calls audited")
    client = await logged_in(hub, "vy", ["viewer"])
    async with contextlib.aclosing(client):
        page = await client.get("/console/traffic")
    assert page.status_code == 200
    services = page.text[page.text.index('id="traffic-services"') :]
    assert re.search(r"<td>population</td><td>4</td>", services)
    assert "PURPOSE_NOT_ALLOWED" in page.text[page.text.index('id="traffic-refusals"') :]
    assert 'id="traffic-data">{' in page.text and "uPlot.iife.min.js" in page.text


def _queue_rows(hub: RunningHub) -> None:
    now = dt.datetime.now(dt.UTC)
    with Session(hub.hub.engine) as session:
        session.add(
            Job(
                id="jb_1",
                service="judicial-records",
                client_id="cl_x",
                status="processing",
                subject_id="001099012345",
                dossier_id="HS-9",
            )
        )
        session.add(
            Payment(
                id="pm_1",
                service="payment",
                client_id="cl_x",
                idempotency_key="k",
                request_hash="h",
                status="pending",
                amount=50000,
                description="Lệ phí",
                procedure_code="1.001",
                dossier_id="HS-9",
                created_at=now,
            )
        )
        session.add(
            WebhookDelivery(
                id="wh_1",
                client_id="cl_x",
                url="https://agency.example/hook",
                event="job.final",
                payload="{}",
                attempts=3,
                last_status=500,
            )
        )
        session.commit()


async def test_work_in_flight_lists_the_queues_and_reconciles_a_day(hub: RunningHub) -> None:
    _queue_rows(hub)
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        page = await client.get("/console/work")
        assert page.status_code == 200
        for queue, row_id in (("jobs", "jb_1"), ("payments", "pm_1"), ("webhooks", "wh_1")):
            assert f'id="count-{queue}">(1)' in page.text and row_id in page.text
        assert "001099012345" not in page.text  # the job's subject is not shown
        today = dt.datetime.now(dt.UTC).date().isoformat()
        report = await post_form(
            client,
            "/console/work",
            "/console/work/reconcile",
            {"provider": "payment", "date": today},
        )
        assert report.status_code == 200 and 'id="reconciliation"' in report.text
        bad = await post_form(
            client,
            "/console/work",
            "/console/work/reconcile",
            {"provider": "payment", "date": "soon"},
        )
        assert bad.status_code == 400
    await eventually(
        lambda: any(
            r["operation"] == "reconcile" and r["service"] == "console" for r in hub.audit_rows()
        ),
        "the reconciliation audited",
    )
    viewer = await logged_in(hub, "vy", ["viewer"])
    async with contextlib.aclosing(viewer):
        assert (await viewer.get("/console/work")).status_code == 403


async def test_data_reused_counts_lookups_by_procedure_agency_and_system(
    hub: RunningHub, mock_apps
) -> None:
    _queue_rows(hub)  # the payment names dossier HS-9's procedure, 1.001
    issued = create_client(
        hub.hub.engine,
        hub.settings.secret_key.get_secret_value().encode(),
        name="mot-cua",
        agency="=HYPERLINK(1)",
        allow=["*"],
        purposes=["test"],
    )
    subject = await a_subject(hub, mock_apps)
    for dossier in ("HS-9", "HS-9", "HS-10"):
        headers = hub.headers(issued.api_key, **{"x-dossier-id": dossier})
        assert (await hub.http.get(f"/v1/citizens/{subject}", headers=headers)).status_code == 200
    bad = hub.headers(issued.api_key, purpose="nope", **{"x-dossier-id": "HS-11"})
    await hub.http.get(f"/v1/citizens/{subject}", headers=bad)
    await eventually(lambda: len(hub.audit_rows()) >= 4, "audited")
    client = await logged_in(hub, "vy", ["viewer"])
    async with contextlib.aclosing(client):
        page = await client.get("/console/reused")
        exported = await client.get("/console/reused.csv")
        refused = await client.get("/console/reused?since=2020-01-01&until=2026-12-31")
    assert page.status_code == 200 and "<strong>3</strong>" in page.text
    assert 'id="reused-share">66.7 %' in page.text  # HS-9 and HS-10 of HS-9, HS-10, HS-11
    assert "<td>1.001</td><td>2</td>" in page.text and "<td>population</td><td>3</td>" in page.text
    assert refused.status_code == 400
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sum(int(r["reused"]) for r in rows) == 3
    assert {r["agency"] for r in rows} == {"'=HYPERLINK(1)"}  # not a formula in a spreadsheet
    assert {r["procedure"] for r in rows} == {"1.001", ""}
