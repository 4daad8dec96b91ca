"""Shared fixtures: a hub app in-process (lifespan run), its database, clients and mocks.

Set HUB_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) to run the whole
suite against PostgreSQL; the default is a fresh SQLite file per test.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from hub.adapter import Adapter
from hub.app import Hub, create_app
from hub.auth import create_client
from hub.config import Settings
from hub.db import make_engine


def database_url(tmp_path: Any) -> str:
    return os.environ.get("HUB_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/hub.db"


def reset_database(url: str) -> None:
    """Empty the shared database between tests (PostgreSQL runs); SQLite files are fresh."""
    if url.startswith("sqlite"):
        return
    from hub.db import create_schema

    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_records, api_keys, clients RESTART IDENTITY CASCADE"))
    engine.dispose()


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
    )


@dataclass
class RunningHub:
    """An app with its lifespan entered and an httpx client speaking to it in-process."""

    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings

    @property
    def hub(self) -> Hub:
        return self.app.state.hub  # type: ignore[no-any-return]

    def client(self, *, allow: Iterable[str] = ("*",), purposes: Iterable[str] = ("test",)) -> str:
        """Create a client; returns its API key."""
        issued = create_client(
            self.hub.engine,
            self.settings.secret_key.get_secret_value().encode(),
            name=f"client-{uuid.uuid4().hex[:8]}",
            allow=allow,
            purposes=purposes,
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


@contextlib.asynccontextmanager
async def running_hub(
    settings: Settings,
    *,
    adapters: Iterable[type[Adapter]] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[RunningHub]:
    app = create_app(settings, adapters=adapters, transports=transports)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield RunningHub(app, http, settings)


@pytest.fixture
def population_mock() -> Any:
    """The population mock as an in-process ASGI app."""
    from mocks.population.app import create_app as create_mock

    return create_mock()


@pytest.fixture
async def hub(settings: Settings, population_mock: Any) -> AsyncIterator[RunningHub]:
    """The hub with its installed adapters, population wired to the in-process mock."""
    settings.adapters = {"population": {"base_url": "http://population.mock"}}
    transports = {"population": httpx.ASGITransport(app=population_mock)}
    async with running_hub(settings, transports=transports) as running:
        yield running
