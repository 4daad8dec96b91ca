"""What the fault scenarios' reports share: the answers counted and summed up per phase,
checked against the audit records they left, and printed as a table with the checks under it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from bench.common import pct
from bench.faults_load import Answer


def reached_upstream(
    answers: Iterable[Answer], records: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """The request ids among `answers` whose audit records carry time spent upstream
    (`upstream_ms`): a refusal among them was not the fast one it should have been."""
    return [
        a.request_id
        for a in answers
        if any(r["upstream_ms"] is not None for r in records.get(a.request_id, []))
    ]


def counts(values: Any) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


def statuses(answers: Iterable[Answer]) -> dict[str, int]:
    """How many calls got each status ("no answer": the connection was cut or refused)."""
    return counts("no answer" if a.status is None else a.status for a in answers)


def quantiles(latencies: list[float]) -> dict[str, float]:
    """The p50 and p99 of `latencies` (seconds), in milliseconds rounded for the report."""
    return {"p50_ms": round(pct(latencies, 0.5), 2), "p99_ms": round(pct(latencies, 0.99), 2)}


def summary(answers: list[Answer]) -> dict[str, Any]:
    """One phase's calls: how many, their statuses, and the answered ones' p50 and p99."""
    return {
        "calls": len(answers),
        "statuses": statuses(answers),
        **quantiles([a.latency for a in answers if a.latency is not None]),
    }


def fmt(values: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in values.items())


def table(rows: list[tuple[str, Any]], checks: dict[str, bool]) -> None:
    """The figures, one labelled row each, then whether each invariant held."""
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    for name, held in checks.items():
        print(f"  [{'ok' if held else 'FAILED'}] {name}")
