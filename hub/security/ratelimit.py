"""Rate limits: calls a minute per client (`hub clients create --rate`) and for the whole hub
(`HUB_RATE_LIMIT_PER_MINUTE`); past them, 429 `RATE_LIMITED` with `Retry-After`.

Counting is by a sliding window: a call is let through when fewer than the limit were let
through in the 60 seconds before it, so "30 a minute" holds over any 60 seconds, not per
clock minute (a fixed window let a client make 60 calls in two seconds across a minute's
boundary). Each key's window is the log of its admitted calls' times: a Redis sorted set,
trimmed, added to and counted in one MULTI transaction (atomic, no script needed); a
refused call is taken out again, so hammering does not prolong a refusal. `Retry-After` is
when the oldest call in the window leaves it. A log holds at most `limit` entries per key
(the hub's own limit's one, `*`, as many as HUB_RATE_LIMIT_PER_MINUTE).

With `HUB_REDIS_URL` set, every hub process counts in the same Redis, so a limit holds
across processes and machines (their clocks kept in step, as NTP does); without it, each
process counts in its own memory (a laptop, one process). If Redis cannot be reached,
calls are let through and the failure is logged and counted: the limit protects upstream
systems, and refusing every call because the counter is down would be the outage it
exists to prevent.

Nor may a Redis that does not answer slow the calls down. The client waits at most
`HUB_REDIS_TIMEOUT_S` (0.25 s) to connect or for an answer, and never retries blindly; and
a small breaker stands in front of it: after a failure the limiter leaves Redis alone for a
back-off (1 s, doubling after each failed try up to 30 s) and counts in this process's
memory meanwhile, so a client's limit still holds within each process. Then one call tries
Redis again; the first answer closes the breaker. The outage is logged once, when it starts,
and each failed try is counted (`hub_rate_limit_errors`): a call waits on an unreachable
Redis at most once a back-off, for at most the timeout. Calls counted in memory during an
outage are not carried over to Redis.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from hub.errors import RateLimited

__all__ = ["MemoryCounters", "RateLimiter", "RedisCounters"]

WINDOW_S = 60
T = TypeVar("T")
log = logging.getLogger("hub.ratelimit")


class Counters(Protocol):
    async def hit(self, key: str, limit: int, now: float, window_s: float = WINDOW_S) -> float:
        """Admit one call under `key` if fewer than `limit` were admitted in the `window_s`
        seconds before `now`: 0.0, or the seconds until one of them leaves the window."""
        ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """This process's sliding windows: each key's admitted calls' times, oldest first."""

    #: Keys with nothing in their window are dropped when this many are held.
    PRUNE_AT = 10_000

    def __init__(self) -> None:
        self._logs: dict[str, tuple[float, deque[float]]] = {}

    async def hit(self, key: str, limit: int, now: float, window_s: float = WINDOW_S) -> float:
        entry = self._logs.get(key)
        if entry is None:
            if len(self._logs) >= self.PRUNE_AT:
                self._prune(now)
            entry = self._logs[key] = (window_s, deque())
        calls = entry[1]
        while calls and calls[0] <= now - window_s:
            calls.popleft()
        if len(calls) >= limit:
            return calls[0] + window_s - now if calls else float(window_s)
        calls.append(now)
        return 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, (w, calls) in self._logs.items() if not calls or calls[-1] <= now - w]:
            del self._logs[key]

    async def aclose(self) -> None:
        return None


