"""Circuit state shared by hub processes through Redis: two "processes" (a breaker and its
CircuitSync each, over one Redis) on one fake clock, exchanges driven by the test; then two
in-process hub apps against one upstream (respx), whose calls are counted.

Against the Redis in HUB_TEST_REDIS_URL when it is set (CI's second pass; keys under this
test's own prefix, removed after it), else against fakeredis."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis
import respx
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hub.errors import UpstreamError, UpstreamTimeout
from hub.resilience.circuit import CircuitBreaker, CircuitOpen, CircuitPolicy
from hub.resilience.circuit_sync import CircuitSync, Record
from tests.conftest import running_hub
from tests.test_circuit import Clock, circuit_metric
from tests.test_pipeline import PID, EchoAdapter, assert_problem, call

REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL")

Connect = Callable[[], Any]


@pytest.fixture
async def connect(redis_prefix: str) -> AsyncIterator[Connect]:
    """Makes Redis clients, one per "process", all on the same Redis."""
    clients: list[Any] = []
    server = fakeredis.FakeServer()

    def make() -> Any:
        if REDIS_URL:
            client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2)
        else:
            client = fakeredis.FakeAsyncRedis(server=server)
        clients.append(client)
        return client

    yield make
    if REDIS_URL:  # leave nothing behind in the shared Redis
        cleaner = make()
        keys = [key async for key in cleaner.scan_iter(f"{redis_prefix}*")]
        if keys:
            await cleaner.delete(*keys)
    for client in clients:
        await client.aclose()


def dead_redis() -> Any:
    """A client of a Redis that is not there: every command fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return aioredis.Redis(  # (not from_url: the tests of hub apps replace it)
        host="127.0.0.1",
        port=port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),  # fail at once, not after redis-py's ten retries
    )


class Process:
    """One hub process's breaker of the echo upstream and its CircuitSync."""

    def __init__(self, redis: Any, clock: Clock, prefix: str) -> None:
        self.errors = 0
        self.breaker = CircuitBreaker(
            "echo",
            CircuitPolicy(min_calls=4, failure_ratio=0.5, cooldown_s=5, max_cooldown_s=60),
            clock=clock,
        )
        self.sync = CircuitSync(
            [self.breaker], redis, prefix=prefix, call_s=3, wall=clock, on_error=self.failed
        )

    def failed(self) -> None:
        self.errors += 1

    def call(self, error: BaseException | None = None) -> bool:
        """One call through the breaker: whether it reached upstream (refusals are not
        raised: they are what the test looks at afterwards, through `refused`)."""
        try:
            trial = self.breaker.enter()
        except CircuitOpen:
            return False
        self.breaker.leave(trial=trial, error=error)
        return True

    def refused(self) -> int:
        """The Retry-After of a refused call (fails when the call would be admitted)."""
        with pytest.raises(CircuitOpen) as refused:
            self.breaker.enter()
        return refused.value.retry_after or 0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def two(connect: Connect, clock: Clock, redis_prefix: str) -> tuple[Process, Process]:
    return Process(connect(), clock, redis_prefix), Process(connect(), clock, redis_prefix)


async def exchange(*processes: Process) -> None:
    for process in processes:
        await process.sync.sync_once()


async def opened(a: Process, b: Process) -> None:
    """A's calls fail until its breaker opens; one exchange each and B has adopted it."""
    for _ in range(4):
        assert a.call(UpstreamError())
    assert a.breaker.state == "open" and b.breaker.state == "closed"
    await exchange(a, b)


async def test_an_open_circuit_reaches_the_other_process_at_its_next_exchange(two, clock):
    a, b = two
    await opened(a, b)
    assert b.breaker.state == "open" and b.breaker.shared
    assert b.breaker.record_id == a.breaker.record_id
    assert b.refused() == 5  # the same pause, to the same moment
    clock.now += 2
    assert a.refused() == b.refused() == 3
    raw = await a.sync.redis.get(a.sync.key("echo"))
    record = Record.decode(raw)
    assert record is not None and record.state == "open" and record.cooldown_s == 5
    assert await a.sync.redis.pttl(a.sync.key("echo")) > 0  # expires


async def test_one_trial_for_the_whole_cluster(two, clock):
    a, b = two
    await opened(a, b)
    a.refused(), b.refused()  # both have callers waiting
    clock.now += 4.5  # the cool-down ends within the next exchange: the permit is taken
    await exchange(a, b)
    assert a.breaker.has_permit() and not b.breaker.has_permit()
    clock.now += 0.5
    assert b.refused() == 1  # B waits for A's trial...
    trial = a.breaker.enter()
    assert trial and a.breaker.state == b.breaker.state == "half_open"
    assert a.refused() == 1  # ...and so does A's next call: one trial at a time
    assert b.refused() == 1
    await exchange(b)
    assert not b.breaker.has_permit()  # A holds it while its trial runs
    a.breaker.leave(trial=trial, error=None)
    assert a.breaker.state == "closed"


