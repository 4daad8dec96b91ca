"""Redis down: rate-limited calls go through (fail-open), counted in the process's memory
meanwhile, and wait on the unreachable Redis at most once a back-off; when Redis answers
again, counting goes back to it.

A hub app against a Redis address that does not answer: a server that accepts connections
and never replies (a hung Redis, a black-holed path), or a port nothing listens on. Then
fakeredis's TCP server starts on that port: Redis is back. Redis attempts are counted (the
counters' calls, and the connections the silent server accepted), not timed; the back-off
runs on a fake clock. Then the limiter's breaker alone, over counters that fail on demand.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
from fakeredis import TcpFakeServer

from hub.errors import RateLimited
from hub.security.ratelimit import MemoryCounters, RateLimiter, RedisCounters
from tests.conftest import running_hub
from tests.test_ratelimit import Clock, calls
from tests.test_servers import free_port


class Timer:
    """The limiter's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FlakyRedis:
    """A Redis address that does not answer: `silent` accepts connections and holds them
    without a word; `closed` has nothing listening (connections refused). `answer()` starts
    fakeredis's TCP server on the same port: Redis is back."""

    def __init__(self, fault: str) -> None:
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._tcp: TcpFakeServer | None = None
        if fault == "silent":
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            self._listener, self.port = listener, listener.getsockname()[1]
            self._thread = threading.Thread(target=self._hold, daemon=True)
            self._thread.start()
        else:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _hold(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # shut down
                return
            self.accepted += 1
            self._held.append(conn)

    def _end_silence(self) -> None:
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
            assert self._thread is not None
            self._thread.join(5)
            self._listener.close()
            self._listener = None
        for conn in self._held:
            conn.close()
        self._held.clear()

    def answer(self) -> Any:
        """Redis is back on the same address; returns its data (a fakeredis FakeServer)."""
        self._end_silence()
        self._tcp = TcpFakeServer(("127.0.0.1", self.port))
        threading.Thread(target=self._tcp.serve_forever, daemon=True).start()
        return self._tcp.fake_server

    def __enter__(self) -> FlakyRedis:
        return self

    def __exit__(self, *_: object) -> None:
        self._end_silence()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()


def count_attempts(limiter: RateLimiter) -> Callable[[], int]:
    """Counts the limiter's calls to its (Redis) counters."""
    counters: Any = limiter.counters
    hit, attempts = counters.hit, [0]

    async def counted(key: str, limit: int, now: float, window_s: float = 60) -> float:
        attempts[0] += 1
        return await hit(key, limit, now, window_s)

    counters.hit = counted
    return lambda: attempts[0]


def errors(metrics: str) -> float:
    line = next(ln for ln in metrics.splitlines() if ln.startswith("hub_rate_limit_errors_total"))
    return float(line.split()[-1])


@pytest.mark.parametrize("fault", ["silent", "closed"])
async def test_redis_down_calls_go_through_counted_here_then_in_redis_again(
    settings, fault, caplog
):
    caplog.set_level(logging.INFO, "hub.ratelimit")
    with FlakyRedis(fault) as redis:
        settings.redis_url = redis.url
        async with running_hub(settings, adapters=[]) as hub:
            limiter: RateLimiter = hub.hub.gateway.limiter
            limiter.clock, limiter.monotonic = Clock(), (timer := Timer())
            attempts = count_attempts(limiter)
            key = hub.client(rate_per_minute=3)

            # (a) Through at once, and the client's limit still holds, counted here.
            started = time.monotonic()
            assert await calls(hub, key, 6) == [404, 404, 404, 429, 429, 429]
            assert time.monotonic() - started < 5  # (one wait of 0.25 s at most, not six)
            # (b) One Redis attempt: the others fell in the back-off (1 s).
            assert attempts() == 1
            assert redis.accepted == (1 if fault == "silent" else 0)  # and no retry
            timer.now += 0.9
            assert await calls(hub, key, 1) == [429]
            assert attempts() == 1
            timer.now += 0.1  # the back-off is over: one call tries Redis, which fails again
            assert await calls(hub, key, 2) == [429, 429]
            assert attempts() == 2
            timer.now += 1.9  # ...and the back-off doubled
            assert await calls(hub, key, 1) == [429]
            assert attempts() == 2
            timer.now += 0.1
            assert await calls(hub, key, 1) == [429]
            assert attempts() == 3
            assert redis.accepted == (3 if fault == "silent" else 0)
            assert errors((await hub.http.get("/metrics")).text) == 3
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "Redis failed" in warnings[0].getMessage()  # once

            # (c) Redis is back: after the back-off (4 s), counting resumes there.
            data = fakeredis.FakeRedis(server=redis.answer())
            timer.now += 3.9
            assert await calls(hub, key, 1) == [429]
            assert attempts() == 3 and data.keys() == []
            timer.now += 0.1
            assert await calls(hub, key, 4) == [404, 404, 404, 429]  # a fresh count, in Redis
            assert attempts() == 7
            [counted] = data.keys(f"{settings.redis_prefix}rl:*")
            # The window's log: the three calls let through, not the one refused.
            assert data.zcard(counted) == 3 and data.ttl(counted) > 0
            assert any("counted in Redis again" in r.getMessage() for r in caplog.records)
            assert errors((await hub.http.get("/metrics")).text) == 3


def test_the_redis_client_has_short_timeouts_and_no_retries():
    counters = RedisCounters("redis://127.0.0.1:1/0", timeout_s=0.2)
    kwargs = counters.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.2
    assert kwargs["retry"].get_retries() == 0


# -- the limiter's breaker ------------------------------------------------------------------


class Flaky(MemoryCounters):
    """Counters that fail while `down`; `gate`, when set, holds each hit until it opens."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.attempts = True, 0
        self.gate: asyncio.Event | None = None

    async def hit(self, key: str, limit: int, now: float, window_s: float = 60) -> float:
        self.attempts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError("redis is down")
        return await super().hit(key, limit, now, window_s)


def limiter_over(counters: Flaky) -> tuple[RateLimiter, Timer, list[int]]:
    timer, failures = Timer(), [0]

    def failed() -> None:
        failures[0] += 1

    limiter = RateLimiter(
        counters, global_per_minute=1000, clock=Clock(), monotonic=timer, on_error=failed
    )
    return limiter, timer, failures


async def test_the_back_off_doubles_to_its_cap_and_the_first_answer_ends_it(caplog):
    caplog.set_level(logging.INFO, "hub.ratelimit")
    counters = Flaky()
    limiter, timer, failures = limiter_over(counters)
    await limiter.check("app", 100)
    assert counters.attempts == 1 and limiter.failing
    for backoff in (1, 2, 4, 8, 16, 30, 30):
        timer.now += backoff - 0.01
        await limiter.check("app", 100)
        assert counters.attempts == failures[0]  # none while it runs
        timer.now += 0.01
        await limiter.check("app", 100)
        assert counters.attempts == failures[0]  # one at its end
    assert failures[0] == 8
    counters.down = False
    timer.now += 30
    await limiter.check("app", 100)  # Redis answers: the breaker closes
    assert not limiter.failing
    attempts = counters.attempts
    await limiter.check("app", 100)
    assert counters.attempts == attempts + 2  # the client's count and the hub's, in Redis
    counters.down = True  # a new outage starts again from 1 s
    await limiter.check("app", 100)
    timer.now += 1
    await limiter.check("app", 100)
    assert failures[0] == 10
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Redis failed" in m for m in messages) == 2  # once an outage
    assert sum("in Redis again" in m for m in messages) == 1


async def test_one_call_tries_redis_again_while_the_others_count_here():
    counters = Flaky()
    limiter, timer, _ = limiter_over(counters)
    await limiter.check("app", 2)  # fails: counted here (1)
    timer.now += 1
    counters.gate = asyncio.Event()  # Redis takes its time over the next try
    trying = asyncio.create_task(limiter.check("app", 2))
    await asyncio.sleep(0)
    assert counters.attempts == 2
    await limiter.check("app", 2)  # counted here (2)
    with pytest.raises(RateLimited, match="2 calls a minute"):
        await limiter.check("app", 2)  # the limit holds, counted here
    assert counters.attempts == 2  # no second try meanwhile
    counters.down = False
    counters.gate.set()
    await trying  # the try succeeds (the client's hit and the hub's): the breaker closes
    assert not limiter.failing and counters.attempts == 3
    await limiter.check("app", 2)
    assert counters.attempts == 5  # in Redis again
