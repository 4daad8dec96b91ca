"""Rate limits: calls a minute per client (`hub clients create --rate`) and for the whole hub
(`HUB_RATE_LIMIT_PER_MINUTE`); past them, 429 `RATE_LIMITED` with `Retry-After`.

Counting is by fixed one-minute windows: one counter per client per minute, which one
atomic INCR keeps in Redis. With `HUB_REDIS_URL` set, every hub process counts in the same
Redis, so a limit holds across processes and machines; without it, each process counts in
its own memory (a laptop, one process). If Redis cannot be reached, calls are let through
and the failure is logged and counted: the limit protects upstream systems, and refusing
every call because the counter is down would be the outage it exists to prevent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from hub.errors import RateLimited

__all__ = ["MemoryCounters", "RateLimiter", "RedisCounters"]

WINDOW_S = 60
log = logging.getLogger("hub.ratelimit")


class Counters(Protocol):
    async def hit(self, key: str, window: int) -> int:
        """Count one call under `key` in `window`; the count so far, this one included."""
        ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """This process's counters; windows before the current one are forgotten."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, key: str, window: int) -> int:
        if window != self._window:
            self._window, self._counts = window, {}
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count

    async def aclose(self) -> None:
        return None


class RedisCounters:
    """Counters in Redis shared by every hub process: INCR, expiring with the window."""

    def __init__(self, url: str, prefix: str = "hub:") -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self.prefix = prefix

    @property
    def client(self) -> Any:
        """The Redis client: one connection pool per process, shared circuit state uses it
        too (hub.circuit_sync); closed with these counters."""
        return self._redis

    async def hit(self, key: str, window: int) -> int:
        name = f"{self.prefix}rl:{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW_S * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def aclose(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """Checks a client's call against its limit and the hub's."""

    def __init__(
        self,
        counters: Counters,
        *,
        global_per_minute: int | None,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[str], None] | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.counters, self.global_per_minute = counters, global_per_minute
        self.clock, self.on_refused, self.on_error = clock, on_refused, on_error

    async def check(self, client_id: str, per_minute: int | None) -> None:
        """Count the call; raise RateLimited (with Retry-After) when over a limit."""
        if per_minute is None and self.global_per_minute is None:
            return
        now = self.clock()
        window = int(now // WINDOW_S)
        retry_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
        try:
            if per_minute is not None and await self.counters.hit(client_id, window) > per_minute:
                self._refused(client_id)
                raise RateLimited(
                    f"this client may make {per_minute} calls a minute",
                    retry_after=retry_after,
                )
            if (
                self.global_per_minute is not None
                and await self.counters.hit("*", window) > self.global_per_minute
            ):
                self._refused(client_id)
                raise RateLimited("the hub is at its call limit", retry_after=retry_after)
        except RateLimited:
            raise
        except Exception as exc:  # the counter store is down: let the call through
            log.warning("rate limit not checked: %s", type(exc).__name__)
            if self.on_error is not None:
                self.on_error()

    def _refused(self, client_id: str) -> None:
        if self.on_refused is not None:
            self.on_refused(client_id)
