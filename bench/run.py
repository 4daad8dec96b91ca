"""The benchmark: the hub against a direct call to the mock, in one run, as ratios.

Starts the population mock and the hub as real servers on loopback, then drives the same
citizen look-up (a rotating set of real mock subjects) for a fixed time at each concurrency:

- direct: the SOAP request straight to the mock (envelope + auth header built per call, as
  any client of the national system must);
- floor: the same `GET` through a bare forwarding proxy on the hub's server and HTTP client
  (bench/floor.py): what any Python service in front of the mock costs here, nothing more;
- hub: `GET /v1/citizens/{id}` through the hub (auth, policy, validation, SOAP call, mapping,
  audit record committed to the database, metrics).

and prints requests/s, p50 and p99 for each, the ratios hub/direct and floor/direct, and
the CPU each process spent per call (the load generator's, the mock's, the proxy's), since
all of them share the machine's cores.

    python bench/run.py                         # concurrency 1 and 32, 10 s each
    python bench/run.py --duration 5 --concurrency 1 8 32 --transport httpx
    python bench/run.py --modes direct hub      # without the floor
    python bench/run.py --database-url postgresql://… --redis-url redis://… --hub-workers 2
    python bench/run.py --soak 600              # the hub alone at concurrency 64: its RSS

The load generator is one Python process (aiohttp on uvloop) in both modes, so both pay it
alike. Every process shares the machine's cores: the figures are relative to the direct
baseline measured in the same run, which is what makes them comparable across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from common import HUB, PY, Server, create_client, fetch_ids, pct, process  # bench/common.py

try:
    from uvloop import run
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    from asyncio import run


@dataclass
class Result:
    mode: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    #: CPU seconds per call of each process involved: the load generator, the mock, the proxy
    cpu_us: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return pct(self.latencies, q)


def soap_request(personal_id: str, url: str) -> tuple[bytes, dict[str, str]]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:dc="http://dancuquocgia.bca"><soapenv:Body><dc:TraCuuThongTinCongDan>'
        "<dc:MaYeuCau>bench</dc:MaYeuCau><dc:MaDVC>BENCH</dc:MaDVC><dc:MaTichHop>BENCH</dc:MaTichHop>"
        f"<dc:MaCanBo></dc:MaCanBo><dc:SoDinhDanh>{escape(personal_id)}</dc:SoDinhDanh>"
        "</dc:TraCuuThongTinCongDan></soapenv:Body></soapenv:Envelope>"
    ).encode()
    timestamp = str(int(time.time()))
    password = hashlib.sha256(f"{url}hub{timestamp}population-secret".encode()).hexdigest()
    headers = {
        "content-type": "text/xml; charset=utf-8",
        "soapaction": '"http://dancuquocgia.bca/TraCuuThongTinCongDan"',
        "authorization": "Basic " + base64.b64encode(f"hub:{password}".encode()).decode(),
        "timestamp": timestamp,
    }
    return body, headers


async def drive(
    mode: str, url: str, ids: list[str], concurrency: int, duration: float, api_key: str | None
) -> Result:
    """`concurrency` callers, each sending its next call as soon as the last one answered,
    for `duration` seconds after a short warm-up. Modes "hub" and "floor" send the same GET."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> bool:
            pid = ids[i % len(ids)]
            if mode == "direct":
                body, headers = soap_request(pid, url)
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status == 200
            headers = {"authorization": f"Bearer {api_key}", "x-purpose": "bench"}
            async with session.get(f"{url}/v1/citizens/{pid}", headers=headers) as response:
                await response.read()
                return response.status == 200

        async def worker(start: int, deadline: float, record: bool) -> None:
            nonlocal errors
            i = start
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                ok = await one(i)
                if record:
                    latencies.append(time.perf_counter() - t0)
                    errors += not ok
                i += concurrency

        warm = time.perf_counter() + min(1.0, duration / 5)
        await asyncio.gather(*(worker(w, warm, False) for w in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(
            *(worker(w * 7919, started + duration, True) for w in range(concurrency))
        )
        seconds = time.perf_counter() - started
    return Result(mode, concurrency, len(latencies), errors, seconds, latencies)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process and its children so far (Linux /proc; 0 where
    there is none): uvicorn's workers are children of the process the bench started."""
    if pid is None:
        return 0.0
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / tick
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                total += sum(cpu_seconds(int(child)) for child in children.read().split())
    except OSError:
        pass
    return total


def measure(
    mode: str,
    url: str,
    ids: list[str],
    c: int,
    duration: float,
    api_key: str | None,
    processes: dict[str, Server | None],
) -> Result:
    """One measurement, with the CPU each process spent per call (warm-up included, so
    slightly over)."""
    pids = {name: (s.proc.pid if s and s.proc else None) for name, s in processes.items()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own = os.times()
    result = run(drive(mode, url, ids, c, duration, api_key))
    own_after = os.times()
    calls = max(1, result.requests)
    result.cpu_us["loadgen"] = (
        (own_after.user + own_after.system - own.user - own.system) / calls * 1e6
    )
    for name, pid in pids.items():
        result.cpu_us[name] = (cpu_seconds(pid) - before[name]) / calls * 1e6
    return result


def rss_kib(pid: int | None) -> int:
    """Resident memory of a process and its children (uvicorn's workers), KiB (Linux)."""
    if pid is None:
        return 0
    total = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total = int(line.split()[1])
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                total += sum(rss_kib(int(child)) for child in children.read().split())
    except OSError:
        pass
    return total


def soak(url: str, ids: list[str], seconds: float, api_key: str, hub: Server) -> bool:
    """The hub alone at concurrency 64 for `seconds`, its RSS sampled every tenth of the
    run; the growth is judged from the end of the first fifth (warm-up) to the end."""
    pid = hub.proc.pid if hub.proc else None
    step = seconds / 10
    samples: list[tuple[float, int]] = [(0.0, rss_kib(pid))]
    print(f"soak: concurrency 64, {seconds:.0f} s; RSS of the hub (all workers), MiB")
    errors = 0
    for n in range(1, 11):
        result = run(drive("hub", url, ids, 64, step, api_key))
        errors += result.errors
        samples.append((n * step, rss_kib(pid)))
        print(f"  {n * step:>7.0f} s {samples[-1][1] / 1024:>8.1f}   {result.rps:>8.0f} req/s")
    warm, end = samples[2][1], samples[-1][1]
    growth = (end - warm) / warm if warm else float("nan")
    ok = growth < 0.10 and not errors
    print(
        f"RSS after warm-up {warm / 1024:.1f} MiB, at the end {end / 1024:.1f} MiB: "
        f"{growth:+.1%} (target < +10 %): {'MET' if ok else 'NOT MET'}"
        + (f"; {errors} calls failed" if errors else "")
    )
    return ok


#: Issue 17's targets (SQLite, defaults): (what, concurrency, test on the results).
TARGETS = (
    ("hub / floor throughput >= 50 %", 32, lambda f: f["hub"].rps / f["floor"].rps >= 0.50),
    ("hub CPU per call <= 250 us", 32, lambda f: f["hub"].cpu_us["hub"] <= 250),
    ("hub CPU per call <= 500 us", 1, lambda f: f["hub"].cpu_us["hub"] <= 500),
    (
        "added p50 over direct <= 0.6 ms",
        1,
        lambda f: f["hub"].pct(0.5) - f["direct"].pct(0.5) <= 0.6,
    ),
    ("p99 <= 15 ms", 32, lambda f: f["hub"].pct(0.99) <= 15),
)


def check_targets(results: list[Result]) -> None:
    print()
    for what, c, met in TARGETS:
        found = {r.mode: r for r in results if r.concurrency == c}
        if not {"direct", "floor", "hub"} <= set(found):
            continue
        print(f"target, concurrency {c}: {what}: {'MET' if met(found) else 'NOT MET'}")


def report(results: list[Result]) -> list[dict[str, float]]:
    print(
        f"\n{'mode':<8}{'conc':>6}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"   CPU us/call: {'loadgen':>8}{'mock':>7}{'proxy':>7}"
    )
    for r in results:
        proxy = r.cpu_us.get(r.mode, 0.0) if r.mode != "direct" else 0.0
        print(
            f"{r.mode:<8}{r.concurrency:>6}{r.rps:>10.0f}{r.pct(0.5):>10.2f}{r.pct(0.99):>10.2f}"
            f"{r.errors:>8}{'':>15}{r.cpu_us.get('loadgen', 0):>8.0f}"
            f"{r.cpu_us.get('mock', 0):>7.0f}{proxy:>7.0f}"
        )
    rows = []
    print(
        f"\n{'conc':>6}{'hub/direct req/s':>18}{'floor/direct':>14}{'hub/floor':>11}"
        f"{'hub p50 / direct p50':>22}{'hub p99 ms':>12}"
    )
    for c in sorted({r.concurrency for r in results}):
        found = {r.mode: r for r in results if r.concurrency == c}
        direct, hub, floor = found.get("direct"), found.get("hub"), found.get("floor")
        if direct is None or (hub is None and floor is None):
            continue
        floor_ratio = f"{floor.rps / direct.rps:.0%}" if floor else "-"
        if hub is None:  # the floor alone (--modes direct floor)
            print(f"{c:>6}{'-':>17}{floor_ratio:>14}{'-':>11}{'-':>22}{'-':>12}")
            continue
        ratio = hub.rps / direct.rps
        rows.append({"concurrency": c, "ratio": ratio, "hub_p99_ms": hub.pct(0.99)})
        hub_floor = f"{hub.rps / floor.rps:.0%}" if floor else "-"
        print(
            f"{c:>6}{ratio:>17.0%}{floor_ratio:>14}{hub_floor:>11}"
            f"{hub.pct(0.5) / direct.pct(0.5):>21.1f}x{hub.pct(0.99):>12.2f}"
        )
    return rows


def wanted(
    mode: str, modes: list[str], args: list[str], env: dict[str, str], health_url: str
) -> contextlib.AbstractContextManager[Server | None]:
    """The proxy server of `mode` for the run, or None when that mode is not timed."""
    return process(args, env, health_url) if mode in modes else contextlib.nullcontext()


def as_json(results: list[Result]) -> dict[str, Any]:
    """The measurements and the ratios to the direct call, as `--json` prints them."""
    by = {(r.mode, r.concurrency): r for r in results}
    ratios = []
    for c in sorted({r.concurrency for r in results}):
        direct = by.get(("direct", c))
        if direct is None or not direct.rps:
            continue
        ratios.append(
            {
                "concurrency": c,
                **{
                    f"{mode}/direct": round(by[(mode, c)].rps / direct.rps, 3)
                    for mode in ("floor", "hub")
                    if (mode, c) in by
                },
            }
        )
    return {
        "results": [
            {
                "mode": r.mode,
                "concurrency": r.concurrency,
                "requests": r.requests,
                "errors": r.errors,
                "rps": round(r.rps, 1),
                "p50_ms": round(r.pct(0.5), 3),
                "p99_ms": round(r.pct(0.99), 3),
                "cpu_us_per_call": {k: round(v, 1) for k, v in r.cpu_us.items()},
            }
            for r in results
        ],
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--transport", choices=["http1", "aiohttp", "httpx"], default="http1")
    parser.add_argument("--hub-workers", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--redis-url", default=None, help="shared counters and circuits (production: with Redis)"
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=None,
        metavar="SECONDS",
        help="instead: the hub alone at concurrency 64 this long, its memory sampled",
    )
    parser.add_argument("--mock-port", type=int, default=18101)
    parser.add_argument("--hub-port", type=int, default=18000)
    parser.add_argument("--floor-port", type=int, default=18001)
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["direct", "floor", "hub"],
        default=["direct", "floor", "hub"],
        help="what to time (direct is the baseline of the ratios)",
    )
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = parser.parse_args()

    mock = f"http://127.0.0.1:{args.mock_port}"
    hub = f"http://127.0.0.1:{args.hub_port}"
    floor = f"http://127.0.0.1:{args.floor_port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "HUB_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.db",
            "HUB_POPULATION_BASE_URL": mock,
            "HUB_HTTP_TRANSPORT": args.transport,
            "HUB_ENABLED_ADAPTERS": '["population"]',
        }
        if args.redis_url:
            env["HUB_REDIS_URL"] = args.redis_url
        if args.soak:
            args.modes = ["hub"]
        api_key = create_client(env, f"bench-{os.getpid()}", ["population"], ["bench"])["api_key"]
        mock_cmd = [PY, "-m", "mocks", "population", "--port", str(args.mock_port)]
        serve_cmd = [
            *HUB,
            "serve",
            "--port",
            str(args.hub_port),
            "--log-level",
            "warning",
            "--workers",
            str(args.hub_workers),
        ]
        floor_cmd = [
            PY,
            str(Path(__file__).with_name("floor.py")),
            "--port",
            str(args.floor_port),
            "--upstream",
            mock,
        ]
        with (
            process(mock_cmd, env, f"{mock}/_mock/health") as mock_server,
            wanted("hub", args.modes, serve_cmd, env, f"{hub}/health") as hub_server,
            wanted("floor", args.modes, floor_cmd, env, f"{floor}/health") as floor_server,
        ):
            ids = fetch_ids(mock, args.subjects)
            if args.soak:
                assert hub_server is not None
                raise SystemExit(0 if soak(hub, ids, args.soak, api_key, hub_server) else 1)
            if not args.json:
                print(
                    f"cores: {os.cpu_count()}  transport: {args.transport}  "
                    f"hub workers: {args.hub_workers}  "
                    f"database: {env['HUB_DATABASE_URL'].split(':', 1)[0]}  "
                    f"redis: {'yes' if args.redis_url else 'no'}  "
                    f"duration: {args.duration}s  subjects: {len(ids)}"
                )
            processes = {"mock": mock_server, "hub": hub_server, "floor": floor_server}
            urls = {"direct": f"{mock}/dancu/ws", "floor": floor, "hub": hub}
            results: list[Result] = []
            for c in args.concurrency:
                for mode in ("direct", "floor", "hub"):
                    if mode in args.modes:
                        results.append(
                            measure(mode, urls[mode], ids, c, args.duration, api_key, processes)
                        )
            if args.json:
                print(json.dumps(as_json(results), indent=2))
                return
            report(results)
    if any(r.errors for r in results):
        print("\nWARNING: some calls failed; the figures are not comparable")
    check_targets(results)


if __name__ == "__main__":
    main()
