"""Per-upstream circuit breakers and bulkheads: a failing or slow national system costs its
callers a fast 503, not a timeout each, and cannot take the other services down with it.

- Circuit breaker. Closed, it lets calls through and keeps the outcomes of the last
  `window_s` seconds. When at least `min_calls` calls ended there and `failure_ratio` of
  them failed because of upstream (unavailable, timed out, 5xx: not a refusal of our request,
  not "no such subject"), it opens: calls get 503 `UPSTREAM_UNAVAILABLE` with `Retry-After`
  at once, without reaching upstream. It also opens, whatever the window says, when the
  last `consecutive_failures` calls all failed because of upstream: under steady traffic
  the successes from before an outage dilute the ratio for half the window, while a run of
  failures says at once that the upstream went down. After the cool-down it half-opens and
  lets one trial call through: success closes it; failure opens it again for twice the
  cool-down (up to `max_cooldown_s`), as ESBs suspend an endpoint for longer each time it
  fails again.
- Bulkhead. At most `max_concurrent` calls to one upstream at a time in this process; past
  that, a fast 503 rather than a queue that holds workers and connections while a slow
  system answers.

The breaker judges the outcomes of this process's own calls, and `enter`/`leave` never wait
for anything: they run on every call. With `HUB_REDIS_URL` set, `hub.resilience.circuit_sync` shares
the state with the other hub processes, off the calls' path: an open or a close this breaker
decides is published, one decided elsewhere is adopted (`adopt_open`, `adopt_closed`), and a
half-open trial needs the cluster's permit (`grant_trial`), so only one process tries the
upstream again while the others keep answering 503. Without Redis, or while it is
unreachable, the breaker works alone as above. The bulkhead is always per process: it
protects this process's workers and connections.

Libraries such as pybreaker implement a breaker on consecutive failures alone, synchronous
and without a ratio over a time window, a growing cool-down or a single half-open trial among
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
    AdapterError,
    BulkheadFull,
    CircuitOpen,
    HubError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnreadable,
)

__all__ = ["BulkheadFull", "CircuitBreaker", "CircuitOpen", "CircuitPolicy", "is_upstream_failure"]

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


def is_upstream_failure(exc: BaseException) -> bool:
    """An outcome that says the upstream is unwell: unavailable, too slow, a server error,
    an answer that is not its protocol's format at all (UpstreamUnreadable: not JSON or XML,
    too deep). Not a refusal of our request or credentials, an off-contract value, or a subject
    upstream does not have: those are upstream working as designed."""
    if isinstance(exc, CircuitOpen | BulkheadFull):
        return False
    if isinstance(exc, UpstreamUnreadable):  # garbage, not a record off-contract: unwell
        return True
    return isinstance(exc, UpstreamError) and not isinstance(
        exc, UpstreamRejected | UpstreamBadResponse
    )


@dataclass(frozen=True)
class CircuitPolicy:
    window_s: float = 30.0
    min_calls: int = 10
    failure_ratio: float = 0.5
    #: This many upstream failures in a row open the circuit at once (0: only the ratio).
    consecutive_failures: int = 5
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
    # -- sharing, kept by hub.circuit_sync.CircuitSync ---------------------------------------
    #: The state is exchanged with the other hub processes and the last exchange worked.
    shared: bool = False
    #: The shared record this state came from or went out as (None: no shared record).
    record_id: str | None = None
    #: Opened or closed here, by this process's own calls, since it was last published.
    judged: bool = False
    #: Asks for an exchange now (a state to publish, a trial wanted).
    notify: Callable[[], None] | None = None
    _outcomes: deque[tuple[float, bool]] = field(default_factory=deque)
    _streak: int = 0  # upstream failures in a row, closed
    _open_until: float = 0.0
    _cooldown_s: float = 0.0
    _trial_running: bool = False
    _trial_record: str | None = None
    _permit_until: float = 0.0
    _demand: bool = False

    # -- around a call ----------------------------------------------------------------------

    def enter(self) -> bool:
        """Admit a call or raise (CircuitOpen, BulkheadFull). Returns whether the call is the
        half-open trial. Every admitted call must be followed by `leave`."""
        trial = False
        if self.state == "open":
            now = self.clock()
            if now < self._open_until:
                self._demand = True
                raise CircuitOpen(
                    "the upstream system failed repeatedly: calls to it are paused",
                    retry_after=max(1, math.ceil(self._open_until - now)),
                    log_context={"cause": "circuit open"},
                )
            self._set("half_open")
        if self.state == "half_open":
            if self._trial_running or (self.gated and self._permit_until <= self.clock()):
                # One trial at a time: this process's, or (shared) the one process holding
                # the cluster's permit, which may be another.
                if not self._demand:
                    self._demand = True
                    if self.gated and self.notify is not None:
                        self.notify()
                raise CircuitOpen(
                    "the upstream system is being tried again: retry in a moment",
                    retry_after=1,
                    log_context={"cause": "circuit half-open"},
                )
            trial = self._trial_running = True
            self._trial_record = self.record_id
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
        by its caller, or ended by the adapter's own bug (AdapterError), says nothing of
        upstream and is not counted, nor is a trial whose
        state another process has moved on from meanwhile."""
        self.in_flight -= 1
        if trial:
            self._trial_running = False
            if self._trial_record != self.record_id:
                return
        if isinstance(error, AdapterError):
            return  # the adapter's own bug: nothing learnt of upstream, as for a cancel
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
            self._judged()
            return
        if self.state != "closed":
            return
        self._outcomes.append((now, failed))
        horizon = now - self.policy.window_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
        if not failed:
            self._streak = 0
            return
        self._streak += 1
        if 0 < self.policy.consecutive_failures <= self._streak:
            opens = True
        else:
            calls = len(self._outcomes)
            failures = sum(1 for _, bad in self._outcomes if bad)
            opens = calls >= self.policy.min_calls and failures / calls >= self.policy.failure_ratio
        if opens:
            self._open(now, self.policy.cooldown_s)
            self._judged()

    def _open(self, now: float, cooldown_s: float) -> None:
        self._cooldown_s = min(max(cooldown_s, self.policy.cooldown_s), self.policy.max_cooldown_s)
        self._open_until = now + self._cooldown_s
        self._outcomes.clear()
        self._streak = 0
        self._permit_until, self._demand = 0.0, False
        self._set("open")

    def _close(self) -> None:
        self._cooldown_s = 0.0
        self._outcomes.clear()
        self._streak = 0
        self._permit_until, self._demand = 0.0, False
        self._set("closed")

    def _judged(self) -> None:
        self.judged = True
        if self.notify is not None:
            self.notify()

    def _set(self, state: State) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(self.service, state)

    # -- sharing (hub.resilience.circuit_sync) -----------------------------------------------------

    @property
    def gated(self) -> bool:
        """Whether a half-open trial needs the cluster's permit: the state is shared, a
        shared record holds it, and Redis answered at the last exchange."""
        return self.shared and self.record_id is not None

    def snapshot(self) -> tuple[State, float, float]:
        """The state, the seconds left of the cool-down (open), and the cool-down."""
        return self.state, self._open_until - self.clock(), self._cooldown_s

    def adopt_open(self, remaining_s: float, cooldown_s: float) -> None:
        """Another process opened the circuit (or its trial failed): open here too, until
        the same moment, with its cool-down (which a failed trial here then doubles)."""
        self._open(self.clock(), cooldown_s)
        self._open_until = self.clock() + remaining_s

    def adopt_closed(self) -> None:
        """Another process's trial succeeded: close here too."""
        if self.state != "closed":
            self._close()

    @property
    def wants_trial(self) -> bool:
        """Calls were refused while open or half-open, and no trial runs here: this process
        has callers for a trial, so it may ask for the permit."""
        return self.state != "closed" and self._demand and not self._trial_running

    def seconds_left(self) -> float:
        return self._open_until - self.clock()

    def has_permit(self) -> bool:
        return self._permit_until > self.clock()

    def grant_trial(self, valid_s: float) -> None:
        """This process holds the cluster's trial permit for `valid_s` seconds: the first call
        after the cool-down is the trial. The demand that asked for it is met."""
        self._permit_until = self.clock() + valid_s
        self._demand = False

    def permit_lapsed(self) -> bool:
        """A permit whose time ran out with no trial started (no call came): to give back."""
        return 0.0 < self._permit_until <= self.clock() and not self._trial_running

    def drop_permit(self) -> None:
        """Give the permit up; only calls refused from now on ask for it again."""
        self._permit_until, self._demand = 0.0, False
