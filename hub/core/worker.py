"""The hub's background work, run in every hub process that has it on.

Each tick runs every step once, side by side: poll due jobs, query payments that had no
callback, deliver due webhooks. Steps work on leased database rows, so any number of hub
processes can run them without doing the same work twice. A failing step is logged (its
exception type only: messages may quote rows) and retried on the next tick.

Stopping lets the tick under way finish (within `STOP_GRACE_S`), so that no step is cut
between its upstream call and the write that records it; a step still running then is
cancelled, and its leased rows are taken up again once their lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger("hub.worker")

Step = tuple[str, Callable[[], Awaitable[int]]]

#: How long stopping waits for the tick under way before cancelling it.
STOP_GRACE_S = 5.0


class BackgroundWorker:
    def __init__(self, steps: Sequence[Step], interval_s: float) -> None:
        self.steps, self.interval_s = list(steps), interval_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-worker")

    def wake(self) -> None:
        """Run a tick now (e.g. right after a webhook was queued)."""
        self._wake.set()

    async def run_once(self) -> int:
        """One tick of every step, side by side (a slow webhook receiver must not hold up
        job polls or payment queries); returns how many items were handled."""
        counts = await asyncio.gather(*(self._step(name, step) for name, step in self.steps))
        return sum(counts)

    @staticmethod
    async def _step(name: str, step: Callable[[], Awaitable[int]]) -> int:
        try:
            return await step()
        except Exception as exc:  # keep the loop alive; the next tick retries
            log.warning("background step %s failed: %s", name, type(exc).__name__)
            return 0

    async def _run(self) -> None:
        while not self._stopping:
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()

    async def aclose(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop: no new tick; the one under way may finish within `grace_s`, then it is
        cancelled."""
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()  # out of the wait between ticks at once
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            log.warning("background work still running after %.0f s: cancelled", grace_s)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
