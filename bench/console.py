"""The console's pages, timed against a full audit trail.

Fills a fresh database with N audit records (100,000 by default; spread over the last two
hours, every service, a few hundred subjects, dossiers and clients), then loads each console
page K times as a logged-in operator and auditor and prints p50/p95 of each, in ms, against
the 300 ms the issue asks of a page. The hub runs in-process with its upstreams as in-process
mocks (the services page asks them for their faults), so the figures are the server's own
work: templates, queries and the session look-up, no network.

    python bench/console.py                         # 100,000 records, 10 loads a page
    python bench/console.py --records 20000 --loads 5 --json
    python bench/console.py --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.app import create_app
from hub.console.users import create_user
from hub.core.config import Settings
from hub.core.db import create_schema, make_engine
from hub.core.models import AuditRecord
from hub.identifiers import make_personal_id
from hub.security.auth import create_client
from mocks import MOCKS, create_mock_app

TARGET_MS = 300
SERVICES = ("population", "civil-status", "business-registration", "judicial-records", "payment")
OPERATIONS = {
    "population": ("lookup", "verify"),
    "civil-status": ("records", "marital-status"),
    "business-registration": ("lookup", "search"),
    "judicial-records": ("submit", "status"),
    "payment": ("init", "query"),
}
OUTCOMES = (
    (200, "OK"),
    (200, "OK"),
    (200, "OK"),
    (404, "NOT_FOUND"),
    (503, "UPSTREAM_UNAVAILABLE"),
)
PASSWORD = "bench-console-password"


def fill(engine: Any, count: int, client_ids: list[str], subjects: list[str]) -> None:
    """`count` audit records in batches (unchained: the pages read, never verify)."""
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for i in range(count):
            service = rng.choice(SERVICES)
            status, code = rng.choice(OUTCOMES)
            batch.append(
                {
                    "at": now - dt.timedelta(seconds=7200 * (count - i) / count),
                    "request_id": f"bench-{i}",
                    "client_id": rng.choice(client_ids),
                    "service": service,
                    "operation": rng.choice(OPERATIONS[service]),
                    "purpose": "bench",
                    "officer_id": f"cb-{rng.randrange(50)}",
                    "dossier_id": f"HS-{rng.randrange(5000)}",
                    "subject_id": rng.choice(subjects),
                    "status": status,
                    "code": code,
                    "duration_ms": rng.uniform(2, 80),
                    "fields": '["full_name"]' if status == 200 else None,
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(table), batch)
                batch.clear()
        if batch:
            conn.execute(insert(table), batch)


async def log_in(http: httpx.AsyncClient) -> None:
    form = await http.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = await http.post(
        "/console/login", data={"name": "bench", "password": PASSWORD, "csrf": token.group(1)}
    )
    assert answer.status_code == 303, answer.text


def pages(subject: str) -> dict[str, str]:
    return {
        "services": "/console/services",
        "traffic": "/console/traffic",
        "clients": "/console/clients",
        "work": "/console/work",
        "data reused (30 days)": "/console/reused",
        "audit (form)": "/console/audit",
        "audit by subject": f"/console/audit?q=1&subject_id={subject}",
        "audit by service+outcome": "/console/audit?q=1&service=payment&outcome=failed",
        "audit, page 2": "/console/audit?q=1&service=population&after=50000",
        "access report": f"/console/audit/report?personal_id={subject}",
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="console-bench-")
    url = args.database_url or f"sqlite:///{folder}/bench.db"
    engine = make_engine(url)
    create_schema(engine)
    if not url.startswith("sqlite"):
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_records, console_sessions, console_users CASCADE"))
    secret = b"bench-secret-key-0123456789"
    client_ids = [
        create_client(engine, secret, name=f"bench-{i}-{time.time_ns()}", allow=["*"]).client_id
        for i in range(20)
    ]
    subjects = [make_personal_id("001", "male", 1990, n) for n in range(500)]
    started = time.perf_counter()
    fill(engine, args.records, client_ids, subjects)
    filled_s = time.perf_counter() - started
    create_user(engine, "bench", ["operator", "auditor"], PASSWORD)
    engine.dispose()
    mocks = {name: create_mock_app(name) for name, spec in MOCKS.items() if spec.factory}
    settings = Settings(
        database_url=url,
        secret_key=secret.decode(),
        background_tasks=False,
        audit_archive_dir=f"{folder}/archive",
        adapters={name: {"base_url": f"http://{name}.mock"} for name in mocks},
    )
    app = create_app(
        settings, transports={name: httpx.ASGITransport(app=m) for name, m in mocks.items()}
    )
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.bench") as http:
            await log_in(http)
            for name, path in pages(subjects[0]).items():
                times, statuses = [], set()
                for _ in range(args.loads + 1):  # the first load warms caches: not counted
                    begun = time.perf_counter()
                    answer = await http.get(path)
                    times.append((time.perf_counter() - begun) * 1000)
                    statuses.add(answer.status_code)
                counted = sorted(times[1:])
                results.append(
                    {
                        "page": name,
                        "path": path,
                        "statuses": sorted(statuses),
                        "p50_ms": round(counted[len(counted) // 2], 1),
                        "p95_ms": round(
                            counted[min(len(counted) - 1, int(0.95 * len(counted)))], 1
                        ),
                    }
                )
    return {
        "records": args.records,
        "database": url.split(":", 1)[0],
        "fill_s": round(filled_s, 1),
        "target_ms": TARGET_MS,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--database-url", default=os.environ.get("HUB_BENCH_DATABASE_URL"))
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report))
        return
    filled = f"(filled in {report['fill_s']} s)"
    print(f"{report['records']} audit records on {report['database']} {filled}")
    print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8}  status   (target: {TARGET_MS} ms)")
    for row in report["results"]:
        over = "  OVER" if row["p95_ms"] > TARGET_MS else ""
        print(f"{row['page']:28} {row['p50_ms']:8} {row['p95_ms']:8}  {row['statuses']}{over}")


if __name__ == "__main__":
    main()