async def test_a_failed_trial_doubles_the_cool_down_for_both(two, clock):
    a, b = two
    await opened(a, b)
    b.refused()
    clock.now += 5
    assert b.refused() == 1  # B asks for the permit now (A has no callers)
    await exchange(a, b)
    assert b.breaker.has_permit() and not a.breaker.has_permit()
    assert b.call(UpstreamTimeout())  # the trial, and it fails
    assert b.breaker.state == "open" and b.refused() == 10
    assert a.refused() == 1  # A has not heard yet
    await exchange(b, a)
    assert a.breaker.state == "open" and a.refused() == 10
    clock.now += 10  # the next trial fails too: 20 s for both
    assert b.refused() == 1
    await exchange(b, a)  # (both had callers refused: the first to ask gets it)
    assert b.breaker.has_permit() and not a.breaker.has_permit()
    assert b.call(UpstreamError())
    await exchange(b, a)
    assert a.refused() == b.refused() == 20
    assert a.breaker.snapshot()[2] == b.breaker.snapshot()[2] == 20


async def test_a_successful_trial_closes_both(two, clock):
    a, b = two
    await opened(a, b)
    a.refused()
    clock.now += 5
    await exchange(a, b)
    assert a.call()  # the trial succeeds
    assert a.breaker.state == "closed" and b.breaker.state == "open"
    await exchange(a, b)
    assert b.breaker.state == "closed" and a.breaker.record_id == b.breaker.record_id
    assert b.call() and b.call()
    record = Record.decode(await b.sync.redis.get(b.sync.key("echo")))
    assert record is not None and record.state == "closed"


async def test_a_permit_with_no_call_goes_back_to_the_cluster(two, clock):
    a, b = two
    await opened(a, b)
    a.refused()
    clock.now += 4.5
    await exchange(a)
    assert a.breaker.has_permit()
    clock.now += 0.5 + a.sync.hold_s  # A got no call in time
    assert b.refused() == 1
    await exchange(a, b)
    assert not a.breaker.has_permit() and b.breaker.has_permit()
    assert b.call()  # B's trial
    assert a.refused() == 1  # A asks again, but gets nothing until B's result is in
    await exchange(a)
    assert not a.breaker.has_permit()
    await exchange(b, a)
    assert a.breaker.state == "closed"


async def test_a_process_that_opens_late_cannot_shorten_a_doubled_cool_down(
    connect, clock, redis_prefix
):
    a, b, late = (Process(connect(), clock, redis_prefix) for _ in range(3))
    await opened(a, b)
    clock.now += 5
    a.refused()
    await exchange(a)
    assert a.call(UpstreamError())  # A's trial fails: 10 s
    await exchange(a)
    for _ in range(4):  # `late` never exchanged and judges on its own calls: 5 s
        late.call(UpstreamError())
    assert late.refused() == 5
    await exchange(late, b)
    assert late.refused() == b.refused() == 10  # it took the cluster's record instead
    assert late.breaker.record_id == b.breaker.record_id == a.breaker.record_id


async def test_redis_trouble_leaves_each_process_on_its_own(connect, clock, redis_prefix, caplog):
    a = Process(dead_redis(), clock, redis_prefix)
    b = Process(connect(), clock, redis_prefix)
    await exchange(a, b)
    assert a.errors == 1 and not a.breaker.shared and b.breaker.shared
    caplog.set_level(logging.INFO, "hub.circuit")
    for _ in range(4):  # every call goes through and is judged as before
        assert a.call(UpstreamError())
    assert a.breaker.state == "open" and a.refused() == 5
    await exchange(a, b)
    await exchange(a)
    assert a.errors == 3 and b.breaker.state == "closed"  # B never heard
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis failed" in warnings[0].getMessage()  # once
    clock.now += 5
    assert a.call(UpstreamError())  # its own trial, with no permit to ask for
    assert a.refused() == 10

    await a.sync.redis.aclose()
    a.sync.redis = connect()  # Redis is back
    await exchange(a, b)
    assert a.breaker.shared and a.errors == 3
    assert b.breaker.state == "open" and b.refused() == 10  # what A decided went out
    assert "shared through Redis again" in caplog.records[-1].getMessage()


# -- two hub apps, one upstream -------------------------------------------------------------


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(base_url="http://echo.upstream", assert_all_called=False)


