"""The hub under faults: a hub killed mid-load, an upstream down, an upstream slow.

Each scenario starts real processes on free ports (the mocks it needs, then `hub serve` on a
fresh SQLite file in a temporary folder, or on `--database-url` / `HUB_DATABASE_URL`), drives
load at them, and prints what it measured and which invariants held:

- kill: a mix of calls (citizen look-ups, payments with unique Idempotency-Keys, judicial
  certificate requests) at some concurrency; the hub's process group is SIGKILLed in the
  middle and restarted on the same database. Then: every 2xx has exactly one audit record,
  no Idempotency-Key has two payments (at the hub or at the platform) and replaying each key
  answers the same payment, every accepted judicial request ends final, and
  `hub audit verify` passes, right after the kill (the tail since the last signed checkpoint
  is unsigned) and at the end.
- down: steady load on the population look-up; the mock is taken down through its run-time
  fault API (every call a SOAP server error) and brought back. Per phase: status counts,
  latency of the open circuit's 503s, time from down to open and from back up to the first
  200, and whether traffic resumed by itself; the 503s are checked, in the audit trail, not
  to have reached upstream.
- slow: the population mock at 2 s latency under load, while the business-registration
  enterprise look-up is timed before and during; the slow service's answers (200s, the
  bulkhead's fast 503s, 504s).

    python bench/faults.py                      # all three, defaults (about 2 minutes)
    python bench/faults.py kill --calls 400     # one scenario
    python bench/faults.py down --down-s 10 --json

The hub's settings come from the environment as usual (e.g. HUB_CIRCUIT_COOLDOWN_S); the
scenarios set only what wires the processes together. Exit status 1 if an invariant broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

try:  # imported by the tests as bench.faults
    from bench.common import HUB, PY, ROOT, Server, create_client, free_port, get_json, pct
except ImportError:  # run as a script: bench/common.py is beside it
    from common import HUB, PY, ROOT, Server, create_client, free_port, get_json, pct

SECRET = "bench-faults-secret-0123456789abcdef"
PURPOSE = "bench"
#: The operation each kind of call is audited under (one record per call), and the upstream
#: step inside it (at most one record per call).
OWN_OPERATION = {
    "citizen": ("population", "lookup"),
    "payment": ("payment", "create"),
    "judicial": ("judicial-records", "request"),
}
UPSTREAM_STEP = {"payment": ("payment", "init"), "judicial": ("judicial-records", "submit")}


# -- processes ---------------------------------------------------------------------------------


class Cluster:
    """The mocks a scenario needs and one hub in front of them, on free ports, torn down
    together. The hub can be killed and started again on the same database and port."""

    def __init__(
        self,
        tmp: Path,
        services: list[str],
        *,
        database_url: str | None = None,
        hub_env: dict[str, str] | None = None,
        mock_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.tmp = tmp
        self.ports = {name: free_port() for name in services}
        self.hub_port = free_port()
        self.hub = f"http://127.0.0.1:{self.hub_port}"
        url = database_url or os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{tmp}/hub.db"
        self.database_url = url
        self.env = {
            **os.environ,
            "HUB_DATABASE_URL": url,
            "HUB_SECRET_KEY": os.environ.get("HUB_SECRET_KEY", SECRET),
            "HUB_AUDIT_ARCHIVE_DIR": str(tmp / "audit-archive"),
            "HUB_ENABLED_ADAPTERS": json.dumps(services),
            **{
                f"HUB_{name.upper().replace('-', '_')}_BASE_URL": self.mock(name)
                for name in services
            },
            **(hub_env or {}),
        }
        self.mock_options = mock_options or {}
        self.mocks: list[Server] = []
        self.hub_server: Server | None = None
        self._hub_starts = 0

    def mock(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, client_allow: list[str]) -> dict[str, str]:
        """Start every mock, create the scenario's client, start the hub; returns the client."""
        for name, port in self.ports.items():
            options = {"fault_options": [], **self.mock_options.get(name, {})}
            env = {**self.env, "MOCKS_APP": name, "MOCKS_OPTIONS": json.dumps(options)}
            args = [
                *(PY, "-m", "uvicorn", "--factory", "mocks:app_from_env"),
                *("--port", str(port), "--log-level", "warning"),
            ]
            log = self.tmp / f"mock-{name}.log"
            self.mocks.append(Server(args, env, f"{self.mock(name)}/_mock/health", log).start())
        # While the mocks start: the client (which also migrates the database).
        name = f"faults-{secrets.token_hex(4)}"
        client = create_client(self.env, name, client_allow, [PURPOSE])
        self.start_hub()
        for mock in self.mocks:
            mock.wait_healthy()
        return client

    def start_hub(self) -> float:
        """Start `hub serve` and wait for /health; returns the seconds it took."""
        started = time.monotonic()
        self._hub_starts += 1
        args = [*HUB, "serve", "--port", str(self.hub_port), "--log-level", "warning"]
        log = self.tmp / f"hub-{self._hub_starts}.log"
        self.hub_server = Server(args, self.env, f"{self.hub}/health", log).start()
        self.hub_server.wait_healthy()
        return time.monotonic() - started

    def kill_hub(self) -> None:
        assert self.hub_server is not None
        self.hub_server.kill()

    def stop_hub(self) -> None:
        if self.hub_server is not None:
            self.hub_server.stop()

    def close(self) -> None:
        self.stop_hub()
        for mock in self.mocks:
            mock.stop()

    def audit_verify(self) -> dict[str, Any]:
        """`hub audit verify`: its exit status and what it printed."""
        done = subprocess.run(
            [*HUB, "audit", "verify"], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        output = " ".join((done.stdout + done.stderr).split())
        return {"exit": done.returncode, "output": output[:300]}

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the hub's database."""
        from sqlalchemy import text

        from hub.core.db import make_engine

        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(text(sql), params).mappings().all()]
        finally:
            engine.dispose()


