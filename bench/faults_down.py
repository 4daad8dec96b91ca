"""An upstream down: steady load on the population look-up; the mock is taken down through
its run-time fault API (every call a SOAP server error) and brought back. Per phase: status
counts, latency of the open circuit's 503s, time from down to open and from back up to the
first 200, and whether traffic resumed by itself; the 503s are checked, in the audit trail,
not to have reached upstream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bench.common import fetch_ids
from bench.faults_cluster import Cluster, cluster
from bench.faults_load import Answer, Caller, open_loop, session, set_fault
from bench.faults_report import counts, fmt, quantiles, reached_upstream, summary, table


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
    ids = fetch_ids(c.mock("population"), 500)
    answers: list[Answer] = []
    marks: dict[str, float] = {}
    metrics: dict[str, str] = {}

    async with session() as http:
        caller = Caller(http, c.hub, client)

        async def one(k: int) -> None:
            answer = await caller.get("citizen", f"{k:06d}", f"/v1/citizens/{ids[k % len(ids)]}")
            answers.append(answer)
            if answer.status == 200 and "back" in marks and answer.sent >= marks["back"]:
                marks.setdefault("first_200", answer.sent + (answer.latency or 0))

        async def faults() -> None:
            await asyncio.sleep(warm_s)
            metrics["down"] = await _metrics(http, c.hub)
            marks["down_start"] = caller.now()
            await set_fault(http, c.mock("population"), {"fault": "error"})
            marks["down"] = caller.now()
            await asyncio.sleep(down_s)
            marks["back_start"] = caller.now()
            await set_fault(http, c.mock("population"), None)
            marks["back"] = caller.now()
            metrics["back"] = await _metrics(http, c.hub)

        def until(elapsed: float) -> bool:
            if "first_200" in marks:
                return elapsed > marks["first_200"] + settle_s
            return "back" in marks and elapsed > marks["back"] + recover_timeout_s

        await asyncio.gather(faults(), open_loop(rate, until, one))
        metrics["end"] = await _metrics(http, c.hub)

    records = c.audit_records(caller.prefix)
    return _down_report(rate, warm_s, down_s, answers, marks, metrics, records)


async def _metrics(http: aiohttp.ClientSession, hub: str) -> str:
    async with http.get(f"{hub}/metrics") as response:
        return await response.text()


def metric(text: str, name: str, service: str) -> float:
    """The sum of one metric's samples for one service, from /metrics."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'service="{service}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


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
    reached = reached_upstream(refused, records)
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
        "phases": {"before": summary(before), "down": summary(during), "after": summary(after)},
        "open_503": {"calls": len(refused), **quantiles([a.latency or 0 for a in refused])},
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
            f"{name:<10}{phase['calls']:>7}  {fmt(phase['statuses']):<34}"
            f"{phase['p50_ms']:>9.1f}{phase['p99_ms']:>9.1f}"
        )
    o = result["open_503"]
    table(
        [
            (
                "open circuit's 503s: p50 / p99",
                f"{o['p50_ms']} / {o['p99_ms']} ms ({o['calls']} calls)",
            ),
            ("down → circuit open (first 503)", f"{result['down_to_open_s']} s"),
            ("back up → first 200", f"{result['back_to_first_200_s']} s"),
            ("calls after the first 200", fmt(result["after_first_200"]["statuses"])),
            (
                "calls while down that reached upstream",
                f"{result['calls_reaching_upstream_while_down']} "
                f"({result['upstream_attempts_while_down']} attempts, retries included)",
            ),
            ("503s that reached upstream", result["refused_503_reaching_upstream"]),
        ],
        result["checks"],
    )
    met = result["open_503"]["p99_ms"] < 50
    print(f"  target: open circuit's 503s p99 under 50 ms: {'MET' if met else 'NOT MET'}")
