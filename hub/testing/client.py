"""The hub in-process for adapter tests: its HTTP API as a client, or its pipeline directly.

`in_process_hub` is the one way to build the hub in-process (the kit's battery, `hub_client`
and the hub's own test suite all use it), on `kit_settings` that keep every file it writes
in a folder of the test's; `hub_client` serves end-to-end tests through the hub's own
routes; `ConformanceHub` is what the conformance battery runs against (and what sample
functions receive); `asgi_lifespan` runs a mock's startup and shutdown around either.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from hub.adapter import Adapter
from hub.app import create_app
from hub.core.config import Settings
from hub.core.gateway import CallerHeaders
from hub.core.registry import LoadedAdapter
from hub.core.state import Hub
from hub.errors import HubError
from hub.security.auth import Principal, create_client
from hub.testing.faults import FaultTransport
from hub.testing.samples import Sample, resolve_sample

# -- the hub in-process: the one way the kit (and the hub's own tests) build it ---------------

#: The server secret of every hub the kit builds (a test value: never a real hub's).
KIT_SECRET = "hub-kit-secret-key-0123456789abcdef"


def kit_settings(folder: Path, **overrides: Any) -> Settings:
    """Settings of an in-process hub that writes nothing outside `folder`: its SQLite
    database, its audit archives and its checkpoint witness are all under it (a test run
    from a hub's working folder must never append to that hub's audit evidence). Retries
    back off in milliseconds and nothing runs in the background; `overrides` are Settings
    fields (`adapters={...}`, `retry_attempts=...`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "audit-archive"
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": f"sqlite:///{folder}/hub.db",
        "secret_key": SecretStr(KIT_SECRET),
        "audit_archive_dir": str(archive),
        "audit_witness_file": str(archive / "checkpoints.jsonl"),
        "retry_initial_backoff_s": 0.001,
        "retry_max_backoff_s": 0.005,
        "client_cache_ttl_s": 0,
        "health_cache_s": 0,
        "background_tasks": False,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class InProcessHub:
    """A hub app with its lifespan entered, and an httpx client speaking to it in-process
    (`http`, no credential set)."""

    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings

    @property
    def hub(self) -> Hub:
        """The hub's state: registry, gateway, engine, audit writer."""
        return self.app.state.hub  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def in_process_hub(
    settings: Settings,
    *,
    adapters: Iterable[type[Adapter]] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[InProcessHub]:
    """The hub built by its own app factory with `settings` (`kit_settings` for one that
    keeps to a temporary folder), its lifespan run around the block. `adapters`: only these
    (default: every installed one); `transports`: per service, the httpx transport its
    upstream client uses (an ASGI mock)."""
    app = create_app(
        settings, adapters=adapters, transports=transports, webhook_transport=webhook_transport
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield InProcessHub(app, http, settings)


# -- the hub's HTTP API, in-process ----------------------------------------------------------


@contextlib.asynccontextmanager
async def hub_client(
    adapter: type[Adapter],
    mock: Any,
    *,
    config: Mapping[str, Any] | None = None,
    purpose: str = "test",
    allow: Sequence[str] = ("*",),
) -> AsyncIterator[httpx.AsyncClient]:
    """The hub's own HTTP API, in-process, with this adapter alone wired to `mock` (an ASGI
    app): an httpx client whose requests carry a fresh client's API key and `X-Purpose`.

        async with hub_client(LandRegistryAdapter, create_mock()) as client:
            answer = await client.post("/v1/services/land-registry/parcels", json={...})

    For end-to-end tests of an adapter through authentication, validation, the mapping,
    error translation and the audit, as an agency's application sees them. Everything the
    hub writes (database, audit archive, witness) is in a temporary folder, removed after;
    `config` overrides the adapter's settings.
    """
    base_url = f"http://{adapter.name}.mock"
    async with contextlib.AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = kit_settings(
            folder, adapters={adapter.name: {"base_url": base_url, **dict(config or {})}}
        )
        transports = {adapter.name: httpx.ASGITransport(app=mock)}
        await stack.enter_async_context(asgi_lifespan(mock))
        running = await stack.enter_async_context(
            in_process_hub(settings, adapters=[adapter], transports=transports)
        )
        issued = create_client(
            running.hub.engine,
            KIT_SECRET.encode(),
            name=f"test-{uuid.uuid4().hex[:8]}",
            allow=allow,
            purposes=[purpose],
        )
        headers = {"authorization": f"Bearer {issued.api_key}", "x-purpose": purpose}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app),
            base_url="http://hub.test",
            headers=headers,
        )
        yield await stack.enter_async_context(client)


# -- running an ASGI app's lifespan ----------------------------------------------------------


@contextlib.asynccontextmanager
async def asgi_lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan around the block (startup, then shutdown after it).

    An app without lifespan support (one that raises or returns on a lifespan scope) is
    run without it; a `lifespan.startup.failed` raises RuntimeError.
    """
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: Mapping[str, Any]) -> None:
        await from_app.put(dict(message))

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, receive, send))

    async def answer() -> dict[str, Any] | None:
        """The app's next message, or None when it ended without one (no lifespan)."""
        reply = asyncio.ensure_future(from_app.get())
        await asyncio.wait({task, reply}, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            return reply.result()
        reply.cancel()
        return None

    await to_app.put({"type": "lifespan.startup"})
    started = await answer()
    if started is None:  # the app does not speak lifespan
        with contextlib.suppress(Exception):
            task.result()
        yield
        return
    if started["type"] != "lifespan.startup.complete":
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise RuntimeError(f"the mock failed to start: {started.get('message', '')}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await answer()
        await task


# -- the running hub -------------------------------------------------------------------------


@dataclass
class ConformanceHub:
    """The hub built for one test: the adapter alone, wired to its mock through the kit's
    transport. Sample functions receive it (to call operations, or the mock directly)."""

    hub: Hub
    service: str
    mock: Any
    transport: FaultTransport
    base_url: str

    @property
    def loaded(self) -> LoadedAdapter:
        """The adapter as the hub loaded it (instance, per-attempt timeout)."""
        return self.hub.registry.get(self.service)

    @property
    def adapter(self) -> Adapter:
        """The adapter instance the hub calls."""
        return self.loaded.instance

    async def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation through the hub's whole pipeline (validation, timeout, retry,
        error translation, audit), as the hub's own routes do: operations served only by
        their resource route (`@operation(route=...)`) too. Returns the output's JSON data;
        raises the HubError the caller would get."""
        caller = CallerHeaders(
            request_id=f"conformance-{uuid.uuid4().hex}",
            authorization=None,
            purpose="conformance",
        )
        principal = Principal(
            "cl_conformance", "conformance", frozenset({"*"}), frozenset({"conformance"})
        )
        result = await self.hub.gateway.call(
            caller,
            self.service,
            operation,
            copy.deepcopy(dict(payload)),
            principal=principal,
            authorize=False,
        )
        return result.data

    async def error(self, operation: str, payload: Mapping[str, Any]) -> HubError:
        """Run an operation that must fail; returns its HubError."""
        try:
            data = await self.call(operation, payload)
        except HubError as exc:
            return exc
        raise AssertionError(f"{self.service}:{operation} answered instead of failing: {data}")

    async def mock_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request straight to the mock (neither faulted nor counted): to set upstream
        state up, e.g. settle a payment on a mock-only route."""
        transport = httpx.ASGITransport(app=self.mock)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
            return await client.request(method, path, **kwargs)

    async def resolve(self, sample: Sample) -> dict[str, Any]:
        """A sample as an input mapping (a sample function is run now)."""
        return await resolve_sample(self, sample)

    @contextlib.asynccontextmanager
    async def attempt_timeout(self, seconds: float) -> AsyncIterator[None]:
        """The hub's per-attempt timeout of this adapter set to `seconds` for the block."""
        loaded = self.loaded
        saved = loaded.timeout_s, loaded.operation_timeouts
        loaded.timeout_s = seconds
        loaded.operation_timeouts = dict.fromkeys(loaded.cls.operations, seconds)
        try:
            yield
        finally:
            loaded.timeout_s, loaded.operation_timeouts = saved
