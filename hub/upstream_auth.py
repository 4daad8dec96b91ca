"""Authenticating to an upstream: the schemes national and provincial systems use, ready made.

Each is an `httpx.Auth` (httpx's own request-flow interface), given per request to the
adapter's client, `self.http.get(path, auth=self._auth)`, which runs its flow: the auth may
add headers, sign the request, or first send a token request of its own and resend once
after a 401. They work with a plain `httpx.AsyncClient` too.

- `ApiKey("X-API-Key", key)` or `ApiKey(query="api_key", key=key)`: a key in a header or in
  the query string.
- `httpx.BasicAuth(user, password)`: HTTP Basic, httpx's own (re-exported as `BasicAuth`).
- `OAuth2ClientCredentials(token_url, client_id, client_secret)`: RFC 6749 §4.4, the client
  authenticated with HTTP Basic (§2.3.1); the token is cached until `renew_before_s` before
  it expires (never sooner than half-way through its life), one fetch is shared by every
  waiting call, and a 401 drops it and resends the request once with a fresh one.
- `GatewayToken(token_url, credential_header=..., credential=...)`: the provincial LGSP
  gateway's exchange: a static credential header on every request and a bearer token from
  its token endpoint (business registration's), cached and renewed the same way.
- `SharedSecretSignature(secret)`: HMAC-SHA256 request signing with a shared secret.

`TokenCache` is the cache the token schemes share, for an adapter with a flow of its own.
Errors are the hub's: a token endpoint that refuses is the HubError its status means (with
RFC 6749's `error` code in the log context, never the body); an answer off contract is
UpstreamBadResponse. Secrets never appear in reprs, logs or errors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import httpx

from hub.errors import UpstreamBadResponse
from hub.upstream import raise_for_status, response_json

if TYPE_CHECKING:
    from hub.upstream import UpstreamClient

__all__ = [
    "ApiKey",
    "BasicAuth",
    "GatewayToken",
    "OAuth2ClientCredentials",
    "SharedSecretSignature",
    "TokenCache",
]

#: HTTP Basic: httpx's own.
BasicAuth = httpx.BasicAuth


class ApiKey(httpx.Auth):
    """A static API key, in a header (`ApiKey("X-API-Key", key)`) or in the query string
    (`ApiKey(query="api_key", key=key)`)."""

    def __init__(self, header: str | None = None, key: str = "", *, query: str | None = None):
        if (header is None) == (query is None):
            raise ValueError("ApiKey takes a header name or a query parameter name")
        if not key:
            raise ValueError("ApiKey needs a key")
        self._header, self._query, self._key = header, query, key

    def __repr__(self) -> str:
        return f"ApiKey({self._header or 'query=' + str(self._query)!r}, key=***)"

    def auth_flow(self, request: httpx.Request) -> Any:
        if self._header is not None:
            request.headers[self._header] = self._key
        else:
            request.url = request.url.copy_merge_params({str(self._query): self._key})
        yield request


class TokenCache:
    """One bearer token, fetched on first use and again shortly before it expires.

    `fetch` (for `get` and `renew`) returns (token, lifetime in seconds). Concurrent callers
    wait for one fetch (`lock`); `drop(token)` forgets a token upstream refused, unless it
    has already been replaced. An auth flow that sends its own token request uses `current`,
    `lock` and `store` instead of `fetch`.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]] | None = None,
        *,
        renew_before_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._renew_before_s = renew_before_s
        self._clock = clock
        self.lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def current(self) -> str | None:
        """The cached token while it is not due for renewal, else None."""
        return self._token if self._clock() < self._renew_at else None

    def store(self, token: str, lifetime: float, started: float | None = None) -> str:
        """Keep `token`, valid `lifetime` seconds from `started` (default: now)."""
        started = self._clock() if started is None else started
        self._token = token
        # Early by the margin, but never by more than half the lifetime of a short token.
        self._renew_at = started + lifetime - min(self._renew_before_s, lifetime / 2)
        return token

    def now(self) -> float:
        return self._clock()

    async def get(self) -> str:
        """The cached token, or a new one when there is none or it is due for renewal."""
        token = self.current()
        if token is not None:
            return token
        async with self.lock:
            # Another caller may have fetched one while this one waited for the lock.
            return self.current() or await self._renew()

    async def renew(self) -> str:
        """Fetch a new token now, whatever the cached one's state."""
        async with self.lock:
            return await self._renew()

    async def _renew(self) -> str:
        if self._fetch is None:
            raise RuntimeError("this TokenCache has no fetch function")
        started = self._clock()
        token, lifetime = await self._fetch()
        return self.store(token, lifetime, started)

    def drop(self, token: str) -> None:
        """Forget `token` (upstream refused it), unless a newer one has replaced it."""
        if self._token == token:
            self._token = None


def _oauth_error(response: httpx.Response) -> str | None:
    """RFC 6749's `error` code of a refused token request, when the body carries one."""
    try:
        error = response_json(response).get("error")
    except UpstreamBadResponse:
        return None
    return error if isinstance(error, str) and len(error) <= 64 else None


