"""What a large upstream answer leaves in the hub's memory (issue 18, finding 8).

The probe saw a 3 MB upstream JSON answer raise the hub's memory by 80 MB, and keep it
raised. This runs the hub in-process with the business-registration adapter, its mock's
real answer inflated to about 3 MB (thousands of business lines), calls it N times and
prints the process's resident memory (RSS, from /proc) before, after the first call, after
all of them and after a garbage collection, as one JSON line. It is a measurement, not a
test: RSS depends on the allocator and the machine, so it is read by a person (or a CI
step that stores it), never asserted on in the unit tests.

    .venv/bin/python bench/upstream_memory.py [--calls 20] [--mb 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    """This process's resident memory, in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Inflating(httpx.AsyncBaseTransport):
    """The mock, with every enterprise's business lines repeated to about `size` bytes."""

    def __init__(self, mock: Any, size: int) -> None:
        self.inner, self.size = httpx.ASGITransport(app=mock), size

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        try:
            data = orjson.loads(body)
            lines = data["GetEntCert"][0]["NganhNgheKinhDoanh"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        one = len(orjson.dumps(lines[0]))
        data["GetEntCert"][0]["NganhNgheKinhDoanh"] = lines[:1] * (self.size // one)
        return httpx.Response(200, json=data)


async def measure(calls: int, size: int) -> dict[str, Any]:
    from hub.app import create_app
    from hub.core.config import Settings
    from hub.security.auth import create_client
    from mocks import create_mock_app

    mock = create_mock_app("business-registration")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=mock), base_url="http://m"
    ) as http:
        code = (await http.get("/_mock/records", params={"limit": 1})).json()["records"][0][
            "enterprise_code"
        ]
    folder = tempfile.mkdtemp()
    settings = Settings(
        database_url=f"sqlite:///{folder}/hub.db",
        secret_key="bench-secret-key-0123456789abcdef",
        enabled_adapters=["business-registration"],
        adapters={"business-registration": {"base_url": "http://br.mock"}},
        audit_archive_dir=folder,
    )
    app = create_app(settings, transports={"business-registration": Inflating(mock, size)})
    async with app.router.lifespan_context(app):
        secret = settings.secret_key.get_secret_value().encode()
        key = create_client(
            app.state.hub.engine, secret, name="bench", allow=["*"], purposes=["bench"]
        ).api_key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as hub:
            headers = {"authorization": f"Bearer {key}", "x-purpose": "bench"}
            gc.collect()
            before = rss_mb()
            statuses, sizes = [], []
            for n in range(calls):
                response = await hub.get(f"/v1/enterprises/{code}", headers=headers)
                statuses.append(response.status_code)
                sizes.append(len(response.content))
                del response
                if n == 0:
                    first = rss_mb()
            after = rss_mb()
            gc.collect()
            collected = rss_mb()
    return {
        "calls": calls,
        "answer_bytes": max(sizes),
        "statuses": sorted(set(statuses)),
        "rss_before_mb": round(before, 1),
        "rss_after_first_mb": round(first, 1),
        "rss_after_all_mb": round(after, 1),
        "rss_after_gc_mb": round(collected, 1),
        "raised_mb": round(collected - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--mb", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.calls, int(args.mb * 2**20)))))


if __name__ == "__main__":
    main()
