"""Circuit state shared by every hub process through Redis (`HUB_REDIS_URL`).

Each process's breakers go on judging the outcomes of its own calls (`hub.resilience.circuit`), with
nothing added to a call's path. This module exchanges what they decide: a background task
in each process makes one round trip every `HUB_CIRCUIT_SYNC_S` (0.5 s), and a few more
only when there is news.

- One record per upstream, `<prefix>circuit:<service>`: `{id, state, until, cooldown_s}`
  in JSON, with an expiry (PX). The process that opens a circuit, or whose trial decides
  it, publishes the new state at once; every process reads all the records in one MGET and
  adopts any it has not seen: an open one (same end, same cool-down: every process answers
  503 until the same moment) or a close.
- Publishing is a compare-and-set (WATCH/MULTI): a state goes out only over the record it
  was decided from, except that an open always replaces a close; otherwise the newer record
  is adopted instead. A process that had not yet seen a doubled cool-down cannot shorten it.
- Half-open, one trial for the whole cluster. Just before the cool-down ends, a process
  whose callers were refused takes the trial lock `<record key>:trial:<record id>`
  (SET NX PX); only the holder lets a call through, the others answer 503 (Retry-After 1)
  until its result is published (closed, or open again for twice the cool-down: the record
  carries the cool-down) and adopted. A holder that gets no call in time gives the lock
  back; one that dies loses it when it expires (the cool-down, the wait for a call and the
  longest call, `HUB_RETRY_DEADLINE_S`).
- Outcome windows stay per process. Behind a load balancer each process sees a sample of
  the same traffic, so its failure ratio estimates the cluster's; a shared ratio would cost
  a round trip per call, or lag by a flush interval. The first process to judge an upstream
  unwell opens the circuit for all.
- Redis unreachable: each failed exchange is counted (`hub_circuit_sync_errors`), the first
  one logged; the breakers work alone (a local trial included) until an exchange succeeds
  again, when what each decided meanwhile is published. No call fails because of Redis.

Clocks: records carry wall-clock times (`time.time()`, NTP-synchronised machines); each
breaker keeps its own monotonic clock, and times are converted as seconds left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.exceptions import WatchError

from hub.resilience.circuit import CircuitBreaker

__all__ = ["CircuitSync", "Record"]

log = logging.getLogger("hub.circuit")


@dataclass(frozen=True, slots=True)
class Record:
    """One upstream's shared circuit state."""

    id: str
    state: Literal["open", "closed"]
    until: float  # wall clock: when the cool-down ends (open)
    cooldown_s: float

    def encode(self) -> bytes:
        return orjson.dumps(
            {"id": self.id, "state": self.state, "until": self.until, "cooldown_s": self.cooldown_s}
        )

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Record | None:
        """The record, or None: none there, or not one this hub wrote (ignored)."""
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            state = data["state"]
            if state not in ("open", "closed"):
                return None
            return cls(str(data["id"]), state, float(data["until"]), float(data["cooldown_s"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class CircuitSync:
    """Shares the circuit state of one process's breakers with the other processes."""

    def __init__(
        self,
        breakers: Iterable[CircuitBreaker],
        redis: Any,
        *,
        prefix: str = "hub:",
        interval_s: float = 0.5,
        call_s: float = 15.0,
        wall: Callable[[], float] = time.time,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.breakers = list(breakers)
        self.redis, self.prefix = redis, prefix
        self.interval_s, self.call_s = interval_s, call_s
        self.wall, self.on_error = wall, on_error
        #: The trial permit is taken this long before the cool-down ends (a tick falls in
        #: it), and waits this long after it for a call before it is given back.
        self.lead_s = self.hold_s = max(1.0, 2 * interval_s)
        self.token = uuid.uuid4().hex  # this process, as a lock holder
        self.failing = False
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        for breaker in self.breakers:
            breaker.notify = self._wake.set

    def key(self, service: str) -> str:
        return f"{self.prefix}circuit:{service}"

    def trial_key(self, breaker: CircuitBreaker) -> str:
        return f"{self.key(breaker.service)}:trial:{breaker.record_id}"

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-circuit-sync")

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self.sync_once()
            if self._closing:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def aclose(self) -> None:
        """Stop the loop (the Redis client is the rate limiter's, closed with it)."""
        if self._task is not None:
            # redis-py can swallow a cancellation that lands mid-command (redis-py#2028):
            # the flag ends the loop after that exchange all the same.
            self._closing = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sync_once(self) -> None:
        """One exchange: publish what was decided here, adopt what was decided elsewhere,
        take or give back trial permits. Never raises: on Redis trouble the breakers work
        alone until an exchange succeeds."""
        if not self.breakers:
            return
        try:
            for breaker in self.breakers:
                if breaker.judged:
                    await self._publish(breaker)
            raws = await self.redis.mget([self.key(b.service) for b in self.breakers])
            for breaker, raw in zip(self.breakers, raws, strict=True):
                if not breaker.judged:  # decided here meanwhile: that goes out first
                    self._adopt(breaker, Record.decode(raw))
                breaker.shared = True
            if self.failing:
                self.failing = False
                log.info("circuit state shared through Redis again")
            for breaker in self.breakers:
                await self._permit(breaker)
        except Exception as exc:
            self._failed(exc)

    # -- steps ------------------------------------------------------------------------------

    def _adopt(self, breaker: CircuitBreaker, record: Record | None) -> None:
        if record is None:  # nothing shared (never, or expired): the breaker works alone
            breaker.record_id = None
            return
        if record.id == breaker.record_id:
            return
        breaker.record_id = record.id
        if record.state == "open":
            breaker.adopt_open(record.until - self.wall(), record.cooldown_s)
        else:
            breaker.adopt_closed()

    async def _publish(self, breaker: CircuitBreaker) -> None:
        """Write the state this process decided, over the record it decided it from; or,
        when another process's news came first, adopt that instead."""
        breaker.judged = False
        state, left, cooldown = breaker.snapshot()
        opening = state != "closed"
        key = self.key(breaker.service)
        newer: Record | None = None
        record: Record | None = None
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                current = Record.decode(await pipe.get(key))
                if (
                    current is not None
                    and current.id != breaker.record_id
                    and not (opening and current.state == "closed")
                ):
                    newer = current
                else:
                    record = Record(
                        uuid.uuid4().hex,
                        "open" if opening else "closed",
                        self.wall() + left if opening else 0.0,
                        cooldown,
                    )
                    # Kept well past its end: a close must reach every process, and an open
                    # waits for its trial (a holder that died loses the lock first).
                    ttl = (max(left, 0.0) if opening else 0.0) + breaker.policy.max_cooldown_s
                    pipe.multi()
                    pipe.set(key, record.encode(), px=_ms(ttl + self.hold_s + self.call_s))
                    await pipe.execute()
        except WatchError:  # another process wrote meanwhile: decide again next time
            breaker.judged = True
            return
        except BaseException:
            breaker.judged = True
            raise
        if record is not None:
            breaker.record_id = record.id
        elif newer is not None and not breaker.judged:  # (decided again meanwhile: next time)
            self._adopt(breaker, newer)

    async def _permit(self, breaker: CircuitBreaker) -> None:
        if breaker.permit_lapsed():  # no call came: let another process try
            breaker.drop_permit()
            await self._give_back(self.trial_key(breaker))
            return
        if not (breaker.gated and breaker.wants_trial) or breaker.has_permit():
            return
        left = breaker.seconds_left()
        if left > self.lead_s:
            return
        valid_s = max(left, 0.0) + self.hold_s
        taken = await self.redis.set(
            self.trial_key(breaker), self.token, nx=True, px=_ms(valid_s + self.call_s)
        )
        if taken:
            breaker.grant_trial(valid_s)

    async def _give_back(self, key: str) -> None:
        with contextlib.suppress(WatchError):  # changed meanwhile: not ours any more
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                holder = await pipe.get(key)
                if isinstance(holder, bytes):
                    holder = holder.decode()
                if holder == self.token:
                    pipe.multi()
                    pipe.delete(key)
                    await pipe.execute()

    def _failed(self, exc: Exception) -> None:
        for breaker in self.breakers:
            breaker.shared = False
        if self.on_error is not None:
            self.on_error()
        if not self.failing:
            self.failing = True
            log.warning(
                "circuit state not shared: Redis failed (%s); each hub process judges "
                "upstreams alone until it answers",
                type(exc).__name__,
            )
