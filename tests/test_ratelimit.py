"""Rate limits per client and for the whole hub: 429 RATE_LIMITED with Retry-After, audited;
a new minute lets calls through again; a broken counter store lets calls through (counted in
process memory meanwhile, tests/test_redis_down.py); with Redis the limit holds across hub
processes, without it each process counts alone.

The in-process tests count in Redis in CI's second pass (HUB_TEST_REDIS_URL) and in process
memory in the first, so both stores run the same assertions.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time

import httpx
import pytest

from hub.security.ratelimit import MemoryCounters, RateLimiter
from tests.conftest import running_hub
from tests.test_pipeline import assert_problem
from tests.test_servers import HUB, free_port, start, stop, wait_until_up

#: Refused after the rate check without going upstream: 404 UNKNOWN_SERVICE in a hub with
#: no adapter, 400 INVALID_PERSONAL_ID in one with the population adapter.
BAD_ID = "/v1/services/population/lookup"
BAD_INPUT = {"personal_id": "123"}


class Clock:
    def __init__(self) -> None:
        # The start of a minute no other run used: counters live on in a shared Redis.
        self.now = 1_800_000_000.0 + 60 * random.randrange(10**9)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hub(settings):
    async with running_hub(settings, adapters=[]) as running:
        running.hub.gateway.limiter.clock = clock = Clock()
        running.clock = clock  # type: ignore[attr-defined]
        yield running


async def calls(hub, key, n):
    return [
        (await hub.http.post(BAD_ID, json=BAD_INPUT, headers=hub.headers(key))).status_code
        for _ in range(n)
    ]


async def test_a_client_past_its_rate_gets_429_until_its_oldest_call_leaves_the_window(hub):
    limited, other = hub.client(rate_per_minute=3), hub.client()
    assert await calls(hub, limited, 1) == [404]
    hub.clock.now += 20
    assert await calls(hub, limited, 2) == [404, 404]
    hub.clock.now += 10
    refused = assert_problem(
        await hub.http.post(BAD_ID, json=BAD_INPUT, headers=hub.headers(limited)),
        429,
        "RATE_LIMITED",
    )
    assert "3 calls a minute" in refused["detail"]
    answer = await hub.http.post(BAD_ID, json=BAD_INPUT, headers=hub.headers(limited))
    assert answer.headers["retry-after"] == "30"  # when the first call is a minute old
    assert await calls(hub, other, 5) == [404] * 5  # another client is not held back
    assert [r["code"] for r in hub.audit_rows()].count("RATE_LIMITED") == 2  # audited
    metrics = (await hub.http.get("/metrics")).text
    assert "hub_rate_limited_total" in metrics
    hub.clock.now += 30  # the first call has left the window; the refused ones never joined
    assert await calls(hub, limited, 2) == [404, 429]
    hub.clock.now += 20  # so have the other two
    assert await calls(hub, limited, 3) == [404, 404, 429]


async def test_twice_the_limit_across_a_minute_boundary_is_refused(hub):
    """Issue 18, finding 5: a fixed window let a 30/minute client make 60 calls in 2.1 s,
    30 at the end of one clock minute and 30 at the start of the next."""
    key = hub.client(rate_per_minute=30)
    minute = (hub.clock.now // 60 + 1) * 60
    hub.clock.now = minute - 1.0
    assert await calls(hub, key, 30) == [404] * 30
    hub.clock.now = minute + 1.1  # a new clock minute
    answers = await calls(hub, key, 30)
    assert answers == [429] * 30
    hub.clock.now = minute + 59.0  # the 30 calls are a minute old: the window is free again
    assert await calls(hub, key, 31) == [404] * 30 + [429]


async def test_a_steady_client_at_its_limit_is_never_refused(hub):
    key = hub.client(rate_per_minute=6)
    for _ in range(24):  # four minutes, a call every ten seconds
        assert await calls(hub, key, 1) == [404]
        hub.clock.now += 10


async def test_the_hubs_own_limit_counts_every_client(settings):
    settings.rate_limit_per_minute = 4
    async with running_hub(settings, adapters=[]) as hub:
        hub.hub.gateway.limiter.clock = Clock()
        first, second = hub.client(), hub.client()
        assert await calls(hub, first, 2) + await calls(hub, second, 2) == [404] * 4
        assert_problem(
            await hub.http.post(BAD_ID, json=BAD_INPUT, headers=hub.headers(second)),
            429,
            "RATE_LIMITED",
        )


async def test_a_broken_counter_store_lets_calls_through_counted_in_memory(hub):
    class Down(MemoryCounters):
        attempts = 0

        async def hit(self, key: str, limit: int, now: float, window_s: float = 60) -> float:
            Down.attempts += 1
            raise ConnectionError("redis is down")

    limiter: RateLimiter = hub.hub.gateway.limiter
    limiter.counters = Down()
    limiter.monotonic = lambda: 0.0  # the back-off never ends here
    key = hub.client(rate_per_minute=2)
    # Let through, and counted in this process meanwhile: the limit still holds here.
    assert await calls(hub, key, 4) == [404, 404, 429, 429]
    assert Down.attempts == 1  # the store is left alone for the back-off
    assert "hub_rate_limit_errors_total 1.0" in (await hub.http.get("/metrics")).text


def test_the_rate_option_of_hub_clients_create(tmp_path):
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db"}
    ok = subprocess.run(
        [*HUB, "clients", "create", "app", "--allow", "*", "--rate", "600/minute"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*HUB, "clients", "create", "app2", "--allow", "*", "--rate", "fast"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0 and "N/minute" in bad.stderr


@pytest.mark.server
def test_a_limit_across_two_hub_processes(tmp_path):
    """Two `hub serve` processes on one database: with Redis (CI's second pass, production)
    the client's 4 calls a minute hold across both; with no Redis (a laptop), each process
    counts its own."""
    from tests.conftest import database_url, reset_database

    url = database_url(tmp_path)
    reset_database(url)
    redis = os.environ.get("HUB_TEST_REDIS_URL")
    env = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "rate-limit-test-secret",
        "HUB_ENABLED_ADAPTERS": '["population"]',
        "HUB_REDIS_URL": redis or "",
    }
    if not redis:
        env.pop("HUB_REDIS_URL")
    ports = [free_port(), free_port()]
    hubs = [start([*HUB, "serve", "--port", str(p), "--log-level", "warning"], env) for p in ports]
    try:
        for proc, port in zip(hubs, ports, strict=True):
            wait_until_up(proc, f"http://127.0.0.1:{port}/health")
        created = subprocess.run(
            [*HUB, "clients", "create", "busy-app", "--allow", "*", "--rate", "4/minute"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        headers = {"authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}

        def status(port: int) -> int:
            return httpx.post(
                f"http://127.0.0.1:{port}{BAD_ID}", json=BAD_INPUT, headers=headers
            ).status_code

        # The counts are per minute of the real clock: start well inside one, so the calls
        # below cannot straddle two windows.
        while time.time() % 60 > 50:
            time.sleep(0.5)
        # Four calls, two to each process: within the limit either way.
        assert [status(ports[0]), status(ports[1]), status(ports[0]), status(ports[1])] == [400] * 4
        if redis:
            assert status(ports[0]) == 429 and status(ports[1]) == 429  # one count for both
        else:
            # Each counts its own: the first process has seen 2 calls of its 4.
            assert [status(ports[0]), status(ports[0]), status(ports[0])] == [400, 400, 429]
    finally:
        for proc in hubs:
            stop(proc)