@pytest.fixture
def hub_settings(settings, monkeypatch, connect):
    """Settings of two hub processes on one database and, unless a test removes it, one
    Redis (fakeredis when no real one is given; `connect` cleans the real one up)."""
    settings.circuit_min_calls = 4
    settings.circuit_cooldown_s = 5
    settings.retry_attempts = 1  # one upstream call a hub call: counted below
    settings.adapters = {"echo": {"base_url": "http://echo.upstream"}}
    settings.redis_url = REDIS_URL
    if not REDIS_URL:
        server = fakeredis.FakeServer()
        settings.redis_url = "redis://fakeredis"
        monkeypatch.setattr(
            aioredis.Redis,
            "from_url",
            staticmethod(lambda url, **_: fakeredis.FakeAsyncRedis(server=server)),
        )
    return settings


async def two_hubs(settings, upstream, clock):
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    hubs = [running_hub(settings, adapters=[EchoAdapter], transports=transports) for _ in range(2)]
    entered = [await h.__aenter__() for h in hubs]
    for running in entered:
        running.hub.registry.get("echo").circuit.clock = clock
        if running.hub.circuits is not None:
            await running.hub.circuits.aclose()  # exchanges when the test says
            running.hub.circuits.wall = clock
    return hubs, entered


async def test_two_hub_processes_answer_as_one(hub_settings, upstream, clock):
    route = upstream.get(f"/items/{PID}").respond(503)
    hubs, (a, b) = await two_hubs(hub_settings, upstream, clock)
    try:
        key = a.client()
        for _ in range(4):
            assert_problem(await call(a, key), 502, "UPSTREAM_ERROR")
        assert route.call_count == 4
        assert_problem(await call(a, key), 503, "UPSTREAM_UNAVAILABLE")
        assert (await call(b, key)).status_code == 502  # B has not heard yet
        await a.hub.circuits.sync_once()
        await b.hub.circuits.sync_once()
        calls = route.call_count
        refused = assert_problem(await call(b, key), 503, "UPSTREAM_UNAVAILABLE")
        assert "paused" in refused["detail"]
        assert route.call_count == calls  # refused without calling upstream
        ready = (await b.http.get("/ready")).json()["services"]["echo"]
        assert ready["circuit"] == "open" and ready["circuit_shared"] is True
        assert circuit_metric((await b.http.get("/metrics")).text) == "2.0"

        route.respond(200, json={"value": 1})  # upstream is back
        clock.now += 4.5
        await a.hub.circuits.sync_once()
        await b.hub.circuits.sync_once()
        clock.now += 0.5
        answers = [await call(b, key), await call(a, key), await call(b, key)]
        assert [r.status_code for r in answers] == [503, 200, 503]
        assert route.call_count == calls + 1  # one trial, across both
        await a.hub.circuits.sync_once()
        await b.hub.circuits.sync_once()
        assert (await call(b, key)).status_code == 200
        assert (await b.http.get("/ready")).json()["services"]["echo"]["circuit"] == "closed"
        assert circuit_metric((await b.http.get("/metrics")).text) == "0.0"
    finally:
        for h in reversed(hubs):
            await h.__aexit__(None, None, None)


async def test_redis_down_counts_errors_and_fails_no_call(hub_settings, upstream, clock):
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    hubs, (a, _) = await two_hubs(hub_settings, upstream, clock)
    try:
        a.hub.circuits.redis = dead_redis()
        await a.hub.circuits.sync_once()
        key = a.client()
        assert (await call(a, key)).status_code == 200
        assert "hub_circuit_sync_errors_total 1.0" in (await a.http.get("/metrics")).text
        ready = (await a.http.get("/ready")).json()["services"]["echo"]
        assert ready["circuit"] == "closed" and ready["circuit_shared"] is False
    finally:
        await a.hub.circuits.redis.aclose()
        for h in reversed(hubs):
            await h.__aexit__(None, None, None)


async def test_without_redis_each_process_judges_alone(hub_settings, upstream, clock):
    hub_settings.redis_url = None
    route = upstream.get(f"/items/{PID}").respond(503)
    hubs, (a, b) = await two_hubs(hub_settings, upstream, clock)
    try:
        assert a.hub.circuits is None and b.hub.circuits is None
        key = a.client()
        for _ in range(4):
            await call(a, key)
        assert_problem(await call(a, key), 503, "UPSTREAM_UNAVAILABLE")
        assert (await call(b, key)).status_code == 502  # B calls upstream: its own circuit
        assert route.call_count == 5
        ready = (await b.http.get("/ready")).json()["services"]["echo"]
        assert ready["circuit"] == "closed" and ready["circuit_shared"] is False
        clock.now += 5
        route.respond(200, json={"value": 1})
        assert (await call(a, key)).status_code == 200  # its own trial, no permit to ask
    finally:
        for h in reversed(hubs):
            await h.__aexit__(None, None, None)