@contextlib.contextmanager
def cluster(services: list[str], **options: Any) -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="hub-faults-") as tmp:
        running = Cluster(Path(tmp), services, **options)
        try:
            yield running
        except BaseException:
            if running.hub_server is not None:
                print(f"hub log (tail):\n{running.hub_server.tail()}", file=sys.stderr)
            raise
        finally:
            running.close()


# -- HTTP --------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One call as its client saw it. `status` None: no answer (connection cut or refused)."""

    kind: str
    request_id: str
    sent: float  # seconds since the load started
    latency: float | None = None
    status: int | None = None
    code: str | None = None
    error: str | None = None
    data_id: str | None = None  # the payment's or the job's id
    data: dict[str, Any] | None = None  # the answer's `data`
    key: str | None = None  # Idempotency-Key
    restarted: bool = False  # sent to the restarted hub

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    answer: Answer,
    *,
    headers: dict[str, str],
    body: Any = None,
    timeout: float = 30,
) -> Answer:
    t0 = time.perf_counter()
    try:
        async with session.request(
            method,
            url,
            headers={**headers, "x-request-id": answer.request_id},
            json=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            raw = await response.read()
            answer.status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        answer.error = type(exc).__name__
        return answer
    answer.latency = time.perf_counter() - t0
    with contextlib.suppress(ValueError):
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            answer.code = parsed.get("code")
            data = parsed.get("data")
            if isinstance(data, dict):
                answer.data = data
                if isinstance(data.get("id"), str):
                    answer.data_id = data["id"]
    return answer


async def open_loop(
    rate: float, until: Callable[[float], bool], one: Callable[[int], Awaitable[None]]
) -> None:
    """Start `one(k)` at `rate` a second, whatever the answers' latency (open loop: a slow
    answer does not slow the arrivals), until `until(elapsed)`; then wait for all."""
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    k = 0
    while not until(time.perf_counter() - start):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(k))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)


def session(limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))


def headers_for(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}", "x-purpose": PURPOSE}


