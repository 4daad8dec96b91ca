"""The audit writer alone: CPU per record, repeatable enough to judge a change by.

Writes `--records` audit records through `hub.audit.writer.AuditWriter`, `--concurrency` at
once (each awaits its commit, as a call does: one batch of that size per commit), on a
fresh SQLite file or `--database-url`, and prints the records/s and the CPU the whole
process (event loop and writer thread) spent per record. Under `valgrind --tool=callgrind`
the instruction count per record is the figure that does not move with the machine's load:

    python bench/audit_writer.py --records 20000 --concurrency 32
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        python bench/audit_writer.py --records 2000 --concurrency 32 --warmup 200
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.api.middleware import new_request_id
from hub.audit.chain import signing_key
from hub.audit.writer import AuditWriter
from hub.core.db import make_engine, prepare


def row(i: int) -> dict[str, object]:
    return {
        "at": dt.datetime.now(dt.UTC),
        "request_id": new_request_id(),  # the hub's own, time-ordered
        "client_id": "cl_bench",
        "service": "population",
        "operation": "lookup",
        "purpose": "bench",
        "officer_id": None,
        "dossier_id": None,
        "subject_id": f"0010{i:08d}",
        "status": 200,
        "code": "OK",
        "duration_ms": 1.25,
        "upstream_ms": 0.5,
        "fields": '["personal_id","full_name","date_of_birth"]',
    }


async def drive(writer: AuditWriter, count: int, concurrency: int, start: int) -> None:
    """In rounds of `concurrency` records at once: each round is one batch, whatever the
    machine's load, so instruction counts repeat from run to run."""
    for first in range(start, start + count, concurrency):
        last = min(first + concurrency, start + count)
        await asyncio.gather(*(writer.record(row(i)) for i in range(first, last)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--fsync", action="store_true", help="each commit waits for the disk (HUB_AUDIT_FSYNC)"
    )
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-audit-")
    url = args.database_url or f"sqlite:///{folder}/hub.db"
    engine = make_engine(url)
    prepare(engine, migrate=True)
    writer = AuditWriter(
        engine, key=signing_key(b"bench"), witness=Path(folder) / "w.jsonl", fsync=args.fsync
    )
    writer.start()
    await drive(writer, args.warmup, args.concurrency, 0)
    cpu, wall = time.process_time(), time.perf_counter()
    await drive(writer, args.records, args.concurrency, args.warmup)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await writer.aclose()
    engine.dispose()
    print(
        f"{args.records} records, concurrency {args.concurrency}: {args.records / wall:,.0f}/s, "
        f"CPU {cpu / args.records * 1e6:.1f} µs per record"
    )


if __name__ == "__main__":
    asyncio.run(main())
