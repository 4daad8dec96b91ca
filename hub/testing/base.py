"""What every check of the battery stands on: the subclass's declarations, the pytest
plumbing (per-operation parametrizing, a bounded event loop per test) and the hub it runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest

from hub.adapter import Adapter, OperationSpec
from hub.testing.client import ConformanceHub, asgi_lifespan, in_process_hub, kit_settings
from hub.testing.faults import FaultTransport, path_prefixes
from hub.testing.samples import EventSample, Sample

#: Every test's bound: a check the hub does not end (a hang) fails instead of blocking.
_TEST_BOUND_S = 30.0


def _over(source: Literal["samples", "unknown"]) -> Callable[[Any], Any]:
    """Mark a test to be run once per operation of `samples` or `unknown`."""

    def mark(func: Any) -> Any:
        wrapped = _none_applies(func)
        wrapped.conformance_over = source
        return wrapped

    return mark


def _over_events(source: Literal["feed", "push"]) -> Callable[[Any], Any]:
    """Mark a test to be run once per event type the adapter declares with this `source`."""

    def mark(func: Any) -> Any:
        wrapped = _none_applies(func)
        wrapped.conformance_events = source
        return wrapped

    return mark


def _none_applies(func: Any) -> Any:
    """The check, passing at once when the adapter has nothing it applies to (its one
    parameter is then None, id `none`): an adapter with no event types, or no operation of
    that kind, has nothing to fail, and the suite shows no skipped test a reader must
    wonder about."""

    @functools.wraps(func)
    def check(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("operation", "") is None or kwargs.get("event_type", "") is None:
            return None
        return func(self, *args, **kwargs)

    return check


class ConformanceBase:
    """The declarations and the plumbing the checks share; AdapterConformance's docstring
    says what a subclass declares."""

    __test__ = False  # no test itself; AdapterConformance marks its own subclasses as tests

    adapter: ClassVar[type[Adapter]]
    mock: ClassVar[Callable[[], Any]]
    samples: ClassVar[Mapping[str, Sample]] = {}
    unknown: ClassVar[Mapping[str, Sample]] = {}
    exempt: ClassVar[Mapping[str, str]] = {}
    events: ClassVar[Mapping[str, EventSample]] = {}
    expected: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    upstream_answers: ClassVar[Callable[[httpx.Request, Any], Any] | None] = None
    config: ClassVar[Mapping[str, Any]] = {}
    fault_paths: ClassVar[Sequence[str] | Callable[[httpx.Request], bool] | None] = None
    retry_attempts: ClassVar[int] = 3
    attempt_timeout_s: ClassVar[float] = 0.05

    # -- pytest plumbing ---------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the per-operation checks with this adapter's operations, and the
        per-event-type checks with its event types."""
        events = getattr(metafunc.function, "conformance_events", None)
        if events is not None and "event_type" in metafunc.fixturenames:
            adapter = getattr(type(self), "adapter", None)
            declared = getattr(adapter, "event_types", ())
            kinds = [e.name for e in declared if e.source == events]
            if kinds:
                metafunc.parametrize("event_type", kinds)
            else:  # nothing declared with this source: the check passes (_none_applies)
                metafunc.parametrize("event_type", [None], ids=["none"])
            return
        source = getattr(metafunc.function, "conformance_over", None)
        if source is None or "operation" not in metafunc.fixturenames:
            return
        names = list(getattr(type(self), source))
        if names:
            metafunc.parametrize("operation", names)
        else:  # no such operation: the check passes (_none_applies)
            metafunc.parametrize("operation", [None], ids=["none"])

    def _run(self, test: Callable[[], Awaitable[None]]) -> None:
        """Run one async check in its own event loop, bounded so a hang fails the test."""

        async def bounded() -> None:
            try:
                await asyncio.wait_for(test(), _TEST_BOUND_S)
            except TimeoutError:
                raise AssertionError(
                    f"the check did not end within {_TEST_BOUND_S:.0f} s (a hang the hub's "
                    "timeout did not end?)"
                ) from None

        asyncio.run(bounded())

    @classmethod
    def _adapter_cls(cls) -> type[Adapter]:
        adapter = getattr(cls, "adapter", None)
        if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
            raise TypeError(f"{cls.__name__}.adapter must be an Adapter subclass")
        return adapter

    @classmethod
    def _spec(cls, operation: str) -> OperationSpec:
        spec = cls._adapter_cls().operations.get(operation)
        if spec is None:
            raise AssertionError(f"{cls._adapter_cls().name} has no operation {operation!r}")
        return spec

    @classmethod
    def _targets(cls) -> Callable[[httpx.Request], bool]:
        chosen = cls.fault_paths  # read on the class: a function stays unbound
        if chosen is None:
            return lambda request: True
        if isinstance(chosen, str):
            return path_prefixes([chosen])
        if callable(chosen):
            return chosen
        return path_prefixes(chosen)

    # -- the hub under test ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(
        self, tmp_path: Path | None = None, *, retry_attempts: int | None = None
    ) -> AsyncIterator[ConformanceHub]:
        """The hub with this adapter alone, wired to a fresh mock through a FaultTransport,
        on an SQLite file in `tmp_path` (a temporary directory if None), where its audit archive
        and witness go too (`kit_settings`)."""
        cls = type(self)
        adapter = self._adapter_cls()
        factory = getattr(cls, "mock", None)
        if not callable(factory):
            raise TypeError(f"{cls.__name__}.mock must be a callable returning an ASGI app")
        mock = factory()
        base_url = f"http://{adapter.name}.conformance"
        transport = FaultTransport(httpx.ASGITransport(app=mock), self._targets())
        async with contextlib.AsyncExitStack() as stack:
            if tmp_path is None:
                tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            settings = kit_settings(
                tmp_path,
                retry_attempts=self.retry_attempts if retry_attempts is None else retry_attempts,
                retry_deadline_s=10.0,
                upstream_timeout_s=10.0,
                adapters={adapter.name: {"base_url": base_url, **dict(cls.config)}},
            )
            await stack.enter_async_context(asgi_lifespan(mock))
            running = await stack.enter_async_context(
                in_process_hub(settings, adapters=[adapter], transports={adapter.name: transport})
            )
            yield ConformanceHub(running.hub, adapter.name, mock, transport, base_url)
