"""The HTTP client the core hands each adapter: httpx's API and types, a faster pool beneath.

Adapters call `self.http.get/post/put/delete/request(...)` with httpx's arguments (`params`,
`content`, `json`, `data`, `headers`, `timeout`) and get `httpx.Response` objects back; failures
raise httpx's exceptions, which the core translates in one place. Underneath is one of:

- `Http1Backend` (hub/core/http1.py, the default): the hub's lean HTTP/1.1 keep-alive client.
- `AiohttpBackend` (`HUB_HTTP_TRANSPORT=aiohttp`): one pooled aiohttp session per upstream.
  Measured here (bench/, README) an httpx.AsyncClient costs ~320 us of CPU per call on top of
  the transport (URL merging, cookie jar, auth and redirect machinery, stream wrappers), more
  than the whole rest of the hub's pipeline; its own pool is slower still under concurrency.
  So we keep httpx's *types* as the adapter-facing API and let a lighter client move the bytes.
- `HttpxBackend`: any httpx transport, so tests route upstream calls to respx routers or
  in-process ASGI mocks (`create_app(transports=…)`), and a deployment can opt for
  `HUB_HTTP_TRANSPORT=httpx`.

Forward proxy: `HUB_UPSTREAM_PROXY=http://[user:password@]proxy:port` sends every upstream
call through that proxy; unset, the standard `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` apply
as httpx reads them, and `NO_PROXY` exempts upstreams either way (hosts, domains, addresses,
CIDR networks: hub/core/proxy.py). A proxied upstream gets an `HttpxBackend` over
`httpx.AsyncHTTPTransport(proxy=...)` (absolute-URI requests to an http:// upstream, a CONNECT
tunnel to an https:// one) whatever `HUB_HTTP_TRANSPORT` says; the hub logs at start-up which
adapters go through which proxy, its credentials masked.

Reading an answer, every adapter the same way: `raise_for_status(response, ...)` raises the
hub error an HTTP status means (the one classification, with the per-adapter differences as
parameters), and `response_json(response)` decodes a JSON body within depth and size bounds,
raising UpstreamBadResponse for anything else.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Container, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
import httpx
import orjson

from hub.errors import (
    HubError,
    NotFound,
    ResponseTooLarge,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamUnreadable,
)
from hub.json_limits import json_limit_exceeded

__all__ = [
    "JSON_MAX_DEPTH",
    "JSON_MAX_ITEMS",
    "AiohttpBackend",
    "HttpxBackend",
    "ResponseTooLarge",
    "UpstreamClient",
    "raise_for_status",
    "response_json",
    "status_error",
]

# httpx logs every request's URL at INFO, and upstream URLs carry personal IDs
# (`/citizens/001085012345`): its request log must stay off whatever the root level is.
logging.getLogger("httpx").setLevel(logging.WARNING)

Headers = Mapping[str, str]


class Backend(Protocol):
    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Response: ...

    async def aclose(self) -> None: ...


def read_response(
    status: int, headers: Any, body: bytes, request: httpx.Request, *, max_bytes: int
) -> httpx.Response:
    """An httpx.Response already read, as `httpx.Response(status, content=body)` is, through
    httpx's public API only, so that no httpx release in pyproject.toml's range can break it:
    the body given as a stream, then `read()` (httpx skips encoding the content). Measured with
    timeit (800-byte JSON, four headers, httpx 0.28 and 0.29): 11-12 us, as `content=body` takes;
    writing httpx's private `_content` instead, as this did before, took ~4 us: a saving not
    worth pinning httpx for. tests/test_http1.py checks it behaves as the plain constructor's.

    A compressed body (gzip or deflate; the hub asks for none, a server may still send one)
    is first inflated here, at most `max_bytes` of it, and refused past that: httpx would
    inflate all of it at once, and a few MB of gzip can hold GBs. Other encodings are refused.
    Then httpx decodes it again as it reads (the headers stay as upstream sent them), which
    costs a second inflation only on those rare answers, never more than `max_bytes`."""
    response = httpx.Response(
        status, headers=headers, stream=httpx.ByteStream(body), request=request
    )
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        inflated = _inflate(body, encoding, max_bytes)
        if encoding not in HTTPX_DECODES:  # httpx passes a coding it does not know through
            response = httpx.Response(
                status, headers=response.headers, stream=httpx.ByteStream(inflated), request=request
            )
    response.read()
    return response


#: The content codings among ours that httpx decodes itself (its documented gzip and deflate;
#: "x-gzip" it passes through as it is: tests/test_http1.py checks both stay so).
HTTPX_DECODES = frozenset({"gzip", "deflate"})


def _inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":  # zlib-wrapped, or raw as some servers send it
        inflater = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise UpstreamBadResponse(log_context={"cause": "unsupported content-encoding"})
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise UpstreamBadResponse(log_context={"cause": "corrupt compressed body"}) from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise ResponseTooLarge(len(out))
    return out


class UpstreamClient:
    """The httpx-style client of one upstream (base URL, default timeout, pooled backend)."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout, backend: Backend) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._backend = backend

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The absolute URL of a path (absolute URLs pass through), with query parameters."""
        url = (
            path if "://" in path else self.base_url + ("" if path.startswith("/") else "/") + path
        )
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        return url

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Headers | None = None,
        timeout: float | httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send a request; returns an httpx.Response, raises httpx exceptions. `auth` is an
        httpx.Auth (hub.upstream_auth has the common schemes), whose flow is run as httpx
        runs it: it may change the request, send others first, and resend it."""
        merged = dict(headers or {})
        if json is not None:
            content = orjson.dumps(json)
            merged.setdefault("content-type", "application/json")
        elif data is not None:
            content = urlencode(data, doseq=True)
            merged.setdefault("content-type", "application/x-www-form-urlencoded")
        if isinstance(content, str):
            content = content.encode()
        if timeout is None:
            effective = self.timeout
        elif isinstance(timeout, httpx.Timeout):
            effective = timeout
        else:
            effective = httpx.Timeout(timeout)
        if auth is not None:
            request = httpx.Request(method, self.url(path, params), content=content, headers=merged)
            return await self._send_with_auth(request, auth, effective)
        return await self._backend.send(
            method, self.url(path, params), content=content, headers=merged, timeout=effective
        )

    async def _send_with_auth(
        self, request: httpx.Request, auth: httpx.Auth, timeout: httpx.Timeout
    ) -> httpx.Response:
        # httpx.AsyncClient._send_handling_auth's loop, over our backend: the flow yields
        # each request to send and is given each answer (already read) until it stops.
        flow = auth.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                headers = {
                    name: value
                    for name, value in outgoing.headers.items()
                    if name.lower() not in ("host", "content-length")
                }
                response = await self._backend.send(
                    outgoing.method,
                    str(outgoing.url),
                    content=outgoing.content or None,
                    headers=headers,
                    timeout=timeout,
                )
                try:
                    outgoing = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def aclose(self) -> None:
        await self._backend.aclose()