def metric(text: str, name: str, service: str) -> float:
    """The sum of one metric's samples for one service, from /metrics."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'service="{service}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def records_of(cluster: Cluster, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """The audit records of every request id starting with `prefix`, by request id."""
    rows = cluster.query(
        "SELECT request_id, service, operation, status, code, upstream_ms FROM audit_records "
        "WHERE request_id LIKE :prefix",
        prefix=prefix + "%",
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["request_id"], []).append(row)
    return found


def counts(values: Any) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


# -- kill -9 -----------------------------------------------------------------------------------


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
    citizens = [
        r["personal_id"]
        for r in get_json(f"{c.mock('population')}/_mock/records?limit=500")["records"]
    ]
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

    records = records_of(c, f"{run}-")
    upstream_requests = get_json(f"{c.mock('judicial-records')}/_mock/requests?limit=1000")
    c.stop_hub()  # SIGTERM: signs a checkpoint at shutdown
    verify_end = c.audit_verify()
    return _kill_report(
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


def _kill_report(**r: Any) -> dict[str, Any]:
    answers: list[Answer] = r["answers"]
    records: dict[str, list[dict[str, Any]]] = r["records"]
    ok = [a for a in answers if a.ok]
    cut = [a for a in answers if a.status is None]
    audit = {"2xx": len(ok), "exactly_one": 0, "missing": [], "duplicated": [], "bad_status": []}
    for a in answers:
        own = [
            x
            for x in records.get(a.request_id, [])
            if (x["service"], x["operation"]) == OWN_OPERATION[a.kind]
        ]
        step = [
            x
            for x in records.get(a.request_id, [])
            if (x["service"], x["operation"]) == UPSTREAM_STEP.get(a.kind)
        ]
        if len(own) > 1 or len(step) > 1:
            audit["duplicated"].append(a.request_id)
        if a.ok:
            if not own:
                audit["missing"].append(a.request_id)
            elif len(own) == 1:
                audit["exactly_one"] += 1
                if own[0]["status"] >= 300:
                    audit["bad_status"].append(a.request_id)
    audit["answered_non_2xx_recorded"] = sum(
        1 for a in answers if a.status is not None and not a.ok and a.request_id in records
    )
    audit["cut_calls"] = len(cut)
    audit["cut_calls_recorded"] = sum(1 for a in cut if a.request_id in records)

    payments: list[Answer] = r["payments"]
    replays: list[Answer] = r["replays"]
    before, after = r["before"], r["after"]
    same = 0
    changed = []
    for first, again in zip(payments, replays, strict=True):
        row = after["rows"].get(first.key)
        expected = first.data_id if first.ok else (row["id"] if row else None)
        if again.ok and again.data_id == expected and row is not None and row["id"] == expected:
            same += 1
        else:
            changed.append(
                {
                    "key": first.key,
                    "first": first.data_id,
                    "replay": again.data_id,
                    "replay_status": again.status,
                }
            )
    keys_with_row = {a.key for a in payments if a.key in after["rows"]}
    upstream_per_key_after = [
        after["upstream_references"].get(after["rows"][k]["id"], 0) for k in keys_with_row
    ]
    pay = {
        "keys": len(payments),
        "2xx_first": sum(1 for a in payments if a.ok),
        "cut_first": sum(1 for a in payments if a.status is None),
        "hub_rows_before_replay": len(before["rows"]),
        "hub_statuses_before_replay": before["statuses"],
        "hub_rows_per_key_max": max(before["hub_rows_per_key_max"], after["hub_rows_per_key_max"]),
        "upstream_inits_per_payment_max": max(
            before["upstream_per_payment_max"], after["upstream_per_payment_max"]
        ),
        "upstream_unknown_to_hub": len(before["upstream_unknown_to_hub"])
        + len(after["upstream_unknown_to_hub"]),
        "replay_statuses": counts(a.status for a in replays),
        "replay_same_payment": same,
        "replay_changed": changed[:5],
        "hub_rows_after_replay": len(after["rows"]),
        "keys_with_one_upstream_payment_after_replay": sum(
            1 for n in upstream_per_key_after if n == 1
        ),
    }

    jobs: dict[str, Answer] = r["jobs"]
    final: dict[str, str] = r["final"]
    accepted = set(jobs)
    others = [row for row in r["all_jobs"] if row["id"] not in accepted]
    job = {
        "accepted_202": len(jobs),
        "pending_at_kill": len(r["pending_at_kill"]),
        "pending_at_kill_final_after": sum(1 for j in r["pending_at_kill"] if j in final),
        "final": len(final),
        "final_statuses": counts(final.values()),
        "seconds_to_all_final": r["jobs_final_s"],
        "never_final": sorted(accepted - set(final))[:5],
        "cut_submissions": len(others),
        "cut_submission_states": counts(row["status"] for row in others),
        # What upstream made of them (the hub sends its job id as maHoSoMCDT).
        "cut_submissions_upstream": counts(
            _upstream_state(r["upstream_requests"].get(row["id"])) for row in others
        ),
    }
    checks = {
        "every 2xx has exactly one audit record": not audit["missing"]
        and not audit["duplicated"]
        and not audit["bad_status"]
        and audit["exactly_one"] == len(ok),
        "no Idempotency-Key has two payments (hub, platform)": pay["hub_rows_per_key_max"] <= 1
        and pay["upstream_inits_per_payment_max"] <= 1
        and pay["upstream_unknown_to_hub"] == 0,
        "replaying each key answers the same payment": same == len(payments)
        and pay["keys_with_one_upstream_payment_after_replay"] == len(payments),
        "every accepted judicial request ends final": job["final"] == job["accepted_202"],
        "hub audit verify passes after the kill": r["event"]["verify_after_kill"]["exit"] == 0,
        "hub audit verify passes at the end": r["verify_end"]["exit"] == 0,
    }
    return {
        "scenario": "kill",
        "calls": r["calls"],
        "concurrency": r["concurrency"],
        "load_s": round(r["load_s"], 2),
        "killed_after_answers": r["event"]["killed_at_answers"],
        "hub_down_s": r["event"]["hub_down_s"],
        "answers": counts("no answer" if a.status is None else a.status for a in answers),
        "answers_after_restart": counts(
            "no answer" if a.status is None else a.status for a in answers if a.restarted
        ),
        "answers_by_kind": {
            kind: counts(
                "no answer" if a.status is None else a.status for a in answers if a.kind == kind
            )
            for kind in OWN_OPERATION
        },
        "audit": audit,
        "payments": pay,
        "jobs": job,
        "unsigned_tail_after_kill": r["event"]["unsigned_tail"],
        "verify_after_kill": r["event"]["verify_after_kill"],
        "verify_end": r["verify_end"],
        "checks": checks,
    }


def _upstream_state(request: dict[str, Any] | None) -> str:
    if request is None:
        return "unknown upstream"
    return f"{request['status']}, push {request['push']['state']}"


def print_kill(result: dict[str, Any]) -> None:
    a, p, j = result["audit"], result["payments"], result["jobs"]
    print(
        f"\n== kill -9 in the middle of {result['calls']} calls "
        f"(concurrency {result['concurrency']}, {result['load_s']} s)"
    )
    rows = [
        ("hub SIGKILLed after", f"{result['killed_after_answers']} answers"),
        ("hub down (kill → healthy again)", f"{result['hub_down_s']} s"),
        ("answers", _fmt(result["answers"])),
        ("  sent to the restarted hub", _fmt(result["answers_after_restart"])),
        *((f"  {kind}", _fmt(v)) for kind, v in result["answers_by_kind"].items()),
        ("2xx with exactly one audit record", f"{a['exactly_one']} of {a['2xx']}"),
        ("  missing / duplicated", f"{len(a['missing'])} / {len(a['duplicated'])}"),
        ("calls cut by the kill / with a record", f"{a['cut_calls']} / {a['cut_calls_recorded']}"),
        ("payment keys (2xx first / cut)", f"{p['keys']} ({p['2xx_first']} / {p['cut_first']})"),
        (
            "  hub rows after the kill",
            f"{p['hub_rows_before_replay']} {_fmt(p['hub_statuses_before_replay'])}",
        ),
        ("  payments per key at the hub (max)", p["hub_rows_per_key_max"]),
        ("  INITs per payment at the platform (max)", p["upstream_inits_per_payment_max"]),
        (
            "  replays answering the same payment",
            f"{p['replay_same_payment']} of {p['keys']} {_fmt(p['replay_statuses'])}",
        ),
        ("judicial requests accepted (202)", j["accepted_202"]),
        (
            "  pending at the kill → final after",
            f"{j['pending_at_kill']} → {j['pending_at_kill_final_after']}",
        ),
        (
            "  final after restart",
            f"{j['final']} of {j['accepted_202']} in {j['seconds_to_all_final']} s "
            + _fmt(j["final_statuses"]),
        ),
        (
            "  submissions cut by the kill",
            f"{j['cut_submissions']} {_fmt(j['cut_submission_states'])}",
        ),
        (
            "    upstream made of them",
            _fmt(j["cut_submissions_upstream"]) or "-",
        ),
        ("records after the last checkpoint at the kill", result["unsigned_tail_after_kill"]),
        ("hub audit verify after the kill", _verify(result["verify_after_kill"])),
        ("hub audit verify at the end", _verify(result["verify_end"])),
    ]
    _table(rows)
    _checks(result["checks"])


# -- upstream down ----------------------------------------------------------------------------


def down_scenario(
    *,
    rate: float = 100.0,
    warm_s: float = 30.0,
    down_s: float = 30.0,
    settle_s: float = 5.0,
    recover_timeout_s: float = 120.0,
    database_url: str | None = None,
    hub_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Population look-ups at `rate`/s; after `warm_s` the mock fails every call for
    `down_s`; then run until `settle_s` after the first 200 (or `recover_timeout_s`)."""
    with cluster(["population"], database_url=database_url, hub_env=hub_env) as c:
        client = c.start(["population"])
        return asyncio.run(_down(c, client, rate, warm_s, down_s, settle_s, recover_timeout_s))


