"""Timeouts per adapter and per operation: connect, read, one attempt's total, and the
deadline of every attempt with its retries, each configurable (HUB_<NAME>_*)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hub.adapter import CallContext, operation
from hub.core.registry import AdapterLoadError, AdapterRegistry, build_config, build_http_client
from tests.conftest import running_hub
from tests.test_pipeline import PID, EchoAdapter, EchoIn, EchoOut, assert_problem, call, upstream  # noqa: F401


class SlowSearchAdapter(EchoAdapter):
    name = "echo"

    @operation(name="search", timeout_s=5.0)
    async def search(self, request: EchoIn, ctx: CallContext) -> EchoOut:
        """A search upstream takes its time over."""
        response = await self.http.get(f"/search/{request.personal_id}")
        return EchoOut.model_validate({"personal_id": request.personal_id, **response.json()})


def slow(seconds: float, counter: list):
    async def answer(request):
        counter.append(request)
        await asyncio.sleep(seconds)
        return httpx.Response(200, json={"value": 1})

    return answer


async def run(settings, upstream, config):  # noqa: F811
    settings.adapters = {"echo": {"base_url": "http://echo.upstream", **config}}
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    return running_hub(settings, adapters=[SlowSearchAdapter], transports=transports)


async def test_an_operation_has_its_own_time_and_the_config_overrides_it(settings, upstream):  # noqa: F811
    looked, searched = [], []
    upstream.get(f"/items/{PID}").mock(side_effect=slow(0.3, looked))
    upstream.get(f"/search/{PID}").mock(side_effect=slow(0.3, searched))
    # the adapter's attempts get 0.1 s; the author gave `search` 5 s: it has time
    async with await run(settings, upstream, {"timeout_s": 0.1}) as hub:
        key = hub.client()
        assert_problem(await call(hub, key), 504, "UPSTREAM_TIMEOUT")
        found = await call(hub, key, path="/v1/services/echo/search")
        assert found.status_code == 200
    # configuration wins over the author: `search` cut to 0.1 s, `get` given 5 s
    async with await run(
        settings, upstream, {"timeout_s": 5, "operation_timeouts": {"search": 0.1}}
    ) as hub:
        key = hub.client()
        assert (await call(hub, key)).status_code == 200
        cut = await call(hub, key, path="/v1/services/echo/search")
        assert_problem(cut, 504, "UPSTREAM_TIMEOUT")


async def test_the_adapter_deadline_bounds_the_retries(settings, upstream):  # noqa: F811
    attempts: list = []
    upstream.get(f"/items/{PID}").mock(side_effect=slow(1.0, attempts))
    settings.retry_attempts = 3
    # 0.1 s an attempt: with the hub's 5 s deadline every attempt runs ...
    async with await run(settings, upstream, {"timeout_s": 0.1}) as hub:
        assert_problem(await call(hub, hub.client()), 504, "UPSTREAM_TIMEOUT")
    assert len(attempts) == 3
    # ... with this adapter's own 0.15 s deadline, at most two start
    attempts.clear()
    async with await run(settings, upstream, {"timeout_s": 0.1, "deadline_s": 0.15}) as hub:
        assert_problem(await call(hub, hub.client()), 504, "UPSTREAM_TIMEOUT")
    assert 1 <= len(attempts) <= 2


def test_connect_and_read_timeouts_reach_the_http_client(settings):
    config = build_config(
        SlowSearchAdapter,
        {"base_url": "http://x", "timeout_s": 7, "connect_timeout_s": 0.5, "read_timeout_s": 3},
    )
    client = build_http_client(settings, config, None)
    assert (client.timeout.connect, client.timeout.read) == (0.5, 3)
    defaults = build_http_client(settings, build_config(SlowSearchAdapter, {"base_url": "x"}), None)
    assert defaults.timeout.connect == settings.upstream_connect_timeout_s
    assert defaults.timeout.read == settings.upstream_timeout_s


def test_a_timeout_for_an_unknown_operation_stops_start_up(settings):
    settings.adapters = {"echo": {"base_url": "http://x", "operation_timeouts": {"serch": 2}}}
    with pytest.raises(AdapterLoadError, match="serch"):
        AdapterRegistry.build(settings, {"echo": SlowSearchAdapter})


def test_operation_timeouts_are_read_from_the_environment(monkeypatch):
    from adapters.population import PopulationAdapter

    monkeypatch.setenv("HUB_POPULATION_OPERATION_TIMEOUTS", '{"verify": 20}')
    monkeypatch.setenv("HUB_POPULATION_DEADLINE_S", "30")
    config = build_config(PopulationAdapter, None)
    assert config.operation_timeouts == {"verify": 20} and config.deadline_s == 30
