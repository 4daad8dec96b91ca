"""Upstream calls through a forward proxy (HUB_UPSTREAM_PROXY, HTTP(S)_PROXY, NO_PROXY).

The proxy is a real one on loopback, started by the test: it reads absolute-URI requests
(`GET http://host:port/path`), forwards them to the host named and counts them; a CONNECT it
records and refuses. Upstreams are raw servers on 127.0.0.1 too: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import BaseModel

from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.core.config import ConfigurationError, Settings
from hub.core.http1 import Http1Backend
from hub.core.proxy import ProxyRules, environment_proxies, masked
from hub.core.registry import (
    AdapterLoadError,
    AdapterRegistry,
    build_http_client,
    classes_from,
    log_proxy_routes,
)
from hub.upstream import HttpxBackend
from tests.conftest import running_hub
from tests.test_http1 import raw_server

ANSWER = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{"value":7}'
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says which proxy variables it has: none from the machine running it."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def header(head: bytes, name: str) -> str | None:
    """A header's value in a raw request head."""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


class ForwardProxy:
    """A minimal HTTP forward proxy: one request per connection, answered and closed."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []  # each request's head, as the proxy received it
        self.url = ""

    @property
    def forwarded(self) -> int:
        return sum(1 for head in self.requests if not head.startswith(b"CONNECT "))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
            if method == "CONNECT":  # tunnels are not this proxy's trade
                writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                return
            if urlsplit(target).hostname != "127.0.0.1":  # nothing leaves the machine
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                return
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            body = await reader.readexactly(int(length[1]) if length else 0)
            writer.write(await self._forward(method, urlsplit(target), head, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()

    async def _forward(self, method: str, url: Any, head: bytes, body: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")[1:]
        kept = [
            line
            for line in lines
            if line and not line.lower().startswith(("proxy-", "connection:"))
        ]
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        request = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in kept)
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
        writer.write(request.encode("latin-1") + b"connection: close\r\n\r\n" + body)
        answer = await reader.read()  # the upstream closes after its answer
        writer.close()
        return answer


@contextlib.asynccontextmanager
async def forward_proxy(userinfo: str = "") -> AsyncIterator[ForwardProxy]:
    proxy = ForwardProxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.url = f"http://{userinfo}127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()


class ValueOut(BaseModel):
    value: int


class Query(BaseModel):
    key: str


class Gauge(Adapter):
    """A throwaway adapter that reads one JSON value from its upstream."""

    name = "gauge"
    version = "1.0.0"
    title = "Gauge"

    @operation(personal_data=False)
    async def read(self, request: Query, ctx: CallContext) -> ValueOut:
        """Read the gauge."""
        response = await self.http.get(f"/gauges/{request.key}")
        return ValueOut.model_validate(response.json())

    async def health(self) -> Health:
        return Health(ok=True)


# -- through the hub's API ------------------------------------------------------------------


async def call_gauge(settings: Settings, base_url: str) -> httpx.Response:
    settings.adapters = {"gauge": {"base_url": base_url}}
    async with running_hub(settings, adapters=[Gauge]) as hub:
        key = hub.client()
        return await hub.http.post(
            "/v1/services/gauge/read", json={"key": "g1"}, headers=hub.headers(key)
        )


async def test_an_adapters_call_goes_through_hub_upstream_proxy(settings):
    async with raw_server(ANSWER) as upstream, forward_proxy() as proxy:
        settings.upstream_proxy = proxy.url
        response = await call_gauge(settings, upstream.url + "/api")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"value": 7}
    assert proxy.forwarded == 1
    assert proxy.requests[0].startswith(f"GET {upstream.url}/api/gauges/g1 HTTP/1.1\r\n".encode())
    assert upstream.requests[0].startswith(b"GET /api/gauges/g1 HTTP/1.1\r\n")


async def test_no_proxy_sends_the_call_straight_to_upstream(settings, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "proxy-exempt.example, 127.0.0.1")
    async with raw_server(ANSWER) as upstream, forward_proxy() as proxy:
        settings.upstream_proxy = proxy.url
        response = await call_gauge(settings, upstream.url)
    assert response.status_code == 200, response.text
    assert proxy.requests == [] and len(upstream.requests) == 1


async def test_without_the_setting_the_environments_http_proxy_applies(settings, monkeypatch):
    async with raw_server(ANSWER) as upstream, forward_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        response = await call_gauge(settings, upstream.url)
    assert response.status_code == 200, response.text
    assert proxy.forwarded == 1 and len(upstream.requests) == 1


# -- the client the registry builds ---------------------------------------------------------


async def test_the_proxys_credentials_go_to_it_and_never_to_the_log(caplog):
    async with raw_server(ANSWER) as upstream, forward_proxy("agency:s3cr%40t@") as proxy:
        settings = Settings(upstream_proxy=proxy.url)
        settings.adapters = {"gauge": {"base_url": upstream.url}}
        with caplog.at_level(logging.INFO, logger="hub.upstream"):
            registry = AdapterRegistry.build(settings, classes_from([Gauge]))
        try:
            http = registry.get("gauge").instance.http
            assert (await http.get("/gauges/g1")).json() == {"value": 7}
        finally:
            await registry.aclose()
    [line] = [r.getMessage() for r in caplog.records if "proxy" in r.getMessage()]
    address = proxy.url.rpartition("@")[2]
    assert line == f"upstream proxy: gauge through http://***@{address}; direct: none"
    assert "s3cr" not in caplog.text and "agency" not in caplog.text
    token = base64.b64encode(b"agency:s3cr@t").decode()
    assert header(proxy.requests[0], "proxy-authorization") == f"Basic {token}"
    assert header(upstream.requests[0], "proxy-authorization") is None


async def test_an_https_upstream_is_asked_for_through_a_connect_tunnel():
    async with forward_proxy() as proxy:
        config = AdapterConfig(base_url="https://national-system.example:8443/ws")
        client = build_http_client(Settings(upstream_proxy=proxy.url), config, None)
        try:
            with pytest.raises(httpx.ProxyError):
                await client.get("/lookup")
        finally:
            await client.aclose()
    assert proxy.requests[0].startswith(b"CONNECT national-system.example:8443 HTTP/1.1\r\n")


@pytest.mark.parametrize("transport", ["http1", "aiohttp", "httpx"])
async def test_a_proxied_upstream_gets_httpx_and_an_exempt_one_keeps_its_transport(
    transport, monkeypatch
):
    monkeypatch.setenv("no_proxy", ".internal.example")
    settings = Settings(upstream_proxy="http://127.0.0.1:9", http_transport=transport)
    proxied = build_http_client(settings, AdapterConfig(base_url="http://a.example"), None)
    exempt = build_http_client(settings, AdapterConfig(base_url="http://b.internal.example"), None)
    try:
        assert isinstance(proxied._backend, HttpxBackend)
        assert (
            type(exempt._backend).__name__
            == {"http1": "Http1Backend", "aiohttp": "AiohttpBackend", "httpx": "HttpxBackend"}[
                transport
            ]
        )
    finally:
        await proxied.aclose()
        await exempt.aclose()


async def test_a_tests_transport_wins_over_any_proxy():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": 1})

    settings = Settings(upstream_proxy="http://127.0.0.1:9")
    config = AdapterConfig(base_url="http://gauge.test")
    client = build_http_client(settings, config, httpx.MockTransport(handler))
    try:
        assert (await client.get("/g")).json() == {"value": 1}
    finally:
        await client.aclose()
    assert str(seen[0].url) == "http://gauge.test/g"


def test_one_start_up_line_names_the_adapters_proxied_and_those_kept_direct(caplog):
    chosen = rules(HTTP_PROXY="http://u:p@plain:1", HTTPS_PROXY="http://tls:2", NO_PROXY=".lan")
    urls = {
        "population": "https://dan-cu.example/ws",
        "civil-status": "http://ho-tich.example/api",
        "payment": "https://pay.lan/api",
        "judicial-records": "https://ly-lich.example/api",
    }
    with caplog.at_level(logging.INFO, logger="hub.upstream"):
        log_proxy_routes(chosen, urls)
    assert [r.getMessage() for r in caplog.records] == [
        "upstream proxy: population, judicial-records through http://tls:2; "
        "civil-status through http://***@plain:1; direct: payment"
    ]


async def test_no_proxy_configured_keeps_the_lean_client_and_logs_nothing(caplog):
    settings = Settings()
    settings.adapters = {"gauge": {"base_url": "http://127.0.0.1:9"}}
    with caplog.at_level(logging.INFO, logger="hub.upstream"):
        registry = AdapterRegistry.build(settings, classes_from([Gauge]))
    try:
        assert isinstance(registry.get("gauge").instance.http._backend, Http1Backend)
    finally:
        await registry.aclose()
    assert not [r for r in caplog.records if "proxy" in r.getMessage()]


def test_a_proxy_httpx_cannot_speak_is_refused_at_start_up_with_its_credentials_masked(
    monkeypatch,
):
    with pytest.raises(ConfigurationError, match="HUB_UPSTREAM_PROXY") as refused:
        Settings(upstream_proxy="socks5://agency:s3cret@proxy:1080").check()
    assert "s3cret" not in str(refused.value) and "***@proxy:1080" in str(refused.value)
    monkeypatch.setenv("ALL_PROXY", "ftp://proxy:21")
    with pytest.raises(AdapterLoadError, match="ALL_PROXY"):
        AdapterRegistry.build(Settings(), classes_from([Gauge]))


# -- the rules ------------------------------------------------------------------------------


def rules(upstream_proxy: str | None = None, **environ: str) -> ProxyRules:
    return ProxyRules.build(upstream_proxy, environ)


def test_hub_upstream_proxy_applies_to_both_schemes_over_the_environment():
    chosen = rules("http://hub-proxy:3128", HTTP_PROXY="http://other:1", HTTPS_PROXY="other:2")
    assert chosen.for_url("http://upstream.example/ws") == "http://hub-proxy:3128"
    assert chosen.for_url("https://upstream.example/ws") == "http://hub-proxy:3128"


def test_the_environments_proxies_by_scheme_as_httpx_reads_them():
    chosen = rules(HTTP_PROXY="http://plain:1", HTTPS_PROXY="tls-proxy:2")
    assert chosen.for_url("http://a.example/") == "http://plain:1"
    assert chosen.for_url("https://a.example/") == "http://tls-proxy:2"  # no scheme: http://
    assert rules(ALL_PROXY="http://any:3").for_url("https://a.example/") == "http://any:3"
    assert rules(HTTP_PROXY="http://plain:1").for_url("https://a.example/") is None
    assert rules().for_url("http://a.example/") is None and not rules().proxies


def test_lower_case_variables_win_and_cgi_ignores_upper_case_http_proxy():
    assert environment_proxies({"HTTP_PROXY": "http://up:1", "http_proxy": "http://low:2"}) == {
        "http": "http://low:2"
    }
    assert environment_proxies({"HTTPS_PROXY": "http://up:1", "https_proxy": ""}) == {}
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://from-a-header:1"}
    assert environment_proxies(cgi) == {}
    assert environment_proxies({**cgi, "http_proxy": "http://mine:2"}) == {"http": "http://mine:2"}


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("*", "http://anything.example/", True),
        ("moj.gov.vn", "http://moj.gov.vn/api", True),
        ("moj.gov.vn", "https://api.moj.gov.vn/api", True),
        ("moj.gov.vn", "http://notmoj.gov.vn/api", False),
        (".moj.gov.vn", "http://moj.gov.vn/api", False),
        (".moj.gov.vn", "http://api.moj.gov.vn/api", True),
        ("*.moj.gov.vn", "http://api.moj.gov.vn/api", True),
        ("MOJ.gov.vn", "http://api.Moj.GOV.vn./api", True),
        ("10.0.0.0/8", "http://10.20.30.40:8080/ws", True),
        ("10.0.0.0/8", "http://11.0.0.1/ws", False),
        ("10.0.0.0/8", "http://ten.example/ws", False),
        ("192.168.1.5", "http://192.168.1.5/ws", True),
        ("::1", "http://[::1]:8101/ws", True),
        ("[::1]:8101", "http://[::1]:8102/ws", False),
        ("gateway.example:8443", "https://gateway.example:8443/", True),
        ("gateway.example:8443", "https://gateway.example/", False),
        ("http://gateway.example", "https://gateway.example/", True),
        ("localhost", "http://localhost:8101/", True),
        ("", "http://localhost:8101/", False),
    ],
)
def test_no_proxy_entries(no_proxy, url, direct):
    chosen = rules("http://proxy:3128", NO_PROXY=f"other.example, {no_proxy}")
    assert (chosen.for_url(url) is None) is direct


def test_masked_hides_the_user_and_the_password_only():
    assert masked("http://agency:p%40ss@proxy:3128/") == "http://***@proxy:3128/"
    assert masked("http://agency@proxy:3128") == "http://***@proxy:3128"
    assert masked("http://proxy:3128") == "http://proxy:3128"
