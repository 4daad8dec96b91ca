"""A lean HTTP/1.1 client for upstream calls: keep-alive pool, llhttp parsing, httpx's types.

Why not a library: the hub's upstream calls are small request/response exchanges with a
handful of known national systems, and the client's CPU per call bounds the hub's
throughput (one Python process, bench/ and README). Measured here (README, Benchmark): a
bare proxy spends 135-175 us more CPU per call with aiohttp as its client than with this one
(aiohttp's request and response objects, tracing hooks, payload writers, stream readers,
timers per read), and httpx's own pool is slower still. This client keeps to what those
exchanges need
and leaves the protocol work to C: httptools (llhttp, Node.js's parser, which uvicorn
already brings) parses the answer, including chunked bodies, and asyncio's transports move
the bytes. `HUB_HTTP_TRANSPORT=aiohttp` or `httpx` selects the libraries instead.

What it does: HTTP/1.1 over TCP or TLS (the default SSL context: certificates verified),
one keep-alive pool per host with a connection limit, idle connections dropped after
`keepalive_s`, request headers checked for CR/LF, bodies with Content-Length, chunked or
read-until-close, a response size cap enforced while reading, interim 1xx answers skipped,
connect and read timeouts (a read timeout is the longest silence between two pieces of the
answer, as aiohttp's `sock_read`). Errors are httpx's (ConnectError, ConnectTimeout,
ReadTimeout, PoolTimeout, RemoteProtocolError, LocalProtocolError), so the core's error
translation sees the same exceptions whichever transport is used. What it does not do:
redirects, cookies, proxies, compression (no Accept-Encoding is sent), HTTP/2, Expect:
100-continue. Adapters that need those use HUB_HTTP_TRANSPORT=httpx; an upstream behind a
forward proxy (HUB_UPSTREAM_PROXY, HTTP(S)_PROXY) gets httpx's pool without asking
(hub/core/registry.py, hub/core/proxy.py).
"""

from __future__ import annotations

import asyncio
import re
import select
import ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools
import httpx

from hub.upstream import ResponseTooLarge, read_response

__all__ = ["Http1Backend"]

#: The most an upstream's response headers may take, and how many there may be (aiohttp caps a
#: header line at 8 KB, h11 the headers at ~100 KB): a hostile or broken upstream must not
#: grow the process's memory without end.
MAX_HEAD_BYTES = 64 << 10
MAX_HEADERS = 100

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but tab
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})

Headers = Mapping[str, str]
RawHeaders = list[tuple[bytes, bytes]]


class _Exchange:
    """One request's answer as it arrives (status, headers, body) and its waiter."""

    __slots__ = ("body", "done", "headers", "length", "status", "until_close")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status = 0
        self.headers: RawHeaders = []
        self.body = bytearray()
        self.length: int | None = None  # declared Content-Length
        self.until_close = False  # neither length nor chunked: the body ends at EOF
        self.done: asyncio.Future[bool] = loop.create_future()  # result: keep-alive


