"""Smaller leaks and inconsistencies (issue 18, finding 8): the trailing-slash redirect, the
HTTP server's own refusals, errors that repeat the caller's path, and /metrics."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from hub.api.middleware import SECURITY_HEADERS, relative_location
from hub.core.config import ConfigurationError, Settings
from hub.core.http_server import MAX_HEADER_BYTES, MAX_TARGET_BYTES
from tests.conftest import running_hub
from tests.test_pipeline import assert_problem
from tests.test_servers import HUB, free_port, start, stop, wait_until_up

PID = "001085012345"


def has_security_headers(response: httpx.Response) -> bool:
    return all(response.headers.get(n.decode()) == v.decode() for n, v in SECURITY_HEADERS)


# -- the trailing-slash redirect ---------------------------------------------------------------


async def test_the_trailing_slash_redirect_stays_on_this_hub(hub):
    for path in ("/v1/services/", "/metrics/", "/v1/citizens/verify/"):
        response = await hub.http.get(path, headers={"host": "evil.example"})
        assert response.status_code == 307, path
        assert response.headers["location"] == path.rstrip("/"), path  # relative, no host
        assert has_security_headers(response) and response.headers["x-request-id"]
    query = await hub.http.get("/v1/services/?a=1", headers={"host": "evil.example"})
    assert query.headers["location"] == "/v1/services?a=1"


@pytest.mark.parametrize(
    ("given", "relative"),
    [
        (b"http://evil.example/v1/services", b"/v1/services"),
        (b"http://evil.example//evil.example/x", b"/evil.example/x"),  # never protocol-relative
        (b"//evil.example/x?y=1", b"/x?y=1"),
        (b"http://evil.example", b"/"),
    ],
)
def test_a_redirect_location_is_a_path_on_this_hub(given, relative):
    assert relative_location(given) == relative


# -- errors that repeat the caller's path ------------------------------------------------------


async def test_unknown_service_and_operation_repeat_only_a_bounded_name(hub):
    key = hub.client()
    for segment in (PID, "x" * 5000, "Nguyễn-Văn-A", "a" * 65, "1abc"):
        for path in (f"/v1/services/{segment}/lookup", f"/v1/services/population/{segment}"):
            response = await hub.http.post(path, json={}, headers=hub.headers(key))
            assert response.status_code == 404, path[:60]
            assert segment not in response.text and "by that name" in response.text
            assert len(response.content) < 600
    named = await hub.http.post("/v1/services/no-such_service/x", json={}, headers=hub.headers(key))
    assert "'no-such_service'" in named.json()["detail"]
    access = await hub.http.get(
        f"/v1/citizens/{PID}/access-log", params={PID: "1"}, headers=hub.headers(key)
    )
    assert access.status_code in (400, 403) and PID not in access.json()["detail"]


# -- /metrics ----------------------------------------------------------------------------------


async def scrape(settings: Settings, client: tuple[str, int], **headers: str) -> httpx.Response:
    async with running_hub(settings, adapters=[]) as hub:
        transport = httpx.ASGITransport(app=hub.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            return await http.get("/metrics", headers=headers)


async def test_metrics_are_served_to_loopback_only_by_default(settings):
    assert (await scrape(settings, ("127.0.0.1", 5000))).status_code == 200
    assert (await scrape(settings, ("::1", 5000))).status_code == 200
    outside = await scrape(settings, ("10.0.0.5", 5000))
    assert_problem(outside, 403, "FORBIDDEN")
    assert "hub_requests" not in outside.text


async def test_metrics_take_the_scrape_token_or_an_allowed_network(settings):
    settings.metrics_token = SecretStr("scrape-token-0123456789")
    settings.metrics_networks = ["10.1.0.0/16"]
    prometheus = ("10.1.2.3", 5000)
    assert (await scrape(settings, prometheus)).status_code == 200
    elsewhere = ("192.0.2.7", 5000)
    assert_problem(await scrape(settings, elsewhere), 401, "UNAUTHENTICATED")
    wrong = await scrape(settings, elsewhere, authorization="Bearer scrape-token-x")
    assert_problem(wrong, 401, "UNAUTHENTICATED")
    right = await scrape(settings, elsewhere, authorization="Bearer scrape-token-0123456789")
    assert right.status_code == 200 and "hub_requests" in right.text
    local = await scrape(settings, ("127.0.0.1", 5000))  # loopback is no longer listed
    assert local.status_code == 401


def test_a_metrics_network_that_is_not_one_is_refused():
    settings = Settings(metrics_networks=["10.0.0.0/8", "not-a-network"])
    with pytest.raises(ConfigurationError, match="HUB_METRICS_NETWORKS"):
        settings.check()


# -- the HTTP server's own refusals ------------------------------------------------------------


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory: Any) -> Iterator[int]:
    import os

    from tests.conftest import database_url, reset_database

    folder = tmp_path_factory.mktemp("leaks")
    url = database_url(folder)
    reset_database(url)
    env = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "leak-test-secret",
        "HUB_ENABLED_ADAPTERS": "[]",
        "HUB_AUDIT_ARCHIVE_DIR": str(folder / "archive"),
    }
    port = free_port()
    proc = start([*HUB, "serve", "--port", str(port), "--log-level", "warning"], env)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/health")
        yield port
    finally:
        stop(proc)


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.server
@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "BAD_REQUEST"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400, "BAD_REQUEST"),
        (
            b"GET /v1/citizens/" + b"1" * (MAX_TARGET_BYTES + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "URI_TOO_LONG",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + b"".join(
                b"X-Pad-%d: %s\r\n" % (n, b"a" * 1000) for n in range(MAX_HEADER_BYTES // 1000 + 2)
            )
            + b"\r\n",
            431,
            "HEADERS_TOO_LARGE",
        ),
    ],
    ids=["bad-header", "tls-to-http", "long-url", "huge-headers"],
)
def test_what_the_server_refuses_before_the_app_is_problem_json(
    real_hub, request_bytes, status, code
):
    got, headers, body = raw(real_hub, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/problem+json"
    problem = orjson.loads(body)
    assert problem["code"] == code and problem["status"] == status
    assert problem["request_id"] == headers["x-request-id"]
    for name, value in SECURITY_HEADERS:
        assert headers[name.decode()] == value.decode()
    assert b"1111111111" not in body  # the refused target is not repeated


@pytest.mark.server
def test_a_long_but_bounded_url_still_reaches_the_app(real_hub):
    got, headers, body = raw(
        real_hub,
        b"GET /health?" + b"a" * 4000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert got == 200 and orjson.loads(body) == {"status": "ok"}
    assert headers["x-request-id"]


# -- memory after large upstream answers -------------------------------------------------------


def test_the_allocator_is_tuned_once_and_the_environment_wins(monkeypatch):
    from hub.core.memory import tune_allocator

    tune_allocator.cache_clear()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert tune_allocator() is False  # glibc read the operator's own setting
    tune_allocator.cache_clear()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert tune_allocator() is (sys.platform == "linux")
    tune_allocator.cache_clear()


def test_the_upstream_memory_measurement_runs(tmp_path):
    """bench/upstream_memory.py measures RSS around large answers; here it only has to run
    (RSS is read by a person, never asserted)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "upstream_memory.py"
    done = subprocess.run(
        [sys.executable, str(script), "--calls", "2", "--mb", "0.5"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    measured = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert measured["statuses"] == [200] and measured["answer_bytes"] > 400_000
    assert {"rss_before_mb", "rss_after_gc_mb", "raised_mb"} <= set(measured)
