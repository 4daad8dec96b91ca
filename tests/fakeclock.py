"""A fake clock for the mocks that push (judicial records, payment): their `clock` and
`sleep`, moved on by the test."""

from __future__ import annotations

import asyncio

#: 2025-06-15 22:06:40 in Vietnam.
NOW = 1_750_000_000.0


class FakeClock:
    """The mock's `clock` and `sleep`. Manual: a sleeper waits until the test advances time.
    Automatic: sleeping moves time on at once (for tests that only care about the end)."""

    def __init__(self, *, auto: bool = False, start: float = NOW) -> None:
        self.now, self.auto = start, auto
        self.slept: list[float] = []
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.auto or seconds <= 0:
            self.now += max(seconds, 0)
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self.now + seconds, waiter))
        await waiter

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, waiter in self._waiters:
            if deadline <= self.now and not waiter.done():
                waiter.set_result(None)
        self._waiters = [(d, w) for d, w in self._waiters if not w.done()]