class _Connection(asyncio.Protocol):
    """One keep-alive connection; llhttp calls the on_* methods while data is fed to it."""

    def __init__(self, max_body: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.last_data = 0.0
        self._max_body = max_body
        self._exchange: _Exchange | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = False
        self._chunked = False
        self._head_bytes = 0  # bytes fed while the answer's headers are incomplete
        self._headers = 0

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        if self._exchange is None:  # nothing was asked: a server must not speak now
            self.close()
            return
        exchange = self._exchange
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            # httptools raises what a callback raised (on_headers_complete's or on_body's
            # ResponseTooLarge) as an HttpParserCallbackError with it as the __context__.
            cause = exc.__context__
            if isinstance(cause, ResponseTooLarge | httpx.RemoteProtocolError):
                self._fail(cause)
            else:
                self._fail(httpx.RemoteProtocolError("malformed HTTP response from upstream"))
            return
        if exchange is self._exchange and exchange.status == 0:  # headers still incomplete
            # httptools holds an unfinished header in memory: bound what it may grow to.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(httpx.RemoteProtocolError("upstream's response headers are too large"))

    def eof_received(self) -> bool | None:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self._exchange
        if exchange is None or exchange.done.done():
            return
        if exchange.status and exchange.until_close and exc is None:  # the body ends at EOF
            exchange.done.set_result(False)
        else:
            self._exchange = None
            exchange.done.set_exception(
                httpx.RemoteProtocolError("upstream closed the connection before answering")
            )

    # -- llhttp callbacks ---------------------------------------------------------------

    # An exchange already settled (a HEAD answer, a failure) is None here: the connection is
    # closing and what else arrives is dropped.

    def on_message_begin(self) -> None:
        if self._exchange is None:  # an answer nobody asked for: this connection is done
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self._exchange
        if exchange is None or exchange.status:  # a chunked body's trailer: not a header
            return
        self._headers += 1
        if self._headers > MAX_HEADERS:
            raise httpx.RemoteProtocolError("upstream's response has too many headers")
        exchange.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" and value.strip().isdigit():
            exchange.length = int(value)
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        exchange = self._exchange
        if exchange is None:
            return
        exchange.status = self._parser.get_status_code()
        if exchange.status < 200:  # an interim answer (100 Continue): the real one follows
            return
        if self._head_only:  # no body whatever the headers say; the connection closes
            self._exchange = None
            exchange.done.set_result(False)
            return
        if exchange.status in (204, 304):  # no body; a 304's Content-Length is the resource's
            return
        if exchange.length is not None and exchange.length > self._max_body:
            raise ResponseTooLarge(exchange.length)
        exchange.until_close = exchange.length is None and not self._chunked

    def on_body(self, body: bytes) -> None:
        exchange = self._exchange
        if exchange is None:
            return
        exchange.body += body
        if len(exchange.body) > self._max_body:
            raise ResponseTooLarge(len(exchange.body))

    def on_message_complete(self) -> None:
        exchange = self._exchange
        if exchange is None:
            return
        if exchange.status < 200:  # the interim answer is over; keep reading
            exchange.headers, exchange.status, exchange.length = [], 0, None
            self._chunked, self._head_bytes, self._headers = False, 0, 0
            return
        self._exchange = None
        if not exchange.done.done():
            # Reused only if the request went out whole: a server may answer early (a 401,
            # a 413) while part of the body still waits to be written, and the next request
            # would follow that rest.
            assert self.transport is not None
            reuse = self._parser.should_keep_alive() and not self._head_only
            exchange.done.set_result(reuse and not self.transport.get_write_buffer_size())

    # -- use ----------------------------------------------------------------------------

    def send(self, data: bytes, exchange: _Exchange, *, head_only: bool) -> None:
        assert self.transport is not None
        self._exchange, self._head_only, self._chunked = exchange, head_only, False
        self._head_bytes = self._headers = 0
        self.last_data = time.monotonic()
        self.transport.write(data)

    def _fail(self, exc: Exception) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None and not exchange.done.done():
            exchange.done.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _readable(transport: asyncio.Transport) -> bool:
    """Whether an idle connection's socket holds something: the server's FIN (it closed the
    connection) or bytes it had no reason to send. The loop may not have handed these to the
    protocol yet, which would otherwise get the next request written to a dead connection."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()  # not select.select: it refuses descriptors above 1023
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Pool:
    """Keep-alive connections to one origin, at most `limit` open at once."""

    def __init__(
        self, host: str, port: int, tls: ssl.SSLContext | None, limit: int, keepalive_s: float
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.keepalive_s = keepalive_s
        self.idle: deque[_Connection] = deque()
        self.closed = False
        self.slots = asyncio.Semaphore(limit)

    async def acquire(
        self, timeout: httpx.Timeout, max_body: int, request: httpx.Request
    ) -> _Connection:
        if not self.slots.locked():
            await self.slots.acquire()  # a free slot: taken at once, no timer to set up
        else:
            try:
                async with asyncio.timeout(timeout.pool):
                    await self.slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free upstream connection", request=request) from None
        try:
            # The deque is in release order: the oldest first. Those idle too long are closed
            # here, not only when reached from the recent end, which steady traffic never
            # passes: after a burst they would stay open until upstream closed them.
            expired = time.monotonic() - self.keepalive_s
            while self.idle and self.idle[0].idle_since < expired:
                self.idle.popleft().close()
            while self.idle:
                conn = self.idle.pop()  # the most recently used: least likely to be stale
                assert conn.transport is not None
                if conn.closed or conn.transport.is_closing():
                    continue
                if _readable(conn.transport):
                    conn.close()
                    continue
                return conn
            return await self._connect(timeout, max_body, request)
        except BaseException:
            self.slots.release()
            raise

    async def _connect(
        self, timeout: httpx.Timeout, max_body: int, request: httpx.Request
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout.connect):
                transport, conn = await loop.create_connection(
                    lambda: _Connection(max_body),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(type(exc).__name__, request=request) from exc
        conn.transport = cast(asyncio.Transport, transport)  # before connection_made (uvloop)
        return conn

    def release(self, conn: _Connection, *, reuse: bool) -> None:
        if reuse and not conn.closed and not self.closed:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        else:
            conn.close()
        self.slots.release()

    def close(self) -> None:
        self.closed = True  # a request still in flight closes its connection when done
        while self.idle:
            self.idle.pop().close()


class Http1Backend:
    """The upstream backend on `_Connection`s: see the module docstring."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_s: float = 30,
        max_response_bytes: int = 4 << 20,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections, self._keepalive_s = max_connections, keepalive_s
        self._max_body = max_response_bytes
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._targets: dict[str, tuple[_Pool, bytes, httpx.URL]] = {}

    def _target(self, url: str) -> tuple[_Pool, bytes, httpx.URL]:
        """The pool, request-target and Host header line of a URL (cached per URL: a SOAP
        upstream is one endpoint URL)."""
        found = self._targets.get(url)
        if found is not None:
            return found
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"cannot send to {parts.scheme or 'a relative'} URL")
        if parts.username is not None or parts.password is not None:
            # httpx and aiohttp would send them as Basic auth: say so rather than drop them.
            raise httpx.UnsupportedProtocol("credentials in the URL: send an Authorization header")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        key = (parts.scheme, parts.hostname, port)
        pool = self._pools.get(key)
        if pool is None:
            context = (self._ssl or ssl.create_default_context()) if tls else None
            pool = self._pools[key] = _Pool(
                parts.hostname, port, context, self._max_connections, self._keepalive_s
            )
        # httpx's forms, as the other backends send them: the path and query percent-encoded
        # (a space or a non-ASCII character in a path would break the request line), the host
        # IDNA-encoded, never user:password in the Host header.
        parsed = httpx.URL(url)
        line = b" %s HTTP/1.1\r\nhost: %s\r\n" % (parsed.raw_path, parsed.netloc)
        if len(self._targets) >= 1024:
            self._targets.clear()
        found = self._targets[url] = (pool, line, parsed)
        return found

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        pool, line, parsed = self._target(url)
        request = httpx.Request(method, parsed)
        head = [method.encode("ascii"), line]
        for name, value in headers.items():
            # A token for a name, no control character in a value, and never the framing
            # the client sets itself (a second Host or Content-Length invites smuggling).
            if not _TOKEN.fullmatch(name) or _CONTROL.search(value) or name.lower() in _FRAMING:
                raise httpx.LocalProtocolError(f"invalid header {name!r}", request=request)
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if content is not None or method in ("POST", "PUT", "PATCH"):
            head.append(b"content-length: %d\r\n" % len(content or b""))
        head.append(b"\r\n")
        if content:
            head.append(content)
        conn = await pool.acquire(timeout, self._max_body, request)
        reuse = False
        try:
            exchange = _Exchange(asyncio.get_running_loop())
            conn.send(b"".join(head), exchange, head_only=method == "HEAD")
            reuse = await self._wait(conn, exchange, timeout.read, request)
        except asyncio.CancelledError:
            conn.close()  # an answer may still come: this connection cannot be reused
            raise
        finally:
            pool.release(conn, reuse=reuse)
        return read_response(
            exchange.status,
            exchange.headers,
            bytes(exchange.body),
            request,
            max_bytes=self._max_body,
        )

    @staticmethod
    async def _wait(
        conn: _Connection,
        exchange: _Exchange,
        read_s: float | None,
        request: httpx.Request,
    ) -> bool:
        """Wait for the answer; a read timeout is `read_s` without any byte arriving."""
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal timer
            if exchange.done.done():
                return
            silent = time.monotonic() - conn.last_data
            if read_s is not None and silent >= read_s:
                exchange.done.set_exception(
                    httpx.ReadTimeout("upstream read timed out", request=request)
                )
                conn.close()
            else:
                timer = loop.call_later((read_s or 0) - silent, check)

        if read_s is not None:
            timer = loop.call_later(read_s, check)
        try:
            return await exchange.done
        except httpx.HTTPError as exc:
            try:
                exc.request  # noqa: B018 - httpx's public way to ask: RuntimeError when unset
            except RuntimeError:
                exc.request = request
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._targets.clear()
