"""Per-upstream circuit breakers and bulkheads: a failing or slow national system costs its
callers a fast 503, not a timeout each, and cannot take the other services down with it.

- Circuit breaker. Closed, it lets calls through and keeps the outcomes of the last
  `window_s` seconds. When at least `min_calls` calls ended there and `failure_ratio` of
  them failed because of upstream (unavailable, timed out, 5xx: not a refusal of our request,
  not "no such subject"), it opens: calls get 503 `UPSTREAM_UNAVAILABLE` with `Retry-After`
  at once, without reaching upstream. After the cool-down it half-opens and lets one trial
  call through: success closes it; failure opens it again for twice the cool-down (up to
  `max_cooldown_s`), as ESBs suspend an endpoint for longer each time it fails again.
- Bulkhead. At most `max_concurrent` calls to one upstream at a time in this process; past
  that, a fast 503 rather than a queue that holds workers and connections while a slow
  system answers.

Both are per process: each hub process judges an upstream by what it sees itself, which is
what a process needs to protect its own workers. Circuit state is not shared through Redis
yet (see the README).

Libraries such as pybreaker implement a breaker on consecutive failures, synchronous and
without a ratio over a time window, a growing cool-down or a single half-open trial among
concurrent asyncio calls; those are the behaviours asked of the hub, hence this module.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from hub.errors import (
    HubError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)

__all__ = ["BulkheadFull", "CircuitBreaker", "CircuitOpen", "CircuitPolicy", "is_upstream_failure"]

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitOpen(UpstreamUnavailable):
    """The upstream's circuit is open: refused without calling it."""


class BulkheadFull(UpstreamUnavailable):
    """Too many calls to this upstream are in flight already."""

    default_retry_after = 1


def is_upstream_failure(exc: BaseException) -> bool:
    """An outcome that says the upstream is unwell: unavailable, too slow, a server error.
    Not a refusal of our request or credentials, an answer we could not read, or a subject
    upstream does not have: those are upstream working as designed."""
    if isinstance(exc, CircuitOpen | BulkheadFull):
        return False
    return isinstance(exc, UpstreamError) and not isinstance(
        exc, UpstreamRejected | UpstreamBadResponse
    )


@dataclass(frozen=True)
class CircuitPolicy:
    window_s: float = 30.0
    min_calls: int = 10
    failure_ratio: float = 0.5
    cooldown_s: float = 5.0
    max_cooldown_s: float = 300.0
    max_concurrent: int = 100


@dataclass
class CircuitBreaker:
    """The breaker and the bulkhead of one upstream (one service) in this process."""

    service: str
    policy: CircuitPolicy = field(default_factory=CircuitPolicy)
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[str, State], None] | None = None
    state: State = "closed"
    in_flight: int = 0
    _outcomes: deque[tuple[float, bool]] = field(default_factory=deque)
    _open_until: float = 0.0
    _cooldown_s: float = 0.0
    _trial_running: bool = False

    # -- around a call ----------------------------------------------------------------------

    def enter(self) -> bool:
        """Admit a call or raise (CircuitOpen, BulkheadFull). Returns whether the call is the
        half-open trial. Every admitted call must be followed by `leave`."""
        trial = False
        if self.state == "open":
            now = self.clock()
            if now < self._open_until:
                raise CircuitOpen(
                    "the upstream system failed repeatedly: calls to it are paused",
                    retry_after=max(1, math.ceil(self._open_until - now)),
                    log_context={"cause": "circuit open"},
                )
            self._set("half_open")
        if self.state == "half_open":
            if self._trial_running:
                raise CircuitOpen(
                    "the upstream system is being tried again: retry in a moment",
                    retry_after=1,
                    log_context={"cause": "circuit half-open"},
                )
            trial = self._trial_running = True
        if self.in_flight >= self.policy.max_concurrent:
            if trial:
                self._trial_running = False
            raise BulkheadFull(
                "too many calls to this upstream system are in progress",
                log_context={"cause": "bulkhead full", "in_flight": self.in_flight},
            )
        self.in_flight += 1
        return trial

    def leave(self, *, trial: bool, error: BaseException | None) -> None:
        """Record how an admitted call ended (`error` None: it succeeded). A call cancelled
        by its caller says nothing of upstream and is not counted."""
        self.in_flight -= 1
        if trial:
            self._trial_running = False
        if isinstance(error, HubError) or error is None:
            self._record(failed=error is not None and is_upstream_failure(error), trial=trial)

    # -- state ------------------------------------------------------------------------------

    def _record(self, *, failed: bool, trial: bool) -> None:
        now = self.clock()
        if trial or self.state == "half_open":
            if failed:
                self._open(now, self._cooldown_s * 2)
            else:
                self._close()
            return
        if self.state != "closed":
            return
        self._outcomes.append((now, failed))
        horizon = now - self.policy.window_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
        calls = len(self._outcomes)
        if failed and calls >= self.policy.min_calls:
            failures = sum(1 for _, bad in self._outcomes if bad)
            if failures / calls >= self.policy.failure_ratio:
                self._open(now, self.policy.cooldown_s)

    def _open(self, now: float, cooldown_s: float) -> None:
        self._cooldown_s = min(max(cooldown_s, self.policy.cooldown_s), self.policy.max_cooldown_s)
        self._open_until = now + self._cooldown_s
        self._outcomes.clear()
        self._set("open")

    def _close(self) -> None:
        self._cooldown_s = 0.0
        self._outcomes.clear()
        self._set("closed")

    def _set(self, state: State) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(self.service, state)
