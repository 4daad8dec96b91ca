"""The citizen profile's fan-out, measured: its latency against its sections called alone.

Starts the population, civil-status and business-registration mocks as real servers, each
slowed by a different start-up latency (as national systems are), and the hub in front of
them. Then, for the same citizens, times:

- each section alone through the hub (`GET /v1/citizens/{id}`,
  `GET /v1/civil-status/records?personal_id=…`, `POST …/business-registration/by-representative`);
- the profile (`GET /v1/citizens/{id}/profile`), which calls all three.

and prints p50/p99 of each, with the profile's p50 as a ratio of the slowest section's
(close to 1 when the sections run concurrently) and of their sum (what calling them one
after the other would cost).

    python bench/profile.py                          # latencies 20/60/100 ms, 8 s each
    python bench/profile.py --latency 50 50 50 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time

import aiohttp
from common import HUB, PY, create_client, get_json, pct, process  # bench/common.py

SECTIONS = ("population", "civil-status", "business-registration")


async def measure(
    name: str, url: str, ids: list[str], key: str, concurrency: int, duration: float
) -> list[float]:
    latencies: list[float] = []
    headers = {"authorization": f"Bearer {key}", "x-purpose": "bench"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(pid: str) -> None:
            if name == "population":
                request = session.get(f"{url}/v1/citizens/{pid}", headers=headers)
            elif name == "civil-status":
                request = session.get(
                    f"{url}/v1/civil-status/records", params={"personal_id": pid}, headers=headers
                )
            elif name == "business-registration":
                request = session.post(
                    f"{url}/v1/services/business-registration/by-representative",
                    json={"personal_id": pid},
                    headers=headers,
                )
            else:
                request = session.get(f"{url}/v1/citizens/{pid}/profile", headers=headers)
            async with request as response:
                body = await response.read()
                if response.status != 200:
                    raise SystemExit(f"{name}: HTTP {response.status} {body[:300]!r}")
                if name == "profile":
                    sections = json.loads(body)["data"]
                    bad = [
                        k
                        for k, v in sections.items()
                        if isinstance(v, dict)
                        and v["status"] != "ok"
                        and v.get("error", {}).get("code") != "NOT_FOUND"
                    ]
                    if bad:
                        raise SystemExit(f"profile sections failed: {bad}: {body[:500]!r}")

        async def worker(offset: int, deadline: float) -> None:
            i = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await one(ids[i % len(ids)])
                latencies.append(time.perf_counter() - t0)
                i += concurrency

        deadline = time.perf_counter() + duration
        await asyncio.gather(*(worker(w, deadline) for w in range(concurrency)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--latency",
        type=int,
        nargs=3,
        default=[20, 60, 100],
        metavar="MS",
        help="start-up latency of population, civil-status, business-registration",
    )
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--hub-port", type=int, default=18000)
    args = parser.parse_args()

    ports = {
        name: 18101 + i
        for i, name in enumerate(
            ("population", "civil-status", "judicial-records", "business-registration")
        )
    }
    hub = f"http://127.0.0.1:{args.hub_port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "HUB_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "HUB_ENABLED_ADAPTERS": json.dumps(list(SECTIONS)),
            "HUB_BACKGROUND_TASKS": "false",
            **{
                f"HUB_{n.upper().replace('-', '_')}_BASE_URL": f"http://127.0.0.1:{ports[n]}"
                for n in SECTIONS
            },
        }
        key = create_client(env, f"bench-{os.getpid()}", ["*"], ["bench"])["api_key"]
        with contextlib.ExitStack() as stack:
            for name, latency in zip(SECTIONS, args.latency, strict=True):
                cmd = [
                    PY,
                    "-m",
                    "mocks",
                    name,
                    "--port",
                    str(ports[name]),
                    "--fault",
                    f"latency={latency}",
                ]
                stack.enter_context(
                    process(cmd, env, f"http://127.0.0.1:{ports[name]}/_mock/health")
                )
            serve = [
                *HUB,
                "serve",
                "--port",
                str(args.hub_port),
                "--log-level",
                "warning",
            ]
            stack.enter_context(process(serve, env, f"{hub}/health"))
            ids = representatives(ports["business-registration"])
            print(
                f"cores: {os.cpu_count()}  concurrency: {args.concurrency}  "
                f"duration: {args.duration}s  subjects: {len(ids)}  "
                f"upstream latency (ms): {dict(zip(SECTIONS, args.latency, strict=True))}"
            )
            results = {}
            for name in (*SECTIONS, "profile"):
                results[name] = asyncio.run(
                    measure(name, hub, ids, key, args.concurrency, args.duration)
                )
    print(f"\n{'call':<24}{'calls':>7}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in results.items():
        print(f"{name:<24}{len(values):>7}{pct(values, 0.5):>10.1f}{pct(values, 0.99):>10.1f}")
    slowest = max(pct(results[n], 0.5) for n in SECTIONS)
    total = sum(pct(results[n], 0.5) for n in SECTIONS)
    profile = pct(results["profile"], 0.5)
    print(
        f"\nprofile p50 / slowest section p50: {profile / slowest:.2f}   "
        f"profile p50 / sum of sections p50: {profile / total:.2f}"
    )


def representatives(port: int) -> list[str]:
    """Citizens who represent an enterprise, so every section has something to return."""
    body = get_json(f"http://127.0.0.1:{port}/_mock/records?limit=200")
    ids = sorted({pid for record in body["records"] for pid in record["representatives"]})
    if not ids:
        raise SystemExit("the business-registration mock listed no representatives")
    return ids


if __name__ == "__main__":
    main()