class _BearerToken(httpx.Auth):
    """A bearer token from a token endpoint, cached; a 401 drops it and resends once."""

    def __init__(self, token_url: str, *, renew_before_s: float, clock: Callable[[], float]):
        self.token_url = token_url
        self.tokens = TokenCache(renew_before_s=renew_before_s, clock=clock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.token_url!r}, secrets=***)"

    # what a scheme says: its token request (`token_url` resolved against the URL of the
    # request it is for: a path is the upstream's own), and the headers of every request
    def token_request(self, base: httpx.URL) -> httpx.Request:
        raise NotImplementedError

    def headers(self) -> Mapping[str, str]:
        return {}

    def accept(self, response: httpx.Response, started: float) -> str:
        """Keep the token of a token endpoint's answer (raises the hub's errors)."""
        if response.status_code != 200:
            context = {"cause": "token", "oauth_error": _oauth_error(response)}
            raise_for_status(response, log_context=context)
        body = response_json(response)
        token, token_type = body.get("access_token"), body.get("token_type", "bearer")
        try:
            lifetime = float(body.get("expires_in", ""))  # some gateways send it as a string
        except (TypeError, ValueError):
            lifetime = -1.0
        if (
            not isinstance(token, str)
            or not token
            or not (lifetime >= 0 and math.isfinite(lifetime))
        ):
            raise UpstreamBadResponse(log_context={"cause": "token answer off contract"})
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise UpstreamBadResponse(log_context={"cause": "token_type is not Bearer"})
        return self.tokens.store(token, lifetime, started)

    async def renew(self, http: UpstreamClient) -> str:
        """Fetch a fresh token now through `http` (a health probe: the endpoint answers and
        takes our credentials)."""
        request = self.token_request(httpx.URL(http.url("/")))
        async with self.tokens.lock:
            started = self.tokens.now()
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() not in ("host", "content-length")
            }
            response = await http.request(
                request.method, str(request.url), content=request.content, headers=headers
            )
            return self.accept(response, started)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        for name, value in self.headers().items():
            request.headers[name] = value
        token = self.tokens.current()
        if token is None:
            async with self.tokens.lock:  # one fetch for every waiting call
                token = self.tokens.current()
                if token is None:
                    started = self.tokens.now()
                    token = self.accept((yield self.token_request(request.url)), started)
        request.headers["authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # Expired or revoked early: one fresh token (unless another call renewed it), one
        # resend; a second 401 goes back to the adapter, which reads it as a refusal.
        self.tokens.drop(token)
        async with self.tokens.lock:
            fresh = self.tokens.current()
            if fresh is None:
                started = self.tokens.now()
                fresh = self.accept((yield self.token_request(request.url)), started)
        request.headers["authorization"] = f"Bearer {fresh}"
        yield request


class OAuth2ClientCredentials(_BearerToken):
    """OAuth2 client credentials (RFC 6749 §4.4), the client authenticated with HTTP Basic,
    its id and secret form-urlencoded first (§2.3.1); `scope` when upstream wants one."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        renew_before_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url, renew_before_s=renew_before_s, clock=clock)
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
        self._client_auth = "Basic " + base64.b64encode(pair.encode()).decode()
        self._scope = scope

    def token_request(self, base: httpx.URL) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        return httpx.Request(
            "POST",
            base.join(self.token_url),
            data=form,
            headers={"authorization": self._client_auth, "accept": "application/json"},
        )


class GatewayToken(_BearerToken):
    """The LGSP gateway's token exchange: `credential` (a mapping, sent base64-encoded JSON,
    or a ready string) in `credential_header` on every request and on the token request
    (`grant_type=client_credentials`), and the bearer token the gateway answers."""

    def __init__(
        self,
        token_url: str,
        *,
        credential_header: str,
        credential: Mapping[str, str] | str,
        renew_before_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url, renew_before_s=renew_before_s, clock=clock)
        if not isinstance(credential, str):
            import json

            credential = base64.b64encode(json.dumps(dict(credential)).encode()).decode()
        self._credential_header, self._credential = credential_header, credential

    def headers(self) -> Mapping[str, str]:
        return {self._credential_header: self._credential}

    def token_request(self, base: httpx.URL) -> httpx.Request:
        return httpx.Request(
            "POST",
            base.join(self.token_url),
            data={"grant_type": "client_credentials"},
            headers={**self.headers(), "accept": "application/json"},
        )


class SharedSecretSignature(httpx.Auth):
    """Signs each request with a shared secret: `signature_header` carries the hex
    HMAC-SHA256 of `METHOD \\n PATH?QUERY \\n TIMESTAMP \\n SHA256(BODY)`, `timestamp_header`
    the Unix time in seconds, and `key_header` (optional) which key signed it."""

    requires_request_body = True

    def __init__(
        self,
        secret: str | bytes,
        *,
        key_id: str | None = None,
        signature_header: str = "X-Signature",
        timestamp_header: str = "X-Timestamp",
        key_header: str = "X-Key-Id",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._key_id, self._clock = key_id, clock
        self._headers = (signature_header, timestamp_header, key_header)

    def __repr__(self) -> str:
        return f"SharedSecretSignature(key_id={self._key_id!r}, secret=***)"

    def signature(self, method: str, target: str, timestamp: str, body: bytes) -> str:
        """The signature of one request (the upstream computes the same to check it)."""
        digest = hashlib.sha256(body).hexdigest()
        message = f"{method.upper()}\n{target}\n{timestamp}\n{digest}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def auth_flow(self, request: httpx.Request) -> Any:
        signature_header, timestamp_header, key_header = self._headers
        timestamp = str(int(self._clock()))
        target = request.url.raw_path.decode("ascii")
        request.headers[timestamp_header] = timestamp
        request.headers[signature_header] = self.signature(
            request.method, target, timestamp, request.content
        )
        if self._key_id is not None:
            request.headers[key_header] = self._key_id
        yield request
