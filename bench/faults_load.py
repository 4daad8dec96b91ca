"""The calls the fault scenarios make: to the hub, as one client saw each (`Answer`; a
`Caller` for a run of GETs), at a fixed rate whatever the answers' latency (`open_loop`), and
to a mock's run-time fault API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.faults_cluster import PURPOSE


@dataclass
class Answer:
    """One call as its client saw it. `status` None: no answer (connection cut or refused)."""

    kind: str
    request_id: str
    sent: float  # seconds since the load started
    latency: float | None = None
    status: int | None = None
    code: str | None = None
    error: str | None = None
    data_id: str | None = None  # the payment's or the job's id
    data: dict[str, Any] | None = None  # the answer's `data`
    key: str | None = None  # Idempotency-Key
    restarted: bool = False  # sent to the restarted hub

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    answer: Answer,
    *,
    headers: dict[str, str],
    body: Any = None,
    timeout: float = 30,
) -> Answer:
    t0 = time.perf_counter()
    try:
        async with session.request(
            method,
            url,
            headers={**headers, "x-request-id": answer.request_id},
            json=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            raw = await response.read()
            answer.status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        answer.error = type(exc).__name__
        return answer
    answer.latency = time.perf_counter() - t0
    with contextlib.suppress(ValueError):
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            answer.code = parsed.get("code")
            data = parsed.get("data")
            if isinstance(data, dict):
                answer.data = data
                if isinstance(data.get("id"), str):
                    answer.data_id = data["id"]
    return answer


async def open_loop(
    rate: float, until: Callable[[float], bool], one: Callable[[int], Awaitable[None]]
) -> None:
    """Start `one(k)` at `rate` a second, whatever the answers' latency (open loop: a slow
    answer does not slow the arrivals), until `until(elapsed)`; then wait for all."""
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    k = 0
    while not until(time.perf_counter() - start):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(k))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)


def session(limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))


def headers_for(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}", "x-purpose": PURPOSE}


class Caller:
    """GETs to the hub as one client in one HTTP session: each call's request id starts with
    this run's `prefix` (what `Cluster.audit_records` finds its records by), and its `sent` is
    read on one clock, `now()`, started with the caller."""

    def __init__(self, http: aiohttp.ClientSession, hub: str, client: dict[str, str]) -> None:
        self.http, self.hub = http, hub
        self.headers = headers_for(client["api_key"])
        self.prefix = f"{secrets.token_hex(4)}-"
        self._started = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._started

    async def get(self, kind: str, name: str, path: str) -> Answer:
        """`GET path` as the call `prefix + name`, sent now."""
        answer = Answer(kind, self.prefix + name, self.now())
        return await call(self.http, "GET", self.hub + path, answer, headers=self.headers)


async def set_fault(http: aiohttp.ClientSession, mock: str, fault: dict[str, Any] | None) -> None:
    """Ask a mock for a fault through its run-time API (`PUT /_mock/faults`); None lifts it."""
    method = "PUT" if fault is not None else "DELETE"
    async with http.request(method, f"{mock}/_mock/faults", json=fault) as response:
        assert response.status == 200, await response.text()