class HttpxBackend:
    """Any httpx transport (respx and ASGI in tests; httpx's own pool on request), with the
    same response size cap as the aiohttp backend."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, *, max_response_bytes: int = 4 << 20
    ) -> None:
        self._client = httpx.AsyncClient(transport=transport)
        self._max_response_bytes = max_response_bytes

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        request = self._client.build_request(
            method, url, content=content, headers=headers, timeout=timeout
        )
        response = await self._client.send(request, stream=True)
        if response.is_stream_consumed:  # respx hands back responses it has already read
            if len(response.content) > self._max_response_bytes:
                raise ResponseTooLarge(len(response.content))
            return response
        try:
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > self._max_response_bytes:
                    raise ResponseTooLarge(len(body))
        finally:
            await response.aclose()
        return read_response(
            response.status_code,
            response.headers,
            bytes(body),
            request,
            max_bytes=self._max_response_bytes,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpBackend:
    """One aiohttp session (keep-alive pool) per upstream; errors become httpx's."""

    def __init__(
        self, *, max_connections: int, keepalive_s: float = 30, max_response_bytes: int = 4 << 20
    ) -> None:
        self._max_connections, self._keepalive_s = max_connections, keepalive_s
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, httpx.URL] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made inside the running loop, on first use
            # auto_decompress off: read_response inflates a compressed body, within the cap.
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=self._keepalive_s, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                # No Accept-Encoding: answers come uncompressed (one that is not is inflated
                # by read_response, never past the size cap).
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                # No cookie jar: one agency's call must never carry state (a session cookie
                # upstream set) into another's, and skipping the jar saves work per answer.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        session = self._get_session()
        request = httpx.Request(method, self._parsed(url))
        limits = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )
        try:
            async with session.request(
                method, url, data=content, headers=headers, timeout=limits, allow_redirects=False
            ) as response:
                body = await self._read_capped(response)
                return read_response(
                    response.status,
                    response.raw_headers,
                    body,
                    request,
                    max_bytes=self._max_response_bytes,
                )
        except aiohttp.ConnectionTimeoutError as exc:  # before the read-timeout clause
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(str(exc), request=request) from exc

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, refused as soon as it passes the cap (nothing huge is held in memory)."""
        declared = response.content_length
        if declared is not None and declared > self._max_response_bytes:
            raise ResponseTooLarge(declared)
        body = bytearray()
        async for chunk in response.content.iter_chunked(65_536):
            body += chunk
            if len(body) > self._max_response_bytes:
                raise ResponseTooLarge(len(body))
        return bytes(body)

    def _parsed(self, url: str) -> httpx.URL:
        # httpx.URL parsing is most of the cost of an httpx.Request; a SOAP upstream is one
        # endpoint URL, so a small cache saves it on nearly every call.
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 1024:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


# -- reading upstream's answers --------------------------------------------------------------

#: How deep, and how many elements, a JSON answer `response_json` reads by default. Canonical
#: answers are a few levels deep; the byte cap (HUB_UPSTREAM_MAX_RESPONSE_BYTES) bounds the
#: size first, and the element bound keeps the walk short whatever those bytes hold.
JSON_MAX_DEPTH = 64
JSON_MAX_ITEMS = 1_000_000


def status_error(status: int, *, has_body: bool) -> type[HubError] | None:
    """The hub error an upstream HTTP status means by itself (None: 200 OK), as
    `raise_for_status` applies it with no per-adapter options."""
    if status == 200:
        return None
    if status == 503 or (status >= 500 and not has_body):
        return UpstreamUnavailable
    if status >= 500:
        return UpstreamError
    if 400 <= status < 500:
        return UpstreamRejected
    return UpstreamBadResponse


def raise_for_status(
    response: httpx.Response,
    *,
    ok: Container[int] = (200,),
    not_found: Container[int] = (),
    replies: Container[int] = (),
    log_context: Mapping[str, Any] | None = None,
) -> None:
    """Raise the hub error upstream's HTTP status means, or return when the answer is one
    the adapter reads. The one classification every adapter shares; retries and the
    circuit breaker follow the class raised, so an adapter makes no status checks of its own.

    | status                               | raises                                         |
    |--------------------------------------|------------------------------------------------|
    | in `ok` (default 200)                | nothing: read the answer                       |
    | in `not_found`                       | NotFound (404): upstream has no such subject   |
    | 503, or any 5xx with an empty body   | UpstreamUnavailable (503, retried)             |
    | in `replies`, with a body            | nothing: the adapter reads upstream's own error |
    | other 5xx                            | UpstreamError (502, retried)                   |
    | 4xx                                  | UpstreamRejected (502, not retried)            |
    | anything else (1xx, 3xx, other 2xx)  | UpstreamBadResponse (502, not retried)         |

    `replies` are the statuses on which upstream's protocol sends an error message of its
    own that says more than the status (a SOAP fault on a 500, a JSON error code on a 4xx):
    the adapter reads it, and when the body turns out not to be one (an error page), calls
    `raise_for_status(response)` again without `replies` to let the status decide. The
    error's `log_context` has `http_status` and whatever `log_context` adds (codes only:
    upstream's text may quote personal data, and is never passed on)."""
    status = response.status_code
    if status in ok:
        return
    context = {"http_status": status, **(log_context or {})}
    if status in not_found:
        raise NotFound(log_context=context)
    has_body = bool(response.content)
    error = status_error(status, has_body=has_body)
    if error is UpstreamUnavailable or not (has_body and status in replies):
        raise (error or UpstreamBadResponse)(log_context=context)