class RedisCounters:
    """Sliding windows in Redis shared by every hub process: one sorted set per key."""

    def __init__(self, url: str, prefix: str = "hub:", timeout_s: float = 0.25) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Short timeouts and no retries, whatever redis-py's defaults: a command that fails
        # fails within `timeout_s`, and the callers (the rate limiter's breaker, the circuit
        # sync's next exchange) decide when to try again.
        self._redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self.prefix = prefix

    @property
    def client(self) -> Any:
        """The Redis client: one connection pool per process, shared circuit state uses it
        too (hub.resilience.circuit_sync); closed with these counters."""
        return self._redis

    async def hit(self, key: str, limit: int, now: float, window_s: float = WINDOW_S) -> float:
        name = f"{self.prefix}rl:{key}"
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"  # unique: two calls in one microsecond
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(name, "-inf", now - window_s)
            pipe.zadd(name, {member: now})
            pipe.zcard(name)
            pipe.zrange(name, 0, 0, withscores=True)
            pipe.pexpire(name, math.ceil((window_s + 1) * 1000))
            _, _, count, oldest, _ = await pipe.execute()
        if int(count) <= limit:
            return 0.0
        await self._redis.zrem(name, member)  # refused: not part of the window
        return float(oldest[0][1]) + window_s - now if oldest else float(window_s)

    async def aclose(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """Checks a client's call against its limit and the hub's, with a breaker in front of
    the shared counters: while they fail, calls are counted in this process's memory."""

    def __init__(
        self,
        counters: Counters,
        *,
        global_per_minute: int | None,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[str], None] | None = None,
        on_error: Callable[[], None] | None = None,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counters, self.global_per_minute = counters, global_per_minute
        self.clock, self.on_refused, self.on_error = clock, on_refused, on_error
        self.backoff_s, self.max_backoff_s, self.monotonic = backoff_s, max_backoff_s, monotonic
        #: Where calls are counted while `counters` fail.
        self.local = MemoryCounters()
        #: The breaker is open: `counters` failed and have not answered since.
        self.failing = False
        self._backoff = 0.0
        self._retry_at = 0.0
        self._probing = False

    async def check(self, client_id: str, per_minute: int | None) -> None:
        """Count the call; raise RateLimited (with Retry-After) when over a limit."""
        if per_minute is None and self.global_per_minute is None:
            return
        now = self.clock()
        await self._counted(lambda counters: self._count(counters, client_id, per_minute, now))

    async def take(self, key: str, limit: int, window_s: float) -> float:
        """Admit one event under `key` within `limit` a `window_s` (another limit kept in
        the same store, through the same breaker: verifications per person): 0.0, or the
        seconds until it would be admitted. Raises nothing of its own."""
        now = self.clock()
        return await self._counted(lambda counters: counters.hit(key, limit, now, window_s))

    async def _counted(self, count: Callable[[Counters], Awaitable[T]]) -> T:
        """`count` in the shared counters, or in this process's while they fail."""
        probe = False
        if self.failing:
            if self._probing or self.monotonic() < self._retry_at:
                # Redis is left alone for the back-off: no call waits on it.
                return await count(self.local)
            probe = self._probing = True  # one call tries Redis again, the others count here
        try:
            result = await count(self.counters)
        except RateLimited:
            self._answered()
            raise
        except Exception as exc:  # the counter store is down: count here, let the call through
            self._failed(exc, probe=probe)
            return await count(self.local)
        else:
            self._answered()
            return result
        finally:
            if probe:
                self._probing = False

    async def _count(
        self, counters: Counters, client_id: str, per_minute: int | None, now: float
    ) -> None:
        if per_minute is not None:
            wait = await counters.hit(client_id, per_minute, now)
            if wait > 0:
                self._refused(client_id)
                raise RateLimited(
                    f"this client may make {per_minute} calls a minute",
                    retry_after=max(1, math.ceil(wait)),
                )
        if self.global_per_minute is not None:
            wait = await counters.hit("*", self.global_per_minute, now)
            if wait > 0:
                self._refused(client_id)
                raise RateLimited(
                    "the hub is at its call limit", retry_after=max(1, math.ceil(wait))
                )

    def _failed(self, exc: Exception, *, probe: bool) -> None:
        if self.on_error is not None:
            self.on_error()
        if not self.failing:
            self.failing, self._backoff = True, self.backoff_s
            log.warning(
                "rate limits counted in process memory: Redis failed (%s); it is tried again "
                "after a back-off",
                type(exc).__name__,
            )
        elif probe:
            self._backoff = min(self._backoff * 2, self.max_backoff_s)
        else:  # a call that was already waiting when the breaker opened
            return
        self._retry_at = self.monotonic() + self._backoff

    def _answered(self) -> None:
        if self.failing:
            self.failing, self._backoff = False, 0.0
            log.info("rate limits counted in Redis again")

    def _refused(self, client_id: str) -> None:
        if self.on_refused is not None:
            self.on_refused(client_id)
