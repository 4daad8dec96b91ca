"""An upstream slow: the population mock at 2 s latency under load, while the
business-registration enterprise look-up is timed before and during; the slow service's
answers (200s, the bulkhead's fast 503s, 504s).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.common import fetch_ids, get_json
from bench.faults_cluster import Cluster, cluster
from bench.faults_load import Answer, Caller, open_loop, session, set_fault
from bench.faults_report import counts, fmt, quantiles, reached_upstream, summary, table


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
    ids = fetch_ids(c.mock("population"), 500)
    codes = [
        r["enterprise_code"]
        for r in get_json(f"{c.mock('business-registration')}/_mock/records?limit=200")["records"]
    ]
    slow: list[Answer] = []
    other: list[Answer] = []
    marks: dict[str, float] = {}
    total = normal_s + slow_s

    async with session() as http:
        caller = Caller(http, c.hub, client)
        for code in codes[:3]:  # the gateway token, the connections
            await caller.get("warm", f"w{code}", f"/v1/enterprises/{code}")

        async def population(k: int) -> None:
            slow.append(
                await caller.get("citizen", f"p{k:06d}", f"/v1/citizens/{ids[k % len(ids)]}")
            )

        async def enterprise(k: int) -> None:
            path = f"/v1/enterprises/{codes[k % len(codes)]}"
            other.append(await caller.get("enterprise", f"e{k:06d}", path))

        async def faults() -> None:
            await asyncio.sleep(normal_s)
            await set_fault(http, c.mock("population"), {"fault": "latency", "ms": latency_ms})
            marks["slow"] = caller.now()

        await asyncio.gather(
            faults(),
            open_loop(rate, lambda t: t >= total, population),
            open_loop(other_rate, lambda t: t >= total, enterprise),
        )
    records = c.audit_records(caller.prefix)
    mark = marks["slow"]
    # Calls sent in the first seconds of the slow phase met a mock still answering at once.
    slow_calls = [a for a in slow if a.sent >= mark]
    refused = [a for a in slow_calls if a.status == 503]
    reached = reached_upstream(refused, records)
    phases = {
        "normal": {
            "other": summary([a for a in other if a.sent < mark]),
            "slow_service": summary([a for a in slow if a.sent < mark]),
        },
        "slow": {
            "other": summary([a for a in other if a.sent >= mark]),
            "slow_service": summary(slow_calls),
        },
    }
    refused_ms = quantiles([a.latency or 0 for a in refused])
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
        "bulkhead_503_p50_ms": refused_ms["p50_ms"],
        "bulkhead_503_p99_ms": refused_ms["p99_ms"],
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
                f"{name:<8}{label:<24}{p['calls']:>7}  {fmt(p['statuses']):<26}"
                f"{p['p50_ms']:>9.1f}{p['p99_ms']:>9.1f}"
            )
    table(
        [
            (
                "slowed service, refused at once (503 bulkhead)",
                f"{result['bulkhead_503']} (p50 {result['bulkhead_503_p50_ms']} ms, "
                f"p99 {result['bulkhead_503_p99_ms']} ms)",
            ),
            ("slowed service, timed out (504)", result["timeouts_504"]),
            ("slowed service's errors by code", fmt(result["slow_service_errors"]) or "none"),
        ],
        result["checks"],
    )
    before, during = (result["phases"][p]["other"]["p99_ms"] for p in ("normal", "slow"))
    print(
        f"  the other service's p99: {before:.1f} ms normal, {during:.1f} ms while the "
        f"population upstream is slow ({during / before:.2f}x)"
    )
