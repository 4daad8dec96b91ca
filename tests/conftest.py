"""Shared fixtures: a hub app in-process (lifespan run), its database, clients and mocks.

Set HUB_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) to run the whole
suite against PostgreSQL; the default is a fresh SQLite file per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from hub.adapter import Adapter
from hub.core.config import Settings
from hub.core.db import make_engine
from hub.security.auth import create_client
from hub.testing.client import InProcessHub, in_process_hub


def database_url(tmp_path: Any) -> str:
    return os.environ.get("HUB_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/hub.db"


def reset_database(url: str) -> None:
    """Empty the shared database between tests (PostgreSQL runs); SQLite files are fresh."""
    if url.startswith("sqlite"):
        return
    from sqlmodel import SQLModel

    from hub.core.db import create_schema

    engine = make_engine(url)
    create_schema(engine)
    tables = ", ".join(SQLModel.metadata.tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(autouse=True)
def redis_prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test's keys in Redis under a prefix of its own (HUB_REDIS_PREFIX, which hub
    processes a test starts inherit too): CI's second pass shares one Redis, and a circuit
    one test opened must not reach the next."""
    prefix = f"hub-test-{uuid.uuid4().hex[:12]}:"
    monkeypatch.setenv("HUB_REDIS_PREFIX", prefix)
    return prefix


@pytest.fixture(autouse=True)
def audit_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """Each test's audit archives and checkpoint witness in its own folder
    (HUB_AUDIT_ARCHIVE_DIR, inherited by the hub processes a test starts), never the
    working directory's."""
    folder = tmp_path / "audit-archive"
    monkeypatch.setenv("HUB_AUDIT_ARCHIVE_DIR", str(folder))
    return folder


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    url = database_url(tmp_path)
    reset_database(url)
    return Settings(
        database_url=url,
        secret_key="test-secret-key-0123456789",
        retry_initial_backoff_s=0.001,
        retry_max_backoff_s=0.005,
        upstream_timeout_s=2.0,
        retry_deadline_s=5.0,
        client_cache_ttl_s=0,
        health_cache_s=0,
        # Tests drive background work with `hub.worker.run_once()`, so it happens when the
        # test says; the restart test turns the real loop on.
        background_tasks=False,
        # CI's second pass: rate-limit counters in the machine's Redis, as in production.
        redis_url=os.environ.get("HUB_TEST_REDIS_URL") or None,
        # CI's second pass also serves every answer through FastAPI's own path, so the
        # whole API suite runs through both paths (tests/test_direct.py compares them).
        direct_path=os.environ.get("HUB_TEST_DIRECT_PATH", "1") != "0",
    )


class RunningHub(InProcessHub):
    """The kit's in-process hub (app, lifespan entered, `http` client), with the suite's
    helpers: clients, headers, the audit table."""

    def client(
        self,
        *,
        allow: Iterable[str] = ("*",),
        purposes: Iterable[str] = ("test",),
        rate_per_minute: int | None = None,
        fields: dict[str, list[str]] | None = None,
        require_officer: bool = False,
        require_dossier: bool = False,
    ) -> str:
        """Create a client; returns its API key."""
        issued = create_client(
            self.hub.engine,
            self.settings.secret_key.get_secret_value().encode(),
            name=f"client-{uuid.uuid4().hex[:8]}",
            allow=allow,
            purposes=purposes,
            rate_per_minute=rate_per_minute,
            fields=fields,
            require_officer=require_officer,
            require_dossier=require_dossier,
        )
        return issued.api_key

    def headers(self, api_key: str, purpose: str | None = "test", **extra: str) -> dict[str, str]:
        headers = {"authorization": f"Bearer {api_key}", **extra}
        if purpose is not None:
            headers["x-purpose"] = purpose
        return headers

    def audit_rows(self) -> list[dict[str, Any]]:
        with self.hub.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM audit_records ORDER BY id")).mappings().all()
        return [dict(r) for r in rows]


async def call_operation(
    hub: RunningHub, service: str, operation: str, body: Any, headers: Mapping[str, str]
) -> httpx.Response:
    """Run one operation through the whole pipeline (auth, grants, purpose, validation,
    audit) as the generic route does, but also for operations only the hub's own routes
    may call (`@operation(route=...)`): adapter tests exercise those one message at a time.
    The answer is rendered as the HTTP layer renders it."""
    from hub.api.deps import envelope
    from hub.api.problems import problem_response
    from hub.core.gateway import CallerHeaders
    from hub.errors import HubError

    lowered = {k.lower(): v for k, v in headers.items()}
    caller = CallerHeaders(
        request_id=lowered.get("x-request-id") or uuid.uuid4().hex,
        authorization=lowered.get("authorization"),
        purpose=lowered.get("x-purpose"),
        officer_id=lowered.get("x-officer-id"),
        dossier_id=lowered.get("x-dossier-id"),
    )
    try:
        response = envelope(
            await hub.hub.gateway.call(caller, service, operation, body), caller.request_id
        )
    except HubError as exc:
        response = problem_response(exc, caller.request_id)
    return httpx.Response(
        response.status_code,
        headers={**dict(response.headers), "x-request-id": caller.request_id},
        content=bytes(response.body),
    )


@contextlib.asynccontextmanager
async def running_hub(
    settings: Settings,
    *,
    adapters: Iterable[type[Adapter]] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[RunningHub]:
    """The hub in-process, built the kit's one way (`hub.testing.in_process_hub`)."""
    async with in_process_hub(
        settings, adapters=adapters, transports=transports, webhook_transport=webhook_transport
    ) as running:
        yield RunningHub(running.app, running.http, settings)


@pytest.fixture
def population_mock() -> Any:
    """The population mock as an in-process ASGI app."""
    from mocks.population.app import create_app as create_mock

    return create_mock()


#: Mock options for tests: a judicial certificate is decided in a fraction of a second.
MOCK_OPTIONS: dict[str, dict[str, Any]] = {"judicial-records": {"processing_s": 0.3}}


@pytest.fixture
def mock_apps(population_mock: Any) -> dict[str, Any]:
    """Every implemented mock as an in-process ASGI app, by service name."""
    from mocks import MOCKS, create_mock_app

    apps = {
        name: create_mock_app(name, **MOCK_OPTIONS.get(name, {}))
        for name, spec in MOCKS.items()
        if spec.factory
    }
    apps["population"] = population_mock
    return apps


#: Where the hub receives each mock's pushes (results, payment callbacks).
PUSH_PATHS = {
    "judicial-records": "/v1/judicial-records/results",
    "payment": "/v1/payments/ipn",
}


@pytest.fixture
async def hub(settings: Settings, mock_apps: dict[str, Any]) -> AsyncIterator[RunningHub]:
    """The hub with its installed adapters, each wired to its in-process mock (pushes too)."""
    settings.adapters = {name: {"base_url": f"http://{name}.mock"} for name in mock_apps}
    transports = {name: httpx.ASGITransport(app=app) for name, app in mock_apps.items()}
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(running_hub(settings, transports=transports))
        for name, path in PUSH_PATHS.items():
            app = mock_apps.get(name)
            if app is not None:
                app.state.push.url = f"http://hub.test{path}"
                app.state.push.transport = httpx.ASGITransport(app=running.app)
                await stack.enter_async_context(app.router.lifespan_context(app))
        yield running


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Let background work (a mock's tasks, an audit record committed after the answer) run
    until `predicate` holds, bounded in time: CI's machines are busy, so a test waits for
    what it asserts rather than for a lucky order."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)