async def _down(
    c: Cluster,
    client: dict[str, str],
    rate: float,
    warm_s: float,
    down_s: float,
    settle_s: float,
    recover_timeout_s: float,
) -> dict[str, Any]:
    run = secrets.token_hex(4)
    ids = [
        r["personal_id"]
        for r in get_json(f"{c.mock('population')}/_mock/records?limit=500")["records"]
    ]
    headers = headers_for(client["api_key"])
    answers: list[Answer] = []
    marks: dict[str, float] = {}
    metrics: dict[str, str] = {}
    started = time.perf_counter()

    def now() -> float:
        return time.perf_counter() - started

    async with session() as http:

        async def one(k: int) -> None:
            answer = Answer("citizen", f"{run}-{k:06d}", now())
            answers.append(
                await call(
                    http, "GET", f"{c.hub}/v1/citizens/{ids[k % len(ids)]}", answer, headers=headers
                )
            )
            if answer.status == 200 and "back" in marks and answer.sent >= marks["back"]:
                marks.setdefault("first_200", answer.sent + (answer.latency or 0))

        async def faults() -> None:
            await asyncio.sleep(warm_s)
            metrics["down"] = await _metrics(http, c.hub)
            marks["down_start"] = now()
            async with http.put(
                f"{c.mock('population')}/_mock/faults", json={"fault": "error"}
            ) as r:
                assert r.status == 200, await r.text()
            marks["down"] = now()
            await asyncio.sleep(down_s)
            marks["back_start"] = now()
            async with http.delete(f"{c.mock('population')}/_mock/faults") as r:
                assert r.status == 200, await r.text()
            marks["back"] = now()
            metrics["back"] = await _metrics(http, c.hub)

        def until(elapsed: float) -> bool:
            if "first_200" in marks:
                return elapsed > marks["first_200"] + settle_s
            return "back" in marks and elapsed > marks["back"] + recover_timeout_s

        await asyncio.gather(faults(), open_loop(rate, until, one))
        metrics["end"] = await _metrics(http, c.hub)

    records = records_of(c, f"{run}-")
    return _down_report(rate, warm_s, down_s, answers, marks, metrics, records)


