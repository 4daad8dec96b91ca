"""hub.upstream_auth and hub.upstream_paging: the authenticators (httpx.Auth flows, through
the hub's upstream client and through plain httpx) and the paginators."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import httpx
import pytest

from hub.errors import UpstreamBadResponse, UpstreamRejected
from hub.upstream import HttpxBackend, UpstreamClient
from hub.upstream_auth import (
    ApiKey,
    BasicAuth,
    GatewayToken,
    OAuth2ClientCredentials,
    SharedSecretSignature,
)
from hub.upstream_paging import CursorPage, Page, cursor_pages, numbered_pages, offset_pages

BASE = "http://upstream.test"


def client_of(handler) -> UpstreamClient:
    transport = httpx.MockTransport(handler)
    return UpstreamClient(BASE, timeout=httpx.Timeout(5.0), backend=HttpxBackend(transport))


async def test_api_key_in_a_header_or_the_query():
    seen = []
    http = client_of(lambda request: seen.append(request) or httpx.Response(200))
    await http.get("/a", params={"x": "1"}, auth=ApiKey("X-API-Key", "k1"))
    await http.get("/a", params={"x": "1"}, auth=ApiKey(query="api_key", key="k2"))
    assert seen[0].headers["x-api-key"] == "k1"
    assert dict(seen[1].url.params) == {"x": "1", "api_key": "k2"}
    assert "k1" not in repr(ApiKey("X-API-Key", "k1"))
    with pytest.raises(ValueError):
        ApiKey("X", "k", query="q")


async def test_basic_is_httpx_own():
    seen = []
    http = client_of(lambda request: seen.append(request) or httpx.Response(200))
    await http.get("/a", auth=BasicAuth("user", "pa:ss"))
    assert base64.b64decode(seen[0].headers["authorization"].split()[1]) == b"user:pa:ss"


async def test_requests_signed_with_a_shared_secret():
    seen = []
    http = client_of(lambda request: seen.append(request) or httpx.Response(200))
    signer = SharedSecretSignature("s3cret", key_id="hub", clock=lambda: 1_700_000_000)
    await http.post("/orders?x=1", json={"amount": 5}, auth=signer)
    sent = seen[0]
    body = sent.content
    message = f"POST\n/orders?x=1\n1700000000\n{hashlib.sha256(body).hexdigest()}".encode()
    expected = hmac.new(b"s3cret", message, hashlib.sha256).hexdigest()
    assert sent.headers["x-signature"] == expected and sent.headers["x-key-id"] == "hub"
    assert sent.headers["x-timestamp"] == "1700000000" and json.loads(body) == {"amount": 5}


class Upstream:
    """A token endpoint and an API: tokens t1, t2, …; the API refuses those in `refused`."""

    def __init__(self, lifetime: float = 300) -> None:
        self.issued = 0
        self.lifetime = lifetime
        self.refused: set[str] = set()
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.token_requests.append(request)
            await asyncio.sleep(0.01)
            self.issued += 1
            body = {"access_token": f"t{self.issued}", "expires_in": self.lifetime}
            return httpx.Response(200, json={**body, "token_type": "Bearer"})
        self.api_requests.append(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") in self.refused:
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": True})


async def test_oauth2_client_credentials_cached_shared_and_renewed_on_401():
    upstream = Upstream()
    http = client_of(upstream)
    auth = OAuth2ClientCredentials("/token", "hub id", "s:cret", scope="read")
    answers = await asyncio.gather(*(http.get("/api", auth=auth) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert len(upstream.token_requests) == 1  # one fetch shared by every waiting call
    sent = upstream.token_requests[0]
    assert parse_qs(sent.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["read"],
    }
    assert base64.b64decode(sent.headers["authorization"].split()[1]) == b"hub+id:s%3Acret"
    upstream.refused.add("t1")  # revoked early: one fresh token, one resend
    assert (await http.get("/api", auth=auth)).status_code == 200
    assert len(upstream.token_requests) == 2
    assert upstream.api_requests[-1].headers["authorization"] == "Bearer t2"
    upstream.refused.add("t2")
    upstream.refused.add("t3")  # refused again: the 401 goes back to the adapter
    assert (await http.get("/api", auth=auth)).status_code == 401
    assert "s:cret" not in repr(auth)


async def test_a_token_due_for_renewal_is_fetched_again():
    now = [0.0]
    upstream = Upstream(lifetime=100)
    http = client_of(upstream)
    auth = OAuth2ClientCredentials("/token", "a", "b", renew_before_s=30, clock=lambda: now[0])
    await http.get("/api", auth=auth)
    now[0] = 69.0
    await http.get("/api", auth=auth)
    assert len(upstream.token_requests) == 1
    now[0] = 71.0  # 30 s before expiry
    await http.get("/api", auth=auth)
    assert len(upstream.token_requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"error": "invalid_client"}, UpstreamRejected),
        (200, {"access_token": "", "expires_in": 60}, UpstreamBadResponse),
        (200, {"access_token": "t", "expires_in": "soon"}, UpstreamBadResponse),
        (200, {"access_token": "t", "expires_in": 60, "token_type": "mac"}, UpstreamBadResponse),
        (200, ["t"], UpstreamBadResponse),
    ],
)
async def test_a_token_endpoint_refusing_or_off_contract(status, body, error):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(status, json=body)

    with pytest.raises(error) as raised:
        await client_of(handler).get("/api", auth=OAuth2ClientCredentials("/token", "a", "b"))
    assert calls == ["/token"]
    if status == 401:
        assert raised.value.log_context["oauth_error"] == "invalid_client"


async def test_gateway_token_sends_its_credential_everywhere_and_works_with_plain_httpx():
    upstream = Upstream()
    auth = GatewayToken("/token", credential_header="lgspaccesstoken", credential={"AppName": "x"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream), base_url=BASE) as http:
        assert (await http.get("/api", auth=auth)).status_code == 200
    (token,) = upstream.token_requests
    (api,) = upstream.api_requests
    assert json.loads(base64.b64decode(token.headers["lgspaccesstoken"])) == {"AppName": "x"}
    assert api.headers["lgspaccesstoken"] == token.headers["lgspaccesstoken"]
    assert api.headers["authorization"] == "Bearer t1"
    renewed = await auth.renew(client_of(upstream))  # a health probe's fresh token
    assert renewed == "t2"


async def test_numbered_offset_and_cursor_pages():
    rows = list(range(23))

    async def numbered(number: int) -> Page:
        return Page(rows[(number - 1) * 10 : number * 10], total=len(rows))

    assert [i async for i in numbered_pages(numbered, size=10)] == rows

    async def by_offset(offset: int, limit: int) -> Page:
        return Page(rows[offset : offset + limit])

    assert [i async for i in offset_pages(by_offset, limit=5)] == rows

    async def by_cursor(cursor: str | None) -> CursorPage:
        start = int(cursor or 0)
        nxt = str(start + 7) if start + 7 < len(rows) else None
        return CursorPage(rows[start : start + 7], nxt)

    assert [i async for i in cursor_pages(by_cursor)] == rows
    with pytest.raises(UpstreamBadResponse):
        _ = [i async for i in numbered_pages(numbered, size=10, max_items=15)]

    async def looping(cursor: str | None) -> CursorPage:
        return CursorPage([1], "same")

    with pytest.raises(UpstreamBadResponse):
        _ = [i async for i in cursor_pages(looping)]