def response_json(
    response: httpx.Response,
    *,
    expect: type | tuple[type, ...] | None = dict,
    max_depth: int = JSON_MAX_DEPTH,
    max_items: int = JSON_MAX_ITEMS,
) -> Any:
    """Upstream's answer decoded from JSON, within bounds: UpstreamUnreadable (an
    UpstreamBadResponse: 502, not retried, counted by the circuit) when it is not JSON
    (or not UTF-8), is nested deeper than `max_depth` or holds more than `max_items`
    elements (`hub.json_limits`, as the hub bounds its callers' JSON), or its top level is
    not of the `expect` type (default an object; None: any). Never a ValueError or a
    RecursionError: a hostile answer is upstream's fault, not the adapter's. The status is
    not looked at: call `raise_for_status` first."""
    try:
        value = orjson.loads(response.content)  # its own depth limit: no recursion error
    except orjson.JSONDecodeError:
        raise UpstreamUnreadable(log_context={"cause": "not JSON"}) from None
    # Short cut for most answers: fewer brackets than levels, fewer bytes than elements.
    content = response.content
    if content.count(b"[") + content.count(b"{") > max_depth or len(content) > max_items:
        problem = json_limit_exceeded(value, max_depth, max_items)
        if problem is not None:
            raise UpstreamUnreadable(log_context={"cause": f"JSON {problem}"})
    if expect is not None and not isinstance(value, expect):
        raise UpstreamUnreadable(log_context={"cause": f"JSON is a {type(value).__name__}"})
    return value
