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

# The scenarios live beside this entry point, one module each: faults_kill.py (its checks and
# table in faults_kill_report.py), faults_down.py and faults_slow.py. What they share:
# faults_cluster.py (the processes), faults_load.py (the calls), faults_report.py (the reports).

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if not __package__:  # run as a script: bench/ is on the path, the repository's root is not
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.faults_down import down_scenario, print_down
from bench.faults_kill import kill_scenario
from bench.faults_kill_report import print_kill
from bench.faults_slow import print_slow, slow_scenario

__all__ = ["down_scenario", "kill_scenario", "main", "slow_scenario"]


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
