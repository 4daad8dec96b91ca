"""The whole pipeline in one process, for callgrind: `GET /v1/citizens/{id}` through the hub's
ASGI app, the population mock behind an in-process transport, on a fresh SQLite file.

Calls go in rounds of `--concurrency` at once (one audit batch each), so the instruction
count per call repeats from run to run whatever the machine's load. It includes the mock's
and the in-process client's work, the same for every version of the hub: compare two
versions, or two call counts of one (the difference is the per-call cost):

    valgrind --tool=callgrind python bench/hub_calls.py --calls 300 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from hub.app import create_app
from hub.core.config import Settings
from hub.security.auth import create_client
from mocks.data import load_citizens
from mocks.population.app import create_app as create_mock


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=64)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-hub-")
    secret = "bench-secret-key-0123456789"
    settings = Settings(
        database_url=f"sqlite:///{folder}/hub.db",
        secret_key=secret,
        enabled_adapters=["population"],
        adapters={"population": {"base_url": "http://population.mock"}},
        audit_archive_dir=f"{folder}/archive",
        background_tasks=False,
        log_level="warning",
    )
    mock = create_mock()
    app = create_app(settings, transports={"population": httpx.ASGITransport(app=mock)})
    ids = [c.personal_id for c in load_citizens()[:500]]
    async with app.router.lifespan_context(app):
        key = create_client(
            app.state.hub.engine, secret.encode(), name="bench", allow=["population"],
            purposes=["bench"],
        ).api_key  # fmt: skip
        headers = {"authorization": f"Bearer {key}", "x-purpose": "bench"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:

            async def one(i: int) -> None:
                answer = await http.get(f"/v1/citizens/{ids[i % len(ids)]}", headers=headers)
                assert answer.status_code == 200, answer.text

            async def rounds(start: int, count: int) -> None:
                for first in range(start, start + count, args.concurrency):
                    last = min(first + args.concurrency, start + count)
                    await asyncio.gather(*(one(i) for i in range(first, last)))

            await rounds(0, args.warmup)
            cpu = time.process_time()
            await rounds(args.warmup, args.calls)
            cpu = time.process_time() - cpu
        commits = app.state.hub.metrics.audit_commit.collect()[0].samples
        count = next(s.value for s in commits if s.name.endswith("_count"))
    print(
        f"{args.calls} calls: CPU {cpu / args.calls * 1e6:.0f} µs per call (mock included), "
        f"{count:.0f} audit commits"
    )


if __name__ == "__main__":
    asyncio.run(main())