async def _metrics(http: aiohttp.ClientSession, hub: str) -> str:
    async with http.get(f"{hub}/metrics") as response:
        return await response.text()


def _phase(answers: list[Answer]) -> dict[str, Any]:
    latencies = [a.latency for a in answers if a.latency is not None]
    return {
        "calls": len(answers),
        "statuses": counts("no answer" if a.status is None else a.status for a in answers),
        "p50_ms": round(pct(latencies, 0.5), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
    }


def _down_report(
    rate: float,
    warm_s: float,
    down_s: float,
    answers: list[Answer],
    marks: dict[str, float],
    metrics: dict[str, str],
    records: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    down, back = marks["down"], marks["back"]
    # By when a call was sent: before the fault was asked for, after the mock confirmed it
    # (every attempt from then on fails, until it is lifted), after it confirmed it lifted.
    # The few sent while the mock was being told are left out.
    before = [a for a in answers if a.sent < marks["down_start"]]
    during = [a for a in answers if down <= a.sent < marks["back_start"]]
    after = [a for a in answers if a.sent >= back]
    refused = [a for a in during if a.status == 503]
    first_503 = min((a.sent + (a.latency or 0) for a in refused), default=None)
    first_200 = marks.get("first_200")
    resumed = [a for a in after if first_200 is not None and a.sent >= first_200]
    # A 503 that reached upstream would carry the time it waited there (upstream_ms).
    reached = [
        a.request_id
        for a in refused
        if any(r["upstream_ms"] is not None for r in records.get(a.request_id, []))
    ]
    unrecorded = [
        a.request_id for a in answers if a.status is not None and a.request_id not in records
    ]

    def upstream(text: str) -> float:
        return metric(text, "hub_upstream_duration_seconds_count", "population")

    attempts_down = upstream(metrics["back"]) - upstream(metrics["down"])
    reaching = [a for a in during if a.status != 503]
    checks = {
        "the circuit opened (fast 503s while down)": bool(refused),
        "no 503 reached upstream (audit upstream_ms)": not reached,
        "traffic resumed by itself": first_200 is not None,
        "every call after the first 200 was a 200": bool(resumed)
        and all(a.status == 200 for a in resumed),
        "every answered call has an audit record": not unrecorded,
    }
    return {
        "scenario": "down",
        "rate_per_s": rate,
        "warm_s": warm_s,
        "down_s": down_s,
        "phases": {"before": _phase(before), "down": _phase(during), "after": _phase(after)},
        "open_503": {
            "calls": len(refused),
            "p50_ms": round(pct([a.latency or 0 for a in refused], 0.5), 2),
            "p99_ms": round(pct([a.latency or 0 for a in refused], 0.99), 2),
        },
        "down_to_open_s": None if first_503 is None else round(first_503 - down, 2),
        "back_to_first_200_s": None if first_200 is None else round(first_200 - back, 2),
        "upstream_attempts_while_down": int(attempts_down),
        "calls_reaching_upstream_while_down": len(reaching),
        "refused_503_reaching_upstream": len(reached),
        "after_first_200": {"calls": len(resumed), "statuses": counts(a.status for a in resumed)},
        "unrecorded": len(unrecorded),
        "checks": checks,
    }


def print_down(result: dict[str, Any]) -> None:
    print(
        f"\n== population upstream down {result['down_s']} s under {result['rate_per_s']:.0f} "
        f"calls/s (after {result['warm_s']} s of normal traffic)"
    )
    print(f"{'phase':<10}{'calls':>7}  {'statuses':<34}{'p50 ms':>9}{'p99 ms':>9}")
    for name, phase in result["phases"].items():
        print(
            f"{name:<10}{phase['calls']:>7}  {_fmt(phase['statuses']):<34}"
            f"{phase['p50_ms']:>9.1f}{phase['p99_ms']:>9.1f}"
        )
    o = result["open_503"]
    _table(
        [
            (
                "open circuit's 503s: p50 / p99",
                f"{o['p50_ms']} / {o['p99_ms']} ms ({o['calls']} calls)",
            ),
            ("down → circuit open (first 503)", f"{result['down_to_open_s']} s"),
            ("back up → first 200", f"{result['back_to_first_200_s']} s"),
            ("calls after the first 200", _fmt(result["after_first_200"]["statuses"])),
            (
                "calls while down that reached upstream",
                f"{result['calls_reaching_upstream_while_down']} "
                f"({result['upstream_attempts_while_down']} attempts, retries included)",
            ),
            ("503s that reached upstream", result["refused_503_reaching_upstream"]),
        ]
    )
    _checks(result["checks"])
    met = result["open_503"]["p99_ms"] < 50
    print(f"  target: open circuit's 503s p99 under 50 ms: {'MET' if met else 'NOT MET'}")


# -- upstream slow ----------------------------------------------------------------------------


def slow_scenario(
    *,
    latency_ms: int = 2000,
    rate: float = 100.0,
    other_rate: float = 20.0,
    normal_s: float = 10.0,
    slow_s: float = 15.0,
    database_url: str | None = None,
    hub_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Population look-ups at `rate`/s and enterprise look-ups at `other_rate`/s, for
    `normal_s`, then for `slow_s` with the population mock `latency_ms` slower."""
    services = ["population", "business-registration"]
    with cluster(services, database_url=database_url, hub_env=hub_env) as c:
        client = c.start(services)
        return asyncio.run(_slow(c, client, latency_ms, rate, other_rate, normal_s, slow_s))


async def _slow(
    c: Cluster,
    client: dict[str, str],
    latency_ms: int,
    rate: float,
    other_rate: float,
    normal_s: float,
    slow_s: float,
) -> dict[str, Any]:
    run = secrets.token_hex(4)
    ids = [
        r["personal_id"]
        for r in get_json(f"{c.mock('population')}/_mock/records?limit=500")["records"]
    ]
    codes = [
        r["enterprise_code"]
        for r in get_json(f"{c.mock('business-registration')}/_mock/records?limit=200")["records"]
    ]
    headers = headers_for(client["api_key"])
    slow: list[Answer] = []
    other: list[Answer] = []
    marks: dict[str, float] = {}
    started = time.perf_counter()
    total = normal_s + slow_s

    def now() -> float:
        return time.perf_counter() - started

    async with session() as http:
        for code in codes[:3]:  # the gateway token, the connections
            await call(
                http,
                "GET",
                f"{c.hub}/v1/enterprises/{code}",
                Answer("warm", f"{run}w-{code}", 0),
                headers=headers,
            )

        async def population(k: int) -> None:
            answer = Answer("citizen", f"{run}-p{k:06d}", now())
            slow.append(
                await call(
                    http, "GET", f"{c.hub}/v1/citizens/{ids[k % len(ids)]}", answer, headers=headers
                )
            )

        async def enterprise(k: int) -> None:
            answer = Answer("enterprise", f"{run}-e{k:06d}", now())
            other.append(
                await call(
                    http,
                    "GET",
                    f"{c.hub}/v1/enterprises/{codes[k % len(codes)]}",
                    answer,
                    headers=headers,
                )
            )

        async def faults() -> None:
            await asyncio.sleep(normal_s)
            body = {"fault": "latency", "ms": latency_ms}
            async with http.put(f"{c.mock('population')}/_mock/faults", json=body) as r:
                assert r.status == 200, await r.text()
            marks["slow"] = now()

        await asyncio.gather(
            faults(),
            open_loop(rate, lambda t: t >= total, population),
            open_loop(other_rate, lambda t: t >= total, enterprise),
        )
    records = records_of(c, f"{run}-")
    mark = marks["slow"]
    # Calls sent in the first seconds of the slow phase met a mock still answering at once.
    slow_calls = [a for a in slow if a.sent >= mark]
    refused = [a for a in slow_calls if a.status == 503]
    reached = [
        a.request_id
        for a in refused
        if any(r["upstream_ms"] is not None for r in records.get(a.request_id, []))
    ]
    phases = {
        "normal": {
            "other": _phase([a for a in other if a.sent < mark]),
            "slow_service": _phase([a for a in slow if a.sent < mark]),
        },
        "slow": {
            "other": _phase([a for a in other if a.sent >= mark]),
            "slow_service": _phase(slow_calls),
        },
    }
    codes_slow = counts(a.code or a.status for a in slow_calls if not a.ok)
    checks = {
        "the other service answered every call": all(a.status == 200 for a in other),
        "the slow service answered 200 or a fast refusal (503), no other error": all(
            a.status in (200, 503, 504) for a in slow_calls
        ),
        "no bulkhead refusal reached upstream (audit upstream_ms)": not reached,
    }
    return {
        "scenario": "slow",
        "latency_ms": latency_ms,
        "rate_per_s": rate,
        "other_rate_per_s": other_rate,
        "normal_s": normal_s,
        "slow_s": slow_s,
        "phases": phases,
        "slow_service_errors": codes_slow,
        "bulkhead_503": len(refused),
        "bulkhead_503_p50_ms": round(pct([a.latency or 0 for a in refused], 0.5), 2),
        "bulkhead_503_p99_ms": round(pct([a.latency or 0 for a in refused], 0.99), 2),
        "timeouts_504": sum(1 for a in slow_calls if a.status == 504),
        "checks": checks,
    }


def print_slow(result: dict[str, Any]) -> None:
    print(
        f"\n== population upstream at {result['latency_ms']} ms: population "
        f"{result['rate_per_s']:.0f} calls/s, enterprise look-ups {result['other_rate_per_s']:.0f}"
        f" calls/s ({result['normal_s']} s normal, {result['slow_s']} s slow)"
    )
    print(f"{'phase':<8}{'service':<24}{'calls':>7}  {'statuses':<26}{'p50 ms':>9}{'p99 ms':>9}")
    for name, phase in result["phases"].items():
        for label, key in (
            ("enterprise (other)", "other"),
            ("population (slowed)", "slow_service"),
        ):
            p = phase[key]
            print(
                f"{name:<8}{label:<24}{p['calls']:>7}  {_fmt(p['statuses']):<26}"
                f"{p['p50_ms']:>9.1f}{p['p99_ms']:>9.1f}"
            )
    _table(
        [
            (
                "slowed service, refused at once (503 bulkhead)",
                f"{result['bulkhead_503']} (p50 {result['bulkhead_503_p50_ms']} ms, "
                f"p99 {result['bulkhead_503_p99_ms']} ms)",
            ),
            ("slowed service, timed out (504)", result["timeouts_504"]),
            ("slowed service's errors by code", _fmt(result["slow_service_errors"]) or "none"),
        ]
    )
    _checks(result["checks"])
    before, during = (result["phases"][p]["other"]["p99_ms"] for p in ("normal", "slow"))
    print(
        f"  the other service's p99: {before:.1f} ms normal, {during:.1f} ms while the "
        f"population upstream is slow ({during / before:.2f}x)"
    )


# -- output ------------------------------------------------------------------------------------


def _fmt(values: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in values.items())


def _verify(found: dict[str, Any]) -> str:
    return f"exit {found['exit']} ({found['output']})"


def _table(rows: list[tuple[str, Any]]) -> None:
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label:<{width}}{value}")


def _checks(checks: dict[str, bool]) -> None:
    for name, held in checks.items():
        print(f"  [{'ok' if held else 'FAILED'}] {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help="kill, down, slow (default: all three)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    kill = parser.add_argument_group("kill")
    kill.add_argument("--calls", type=int, default=1000)
    kill.add_argument("--concurrency", type=int, default=16)
    kill.add_argument("--kill-after", type=float, default=0.5, help="share of calls answered")
    down = parser.add_argument_group("down")
    down.add_argument("--rate", type=float, default=100.0, help="population calls a second")
    down.add_argument("--warm-s", type=float, default=30.0, help="normal traffic before")
    down.add_argument("--down-s", type=float, default=30.0)
    slow = parser.add_argument_group("slow")
    slow.add_argument("--latency-ms", type=int, default=2000)
    slow.add_argument("--other-rate", type=float, default=20.0, help="enterprise calls a second")
    slow.add_argument("--normal-s", type=float, default=10.0)
    slow.add_argument("--slow-s", type=float, default=15.0)
    args = parser.parse_args()
    chosen = args.scenarios or ["kill", "down", "slow"]
    unknown = sorted(set(chosen) - {"kill", "down", "slow"})
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; known: kill, down, slow")

    results = []
    if not args.json:
        where = args.database_url or os.environ.get("HUB_DATABASE_URL") or "SQLite (fresh file)"
        print(f"cores: {os.cpu_count()}  database: {where}")
    for name in chosen:
        if name == "kill":
            result = kill_scenario(
                calls=args.calls,
                concurrency=args.concurrency,
                kill_after=args.kill_after,
                database_url=args.database_url,
            )
            printer = print_kill
        elif name == "down":
            result = down_scenario(
                rate=args.rate,
                warm_s=args.warm_s,
                down_s=args.down_s,
                database_url=args.database_url,
            )
            printer = print_down
        else:
            result = slow_scenario(
                latency_ms=args.latency_ms,
                rate=args.rate,
                other_rate=args.other_rate,
                normal_s=args.normal_s,
                slow_s=args.slow_s,
                database_url=args.database_url,
            )
            printer = print_slow
        results.append(result)
        if not args.json:
            printer(result)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2, default=str))
    failed = [
        f"{r['scenario']}: {n}" for r in results for n, held in r["checks"].items() if not held
    ]
    if failed:
        print("\nINVARIANTS BROKEN:\n  " + "\n  ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
