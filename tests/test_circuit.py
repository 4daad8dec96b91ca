"""Circuit breaker and bulkhead per upstream: the state machine on a fake clock, then
through the hub against an exact upstream (respx): fast 503s while open, no upstream call,
Retry-After, recovery by one trial, /ready and /metrics."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from hub.errors import (
    NotFound,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from hub.resilience.circuit import BulkheadFull, CircuitBreaker, CircuitOpen, CircuitPolicy
from tests.conftest import running_hub
from tests.test_pipeline import PID, EchoAdapter, assert_problem, call


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**policy: float) -> tuple[CircuitBreaker, Clock, list[str]]:
    clock, changes = Clock(), []
    found = CircuitBreaker(
        "echo",
        CircuitPolicy(**{"min_calls": 4, "failure_ratio": 0.5, "cooldown_s": 5, **policy}),  # type: ignore[arg-type]
        clock=clock,
        on_change=lambda service, state: changes.append(state),
    )
    return found, clock, changes


def outcome(circuit: CircuitBreaker, error: BaseException | None = None) -> None:
    trial = circuit.enter()
    circuit.leave(trial=trial, error=error)


def test_opens_on_the_failure_ratio_once_enough_calls_ended():
    circuit, _, changes = breaker()
    for _ in range(3):
        outcome(circuit, UpstreamUnavailable())
    assert circuit.state == "closed"  # 3 calls: fewer than min_calls
    outcome(circuit)  # a success never opens it, whatever the ratio
    assert circuit.state == "closed"
    outcome(circuit, UpstreamTimeout())
    assert circuit.state == "open" and changes == ["open"]
    with pytest.raises(CircuitOpen) as refused:
        circuit.enter()
    assert refused.value.status == 503 and refused.value.code == "UPSTREAM_UNAVAILABLE"
    assert refused.value.retry_after == 5


def test_only_upstream_trouble_counts():
    working, _, _ = breaker()
    for error in (NotFound(), UpstreamRejected(), UpstreamBadResponse(), None) * 3:
        outcome(working, error)
    assert working.state == "closed"  # upstream answered: it is up
    failing, _, _ = breaker()
    for error in (UpstreamError(), UpstreamUnavailable(), UpstreamTimeout(), UpstreamError()):
        outcome(failing, error)
    assert failing.state == "open"


def test_failures_in_a_row_open_it_whatever_the_window_says():
    circuit, clock, changes = breaker(min_calls=10, consecutive_failures=5)
    for _ in range(20):  # steady traffic, all well
        outcome(circuit)
        clock.now += 0.5
    for _ in range(4):  # the upstream goes down: 4 of 24 failed, far from half
        outcome(circuit, UpstreamUnavailable())
    assert circuit.state == "closed"
    outcome(circuit, UpstreamTimeout())  # the 5th in a row
    assert circuit.state == "open" and changes == ["open"]
    with pytest.raises(CircuitOpen) as refused:
        circuit.enter()
    assert refused.value.retry_after == 5


def test_a_call_upstream_answered_breaks_the_run():
    circuit, _, _ = breaker(min_calls=100, consecutive_failures=3)
    for answered in (None, NotFound(), UpstreamRejected(), UpstreamBadResponse()):
        outcome(circuit, UpstreamError())
        outcome(circuit, UpstreamError())
        outcome(circuit, answered)  # upstream is up: the run starts again
    assert circuit.state == "closed"
    outcome(circuit, UpstreamError())
    outcome(circuit, UpstreamError())
    trial = circuit.enter()
    circuit.leave(trial=trial, error=asyncio.CancelledError())  # says nothing either way
    outcome(circuit, UpstreamError())
    assert circuit.state == "open"  # 2 before the cancelled call, 1 after


def test_the_run_starts_again_after_a_trial_and_can_be_turned_off():
    circuit, clock, changes = breaker(min_calls=100, consecutive_failures=2)
    for _ in range(2):
        outcome(circuit, UpstreamError())
    clock.now += 5
    outcome(circuit)  # the trial succeeds: closed afresh
    outcome(circuit, UpstreamError())
    assert circuit.state == "closed"  # one in a row, not the two before the pause
    outcome(circuit, UpstreamError())
    clock.now += 5
    outcome(circuit, UpstreamError())  # a failed trial doubles the pause, as before
    assert changes == ["open", "half_open", "closed", "open", "half_open", "open"]
    off, _, _ = breaker(min_calls=10, consecutive_failures=0)
    for _ in range(9):
        outcome(off, UpstreamError())
    assert off.state == "closed"  # only the ratio, from min_calls on
    outcome(off, UpstreamError())
    assert off.state == "open"


def test_old_outcomes_leave_the_window():
    circuit, clock, _ = breaker(window_s=30)
    for _ in range(3):
        outcome(circuit, UpstreamError())
    clock.now += 31
    outcome(circuit, UpstreamError())
    assert circuit.state == "closed"  # the three earlier failures are out of the window


def test_half_open_lets_one_trial_through_and_its_result_decides():
    circuit, clock, changes = breaker(max_cooldown_s=12)
    for _ in range(4):
        outcome(circuit, UpstreamError())
    clock.now += 5
    trial = circuit.enter()
    assert trial and circuit.state == "half_open"
    with pytest.raises(CircuitOpen) as second:  # one trial at a time
        circuit.enter()
    assert second.value.retry_after == 1
    circuit.leave(trial=trial, error=UpstreamTimeout())
    assert circuit.state == "open"
    with pytest.raises(CircuitOpen) as longer:
        circuit.enter()
    assert longer.value.retry_after == 10  # the cool-down doubled
    clock.now += 10
    outcome(circuit, UpstreamError())
    clock.now += 11
    with pytest.raises(CircuitOpen) as capped:
        circuit.enter()
    assert capped.value.retry_after == 1  # 12 s at most: 1 s left of it
    clock.now += 1
    outcome(circuit)  # the trial succeeds
    assert circuit.state == "closed"
    assert changes == ["open", "half_open", "open", "half_open", "open", "half_open", "closed"]
    for _ in range(3):  # closed afresh: it takes min_calls again to open
        outcome(circuit, UpstreamError())
    assert circuit.state == "closed"


def test_a_cancelled_call_says_nothing_of_upstream():
    circuit, clock, _ = breaker()
    for _ in range(4):
        outcome(circuit, UpstreamError())
    clock.now += 5
    trial = circuit.enter()
    circuit.leave(trial=trial, error=asyncio.CancelledError())
    assert circuit.state == "half_open" and circuit.enter()  # the next one is the trial


def test_an_adapter_bug_in_the_trial_says_nothing_of_upstream():
    from hub.errors import AdapterError

    circuit, clock, _ = breaker()
    for _ in range(4):
        outcome(circuit, UpstreamError())
    clock.now += 5
    trial = circuit.enter()
    circuit.leave(trial=trial, error=AdapterError(exc_type="KeyError"))
    assert circuit.state == "half_open" and circuit.enter()  # the next one is the trial


def test_the_bulkhead_caps_calls_in_flight():
    circuit, _, _ = breaker(max_concurrent=2)
    circuit.enter(), circuit.enter()
    with pytest.raises(BulkheadFull) as full:
        circuit.enter()
    assert full.value.status == 503 and full.value.retry_after == 1
    circuit.leave(trial=False, error=None)
    circuit.enter()
    assert circuit.in_flight == 2


# -- through the hub -----------------------------------------------------------------------


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(base_url="http://echo.upstream", assert_all_called=False)


@pytest.fixture
async def echo(settings, upstream):
    settings.redis_url = None  # one process's breaker; test_circuit_shared.py shares them
    settings.circuit_min_calls = 4
    settings.circuit_cooldown_s = 5
    settings.adapters = {"echo": {"base_url": "http://echo.upstream", "max_concurrent": 2}}
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(settings, adapters=[EchoAdapter], transports=transports) as running:
        yield running


def circuit_metric(text: str) -> str:
    prefix = 'hub_circuit_state{service="echo"}'
    [line] = [row for row in text.splitlines() if row.startswith(prefix)]
    return line.rsplit(" ", 1)[1]


async def test_an_upstream_that_keeps_failing_gets_fast_503s_then_recovers(echo, upstream):
    clock = Clock()
    echo.hub.registry.get("echo").circuit.clock = clock
    route = upstream.get(f"/items/{PID}").respond(503)
    key = echo.client()
    for _ in range(4):
        assert_problem(await call(echo, key), 502, "UPSTREAM_ERROR")
    attempts = route.call_count
    assert attempts == 4 * echo.settings.retry_attempts  # each call retried, as idempotent

    refused = assert_problem(await call(echo, key), 503, "UPSTREAM_UNAVAILABLE")
    assert route.call_count == attempts  # not called at all
    assert "paused" in refused["detail"]
    answer = await call(echo, key)
    assert answer.headers["retry-after"] == "5"
    assert echo.audit_rows()[-1]["code"] == "UPSTREAM_UNAVAILABLE"  # still audited
    ready = (await echo.http.get("/ready")).json()
    assert ready["services"]["echo"]["circuit"] == "open"
    assert circuit_metric((await echo.http.get("/metrics")).text) == "2.0"

    route.respond(200, json={"value": 1})  # upstream is back
    clock.now += 5
    assert (await call(echo, key)).status_code == 200  # the trial
    assert (await echo.http.get("/ready")).json()["services"]["echo"]["circuit"] == "closed"
    assert circuit_metric((await echo.http.get("/metrics")).text) == "0.0"
    assert (await call(echo, key)).status_code == 200


async def test_refusals_and_not_found_do_not_open_the_circuit(echo, upstream):
    upstream.get(f"/items/{PID}").respond(404)
    key = echo.client()
    for _ in range(8):
        assert_problem(await call(echo, key), 404, "NOT_FOUND")
    assert echo.hub.registry.get("echo").circuit.state == "closed"


async def test_a_slow_upstream_fills_its_bulkhead_not_the_hub(echo, upstream):
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"value": 7})

    upstream.get(f"/items/{PID}").mock(side_effect=slow)
    key = echo.client()
    held = [asyncio.create_task(call(echo, key)) for _ in range(2)]
    while echo.hub.registry.get("echo").circuit.in_flight < 2:
        await asyncio.sleep(0.01)
    refused = await call(echo, key)  # a third, at once
    assert_problem(refused, 503, "UPSTREAM_UNAVAILABLE")
    assert refused.headers["retry-after"] == "1"
    assert (await echo.http.get("/health")).status_code == 200  # the hub itself is fine
    release.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
    assert echo.hub.registry.get("echo").circuit.in_flight == 0
