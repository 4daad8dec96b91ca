"""The hub killed mid-load: a mix of calls (citizen look-ups, payments with unique
Idempotency-Keys, judicial certificate requests) at some concurrency; the hub's process group
is SIGKILLed in the middle and restarted on the same database. Then the accepted judicial
requests are polled until final and each payment's key is replayed; bench/faults_kill_report.py
checks what that left.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from typing import Any

from bench.common import fetch_ids, get_json
from bench.faults_cluster import Cluster, cluster
from bench.faults_kill_report import kill_report
from bench.faults_load import Answer, call, headers_for, session
from bench.faults_report import counts


def kill_scenario(
    *,
    calls: int = 1000,
    concurrency: int = 16,
    kill_after: float = 0.5,
    database_url: str | None = None,
    processing_s: float = 3.0,
    job_timeout_s: float = 90.0,
    hub_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """SIGKILL the hub after `kill_after` of the calls were answered; restart it on the same
    database; check the audit trail, the payments and the jobs."""
    services = ["population", "judicial-records", "payment"]
    env = {"HUB_JOB_POLL_INITIAL_S": "1", "HUB_WORKER_INTERVAL_S": "0.5", **(hub_env or {})}
    with cluster(services, database_url=database_url, hub_env=env) as c:
        c.mock_options = {
            "judicial-records": {
                "processing_s": processing_s,
                "push_url": f"{c.hub}/v1/judicial-records/results",
            },
            "payment": {"public_url": c.mock("payment"), "ipn_url": f"{c.hub}/v1/payments/ipn"},
        }
        client = c.start(["population", "payment", "judicial-records"])
        return asyncio.run(_kill(c, client, calls, concurrency, kill_after, job_timeout_s))


def _plan(c: Cluster, run: str, calls: int) -> list[tuple[Answer, str, str, Any]]:
    """The calls, in order: 12 of 20 citizen look-ups, 5 payments, 3 judicial requests."""
    citizens = fetch_ids(c.mock("population"), 500)
    applicants = [
        {k: v for k, v in r.items() if k != "expected"}
        for r in get_json(f"{c.mock('judicial-records')}/_mock/records?limit=200")["records"]
        if r["expected"] != "rejected"
    ]
    payers = get_json(f"{c.mock('payment')}/_mock/records?limit=100")["records"]
    plan: list[tuple[Answer, str, str, Any]] = []
    for i in range(calls):
        rid = f"{run}-{i:05d}"
        slot = i % 20
        if slot < 12:
            pid = citizens[i % len(citizens)]
            plan.append((Answer("citizen", rid, 0), "GET", f"/v1/citizens/{pid}", None))
        elif slot < 17:
            payer = payers[i % len(payers)]
            body = {
                "amount": payer["amount"],
                "description": payer["procedure_name"],
                "procedure_code": payer["procedure_code"],
                "dossier_id": f"HS-{run}-{i}",
                "payer_name": payer["payer_name"],
                "payer_personal_id": payer["payer_personal_id"],
            }
            answer = Answer("payment", rid, 0, key=f"{run}-pay-{i:05d}")
            plan.append((answer, "POST", "/v1/payments", body))
        else:
            applicant = applicants[i % len(applicants)]
            body = {**applicant, "certificate_type": 1, "purpose_code": "01"}
            plan.append((Answer("judicial", rid, 0), "POST", "/v1/judicial-records/requests", body))
    return plan


async def _kill(
    c: Cluster,
    client: dict[str, str],
    calls: int,
    concurrency: int,
    kill_after: float,
    job_timeout_s: float,
) -> dict[str, Any]:
    run = secrets.token_hex(4)
    plan = _plan(c, run, calls)
    headers = headers_for(client["api_key"])
    bodies = {a.request_id: body for a, _, _, body in plan}
    answered = 0
    kill_at = max(1, int(calls * kill_after))
    up = asyncio.Event()
    up.set()
    trigger = asyncio.Event()
    restarted = False
    next_call = 0
    event: dict[str, Any] = {}
    started = time.perf_counter()

    async with session(concurrency) as http:

        async def worker() -> None:
            nonlocal answered, next_call
            while True:
                await up.wait()
                if next_call >= len(plan):
                    return
                answer, method, path, body = plan[next_call]
                next_call += 1
                answer.sent, answer.restarted = time.perf_counter() - started, restarted
                h = headers if answer.key is None else {**headers, "idempotency-key": answer.key}
                await call(http, method, c.hub + path, answer, headers=h, body=body)
                answered += 1
                if answered == kill_at:
                    up.clear()  # no new call until the hub is back
                    trigger.set()

        async def killer() -> None:
            nonlocal restarted
            await trigger.wait()
            t0 = time.monotonic()
            c.kill_hub()
            event["killed_at_answers"] = answered
            event["in_flight_at_kill"] = sum(
                1 for a, *_ in plan[:next_call] if a.status is None and a.error is None
            )
            event["jobs_at_kill"] = await asyncio.to_thread(
                c.query,
                "SELECT id, status, final FROM jobs WHERE client_id = :cid",
                cid=client["client_id"],
            )
            [chain] = await asyncio.to_thread(
                c.query,
                "SELECT (SELECT MAX(id) FROM audit_records) AS last_record, "
                "(SELECT MAX(record_id) FROM audit_checkpoints) AS last_checkpoint",
            )
            event["unsigned_tail"] = (chain["last_record"] or 0) - (chain["last_checkpoint"] or 0)
            event["verify_after_kill"] = await asyncio.to_thread(c.audit_verify)
            await asyncio.to_thread(c.start_hub)
            event["hub_down_s"] = round(time.monotonic() - t0, 2)
            restarted = True
            up.set()

        await asyncio.gather(killer(), *(worker() for _ in range(concurrency)))
        load_s = time.perf_counter() - started
        answers = [a for a, *_ in plan]

        # Judicial requests accepted (202), before or after the kill: all must end final.
        jobs = {a.data_id: a for a in answers if a.kind == "judicial" and a.status == 202}
        at_kill = {row["id"]: row for row in event["jobs_at_kill"]}
        pending_at_kill = [j for j in jobs if j in at_kill and not at_kill[j]["final"]]
        final: dict[str, str] = {}
        t0 = time.monotonic()
        poll = 0
        while len(final) < len(jobs) and time.monotonic() - t0 < job_timeout_s:
            for job_id in [j for j in jobs if j not in final]:
                poll += 1
                seen = await call(
                    http,
                    "GET",
                    f"{c.hub}/v1/judicial-records/requests/{job_id}",
                    Answer("poll", f"{run}p-{poll}", 0),
                    headers=headers,
                )
                if seen.status == 200 and seen.data is not None and seen.data["final"]:
                    final[job_id] = seen.data["status"]
            if len(final) < len(jobs):
                await asyncio.sleep(0.5)
        jobs_final_s = round(time.monotonic() - t0, 2)

        # Payments: one per Idempotency-Key at the hub and at the platform; a replay of each
        # key (same body) answers the same payment.
        payments = [a for a in answers if a.kind == "payment"]
        before = _payment_counts(c, client["client_id"])
        replays = []
        for n, first in enumerate(payments):
            again = Answer("payment", f"{run}r-{n:05d}", 0, key=first.key)
            h = {**headers, "idempotency-key": first.key or ""}
            body = bodies[first.request_id]
            replays.append(
                await call(http, "POST", f"{c.hub}/v1/payments", again, headers=h, body=body)
            )
        after = _payment_counts(c, client["client_id"])

    records = c.audit_records(f"{run}-")
    upstream_requests = get_json(f"{c.mock('judicial-records')}/_mock/requests?limit=1000")
    c.stop_hub()  # SIGTERM: signs a checkpoint at shutdown
    verify_end = c.audit_verify()
    return kill_report(
        calls=calls,
        concurrency=concurrency,
        load_s=load_s,
        event=event,
        answers=answers,
        records=records,
        jobs=jobs,
        pending_at_kill=pending_at_kill,
        final=final,
        jobs_final_s=jobs_final_s,
        job_timeout_s=job_timeout_s,
        payments=payments,
        replays=replays,
        before=before,
        after=after,
        all_jobs=c.query(
            "SELECT id, status, final FROM jobs WHERE client_id = :cid", cid=client["client_id"]
        ),
        verify_end=verify_end,
        upstream_requests={r["maHoSoMCDT"]: r for r in upstream_requests["requests"]},
    )


def _payment_counts(c: Cluster, client_id: str) -> dict[str, Any]:
    rows = c.query(
        "SELECT idempotency_key, id, status FROM payments WHERE client_id = :cid", cid=client_id
    )
    per_key = Counter(row["idempotency_key"] for row in rows)
    upstream = get_json(f"{c.mock('payment')}/_mock/payments")["payments"]
    per_reference = Counter(p["reference"] for p in upstream)
    ours = {row["id"] for row in rows}
    return {
        "rows": {row["idempotency_key"]: row for row in rows},
        "hub_rows_per_key_max": max(per_key.values(), default=0),
        "upstream_per_payment_max": max(per_reference.values(), default=0),
        "upstream_unknown_to_hub": sorted(set(per_reference) - ours),
        "upstream_references": per_reference,
        "statuses": counts(row["status"] for row in rows),
    }
