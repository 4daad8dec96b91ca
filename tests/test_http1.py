"""hub/core/http1.py's Http1Backend against real servers on loopback that answer hand-written raw
HTTP, so each edge case of the protocol is exactly what the test says it is."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from hub.adapter import AdapterConfig
from hub.core.config import Settings
from hub.core.http1 import Http1Backend
from hub.core.registry import build_http_client
from hub.upstream import ResponseTooLarge

#: A scripted answer: raw bytes to write, or a coroutine function given the writer.
Answer = bytes | Callable[[asyncio.StreamWriter], Awaitable[None]]

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
SILENT = b""  # write nothing and wait for the next request: the client hears nothing
TIMEOUT = httpx.Timeout(5)
SHORT = httpx.Timeout(5, read=0.2)


class RawServer:
    """Answers each request it reads with the next scripted answer (the last one repeats);
    records the requests' bytes, the connections opened and those the client closed."""

    def __init__(self, answers: tuple[Answer, ...]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.received = asyncio.Event()  # a request arrived
        self.eof = asyncio.Event()  # the client closed a connection
        self.url = ""
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        self.connections += 1
        try:
            await self._serve(reader, writer)
        except (asyncio.CancelledError, ConnectionError):
            pass  # the test is over (Python 3.11's start_server logs a cancelled handler)
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                self.eof.set()
                return
            length = re.search(rb"\r\ncontent-length: (\d+)\r\n", head, re.IGNORECASE)
            self.requests.append(head + await reader.readexactly(int(length[1]) if length else 0))
            self.received.set()
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if isinstance(answer, bytes):
                writer.write(answer)
                if b"\r\nconnection: close\r\n" in answer:
                    await writer.drain()
                    return
            else:
                await answer(writer)
                if writer.is_closing():
                    return


@contextlib.asynccontextmanager
async def raw_server(*answers: Answer) -> AsyncIterator[RawServer]:
    raw = RawServer(answers)
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield raw
    finally:
        server.close()
        for task in raw.tasks:
            task.cancel()
        await asyncio.gather(*raw.tasks, return_exceptions=True)
        await server.wait_closed()


async def endless_header(writer: asyncio.StreamWriter) -> None:
    """A header value that never ends, sent faster than the read timeout."""
    writer.write(b"HTTP/1.1 200 OK\r\nx-long: ")
    with contextlib.suppress(ConnectionError):
        for _ in range(200):  # 200 KB in all; the client should stop it past 64 KB
            writer.write(b"a" * 1024)
            await writer.drain()
            await asyncio.sleep(0.001)


def pieces(*parts: bytes, gap: float = 0.02) -> Answer:
    """An answer written in several pieces, `gap` seconds apart."""

    async def write(writer: asyncio.StreamWriter) -> None:
        for part in parts:
            await asyncio.sleep(gap)
            writer.write(part)
            await writer.drain()

    return write


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def chunks_forever(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        for _ in range(50):  # the client should stop it after two
            writer.write(b"258\r\n" + b"x" * 600 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)


@pytest.fixture
async def backends() -> AsyncIterator[Callable[..., Http1Backend]]:
    """Makes backends (small body cap by default); closes them after the test."""
    made: list[Http1Backend] = []

    def make(max_connections: int = 4, **options: Any) -> Http1Backend:
        options.setdefault("max_response_bytes", 1000)
        made.append(Http1Backend(max_connections=max_connections, **options))
        return made[-1]

    yield make
    for backend in made:
        await backend.aclose()


async def send(
    backend: Http1Backend, url: str, method: str = "GET", **options: Any
) -> httpx.Response:
    """`backend.send` with no body, no headers and TIMEOUT unless given."""
    options = {"content": None, "headers": {}, "timeout": TIMEOUT, **options}
    return await backend.send(method, url, **options)


# -- bodies, headers, the request sent ------------------------------------------------------


async def test_content_length_answer_and_the_exact_request_bytes(backends):
    answer = b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello"
    async with raw_server(answer) as server:
        backend = backends()
        url = server.url + "/v1/citizens?id=001&q=a%20b"
        response = await send(backend, url, headers={"accept": "application/json", "X-Id": "7"})
        await send(backend, server.url + "/v1/in", "POST", content=b'{"a":1}')
        await send(backend, server.url + "/v1/empty", "POST")
    host = server.url.removeprefix("http://")
    assert server.requests == [
        f"GET /v1/citizens?id=001&q=a%20b HTTP/1.1\r\nhost: {host}\r\n"
        "accept: application/json\r\nX-Id: 7\r\n\r\n".encode(),
        f'POST /v1/in HTTP/1.1\r\nhost: {host}\r\ncontent-length: 7\r\n\r\n{{"a":1}}'.encode(),
        f"POST /v1/empty HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\n\r\n".encode(),
    ]
    assert (response.status_code, response.content) == (201, b"hello")
    assert response.headers.raw == [
        (b"content-length", b"5"),
        (b"set-cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.request.method == "GET" and str(response.request.url) == url
    assert server.connections == 1


async def test_a_path_with_a_space_or_non_ascii_is_sent_percent_encoded(backends):
    async with raw_server(OK) as server:
        await send(backends(), server.url + "/v1/a b/é?q=x y")
    assert server.requests[0].startswith(b"GET /v1/a%20b/%C3%A9?q=x%20y HTTP/1.1\r\n")


async def test_chunked_body_in_several_writes_then_the_connection_is_reused(backends):
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        b"lo\r\n2\r\n, \r\n",
        b"5\r\nworld\r\n0\r\n\r\n",
    )
    async with raw_server(pieces(*chunked), OK) as server:
        backend = backends()
        assert (await send(backend, server.url)).content == b"hello, world"
        assert (await send(backend, server.url)).content == b"ok"
    assert server.connections == 1


async def test_body_read_until_close_then_a_new_connection(backends):
    until_close = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nall of it"
    )
    async with raw_server(until_close, OK) as server:
        backend = backends()
        assert (await send(backend, server.url)).content == b"all of it"
        assert (await send(backend, server.url)).content == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n",
        # a 304's Content-Length is the representation's: no body, whatever the size cap
        b"HTTP/1.1 304 Not Modified\r\nx-a: 1\r\ncontent-length: 5000\r\n\r\n",
    ],
    ids=["204", "304"],
)
async def test_no_body_answers_and_the_connection_is_kept(backends, head):
    async with raw_server(head, OK) as server:
        backend = backends()
        response = await send(backend, server.url, timeout=SHORT)
        assert (response.content, response.headers["x-a"]) == (b"", "1")
        assert response.status_code == int(head[9:12])
        assert (await send(backend, server.url)).content == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-final: yes\r\ncontent-length: 4\r\n\r\nreal",
        pieces(
            b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx-final: yes\r\ncontent-length: 4\r\n\r\nreal",
        ),
    ],
    ids=["one-write", "two-writes"],
)
async def test_an_interim_100_continue_is_skipped(backends, interim):
    async with raw_server(interim, OK) as server:
        backend = backends()
        response = await send(backend, server.url, "POST", content=b"x")
        assert (response.status_code, response.content) == (200, b"real")
        assert response.headers.raw == [(b"x-final", b"yes"), (b"content-length", b"4")]
        assert (await send(backend, server.url)).content == b"ok"
    assert server.connections == 1


# -- keep-alive ------------------------------------------------------------------------------


async def test_sequential_requests_share_one_connection(backends):
    async with raw_server(OK) as server:
        backend = backends()
        for _ in range(3):
            assert (await send(backend, server.url)).content == b"ok"
    assert (server.connections, len(server.requests)) == (1, 3)


async def test_a_connection_close_answer_is_not_reused(backends):
    closing = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    async with raw_server(closing, OK) as server:
        backend = backends()
        await send(backend, server.url)
        await send(backend, server.url)
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_skipped(backends):
    hung_up = asyncio.Event()

    async def answer_then_hang_up(writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    async with raw_server(answer_then_hang_up, OK) as server:
        backend = backends()
        await send(backend, server.url)
        await hung_up.wait()  # the FIN has reached the client; its loop may not have read it
        assert (await send(backend, server.url)).content == b"ok"
    assert server.connections == 2


async def test_an_idle_connection_older_than_keepalive_is_not_reused(backends):
    async with raw_server(OK) as server:
        backend = backends(keepalive_s=0.05)
        await send(backend, server.url)
        await asyncio.sleep(0.1)
        await send(backend, server.url)
        assert server.connections == 2
        await asyncio.wait_for(server.eof.wait(), 2)  # and the stale one was closed


async def test_an_idle_connection_left_unused_past_keepalive_is_closed(backends):
    """A burst leaves two idle connections; steady traffic then reuses only the most recent
    one, and the other is closed once idle past keepalive_s, not kept open for ever."""
    async with raw_server(OK) as server:
        backend = backends(keepalive_s=0.5)
        await asyncio.gather(send(backend, server.url), send(backend, server.url))
        assert server.connections == 2
        for _ in range(2):
            await asyncio.sleep(0.3)
            await send(backend, server.url)
        await asyncio.wait_for(server.eof.wait(), 1)


async def test_aclose_closes_idle_connections(backends):
    async with raw_server(OK) as server:
        backend = backends()
        await send(backend, server.url)
        assert not server.eof.is_set()
        await backend.aclose()
        await asyncio.wait_for(server.eof.wait(), 2)


# -- errors ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_a_connect_error(backends):
    with pytest.raises(httpx.ConnectError) as caught:
        await send(backends(), f"http://127.0.0.1:{free_port()}/x")
    assert caught.value.request.url.path == "/x"


async def test_a_connect_that_cannot_finish_in_time_is_a_connect_timeout(backends):
    # No time at all: loopback cannot beat it (a real silent SYN needs a black-holed address).
    async with raw_server(OK) as server:
        backend = backends()
        with pytest.raises(httpx.ConnectTimeout):
            await send(backend, server.url, timeout=httpx.Timeout(5, connect=0))
        assert (await send(backend, server.url)).content == b"ok"


async def test_read_timeout_is_the_longest_silence(backends):
    async with raw_server(SILENT) as server:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await send(backends(), server.url, timeout=SHORT)
        assert 0.2 <= time.monotonic() - started < 2


async def test_an_answer_trickling_slower_than_the_read_timeout_in_total_succeeds(backends):
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789"
    async with raw_server(pieces(*(answer[i : i + 4] for i in range(0, 56, 4)), gap=0.05)) as s:
        started = time.monotonic()
        response = await send(backends(), s.url, timeout=httpx.Timeout(5, read=0.5))
        assert response.content == b"0123456789"
        assert time.monotonic() - started > 0.5


TRUNCATED = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nshort"
TOO_LARGE = b"HTTP/1.1 200 OK\r\ncontent-length: 1001\r\n\r\n"  # over the cap; no body follows


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(SILENT, httpx.ReadTimeout, id="silent"),
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-len", httpx.ReadTimeout, id="half-headers"),
        pytest.param(hang_up, httpx.RemoteProtocolError, id="hang-up"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", httpx.RemoteProtocolError, id="garbage"),
        pytest.param(TRUNCATED, httpx.RemoteProtocolError, id="truncated"),
        pytest.param(TOO_LARGE, ResponseTooLarge, id="declared-too-large"),
        pytest.param(chunks_forever, ResponseTooLarge, id="chunked-too-large"),
        pytest.param(endless_header, httpx.RemoteProtocolError, id="endless-header"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n" + b"x-h: 1\r\n" * 101 + b"content-length: 2\r\n\r\nok",
            httpx.RemoteProtocolError,
            id="too-many-headers",
        ),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n",
            httpx.RemoteProtocolError,
            id="upgrade",
        ),
    ],
)
async def test_a_failure_raises_and_its_connection_is_not_reused(backends, answer, error):
    async with raw_server(answer, OK) as server:
        backend = backends(max_connections=1)
        with pytest.raises(error) as caught:
            await send(backend, server.url, timeout=SHORT)
        if isinstance(caught.value, httpx.HTTPError):
            assert caught.value.request.url == server.url
        assert (await send(backend, server.url, timeout=httpx.Timeout(5, pool=1))).content == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"x-a": "1\r\nx-evil: 1"},
        {"x-a": "1\nx-evil: 1"},
        {"x-a": "1\r"},
        {"x-evil: 1\r\nx-a": "1"},
        {"x-a\n": "1"},
        {"x a": "1"},  # not a token
        {"x-a": "1\x00"},  # a control character
        {"Host": "evil.example"},  # framing the client sets itself
        {"content-length": "0"},
        {"Transfer-Encoding": "chunked"},
    ],
)
async def test_cr_or_lf_in_a_header_is_refused_before_anything_is_sent(backends, headers):
    async with raw_server(OK) as server:
        backend = backends()
        with pytest.raises(httpx.LocalProtocolError):
            await send(backend, server.url, headers=headers)
        await send(backend, server.url)
    assert server.connections == 1 and len(server.requests) == 1
    assert b"evil" not in server.requests[0]


# -- the pool --------------------------------------------------------------------------------


async def test_the_connection_limit_makes_requests_wait_then_pool_timeout(backends):
    release = asyncio.Event()

    async def held(writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.write(OK)

    async with raw_server(held) as server:
        backend = backends(max_connections=1)
        first = asyncio.create_task(send(backend, server.url))
        await server.received.wait()
        with pytest.raises(httpx.PoolTimeout):
            await send(backend, server.url, timeout=httpx.Timeout(5, pool=0.1))
        waiting = asyncio.create_task(send(backend, server.url))
        await asyncio.sleep(0.05)
        assert not waiting.done() and len(server.requests) == 1
        release.set()
        assert [r.content for r in await asyncio.gather(first, waiting)] == [b"ok", b"ok"]
    assert (server.connections, len(server.requests)) == (1, 2)


async def test_a_cancelled_request_frees_its_slot_and_its_connection_is_dropped(backends):
    async with raw_server(SILENT, OK) as server:
        backend = backends(max_connections=1)
        task = asyncio.create_task(send(backend, server.url))
        await server.received.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        response = await send(backend, server.url, timeout=httpx.Timeout(5, pool=1))
        assert response.content == b"ok"
        assert server.connections == 2
        await asyncio.wait_for(server.eof.wait(), 2)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file", "/relative/path", "http:///no-host"])
async def test_an_unsupported_url_is_refused(backends, url):
    with pytest.raises(httpx.UnsupportedProtocol):
        await send(backends(), url)


# -- wiring ----------------------------------------------------------------------------------


async def test_the_default_settings_build_http1_clients(monkeypatch):
    monkeypatch.delenv("HUB_HTTP_TRANSPORT", raising=False)
    settings = Settings()
    async with raw_server(OK) as server:
        client = build_http_client(settings, AdapterConfig(base_url=server.url + "/v1"), None)
        try:
            assert isinstance(client._backend, Http1Backend)
            assert client._backend._max_connections == settings.upstream_max_connections
            assert client._backend._max_body == settings.upstream_max_response_bytes
            assert (await client.get("/citizens", params={"id": "001"})).text == "ok"
        finally:
            await client.aclose()
    assert server.requests[0].startswith(b"GET /v1/citizens?id=001 HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", b"13")],
        [(b"content-type", b"text/xml"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        [(b"content-encoding", b"gzip"), (b"content-type", b"application/json")],
    ],
)
async def test_read_response_behaves_as_httpx_constructor(headers: list[Any]) -> None:
    """The cheap already-read response the backends hand adapters answers every question
    as `httpx.Response(content=...)` does, a compressed body decoded included."""
    import gzip

    from hub.upstream import read_response

    text = b'{"a": "\xc3\xa1"}'
    gzipped = any(name == b"content-encoding" for name, _ in headers)
    body = gzip.compress(text) if gzipped else text
    request = httpx.Request("POST", "http://upstream.test/ws?x=1")
    lean = read_response(200, headers, body, request, max_bytes=1 << 20)
    plain = httpx.Response(200, headers=headers, content=body, request=request)
    assert lean.content == plain.content == text
    assert lean.text == plain.text and lean.json() == plain.json() == {"a": "á"}
    assert lean.headers.get_list("set-cookie") == plain.headers.get_list("set-cookie")
    assert lean.headers["content-type"] == plain.headers["content-type"]
    assert lean.is_closed and lean.is_stream_consumed and lean.request is request
    assert lean.is_success and lean.encoding == plain.encoding
    assert await lean.aread() == text
    lean.raise_for_status()


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "raw-deflate"])
def test_read_response_inflates_each_coding_and_keeps_the_headers(coding: str) -> None:
    """gzip and deflate httpx decodes itself once the cap is checked; x-gzip (gzip's old
    name, which httpx passes through undecoded) is inflated by the hub. Either way the
    headers stay as upstream sent them, and the response is read and closed."""
    import gzip
    import zlib

    from hub.upstream import read_response

    text = b"<ok>" * 200
    if coding.endswith("deflate"):
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS if coding == "raw-deflate" else 15)
        body, coding = packer.compress(text) + packer.flush(), "deflate"
    else:
        body = gzip.compress(text)
    headers = [(b"content-encoding", coding.encode()), (b"content-length", b"%d" % len(body))]
    request = httpx.Request("GET", "http://upstream.test/ws")
    response = read_response(200, headers, body, request, max_bytes=1 << 20)
    assert response.content == text and response.text == text.decode()
    assert response.headers["content-encoding"] == coding
    assert response.headers["content-length"] == str(len(body))
    assert response.is_closed and response.is_stream_consumed
    with pytest.raises(ResponseTooLarge):
        read_response(200, headers, body, request, max_bytes=len(text) - 1)


async def test_bytes_after_a_complete_answer_spoil_the_connection(backends):
    """An answer followed by the start of another nobody asked for: the first is served, the
    connection is not reused (its parser is mid-message)."""
    spoiled = OK + b"HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\npart"
    async with raw_server(spoiled, OK) as server:
        backend = backends(max_connections=1)
        assert (await send(backend, server.url)).content == b"ok"
        assert (await send(backend, server.url)).content == b"ok"
    assert server.connections == 2


async def test_a_chunked_trailer_is_not_a_header(backends):
    answer = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
        b"2\r\nok\r\n0\r\ncontent-encoding: gzip\r\ncontent-type: evil\r\n\r\n"
    )
    async with raw_server(answer) as server:
        response = await send(backends(), server.url)
    assert response.content == b"ok"
    assert response.headers.get_list("content-type") == ["text/plain"]
    assert "content-encoding" not in response.headers


async def test_a_reset_while_reading_until_close_is_an_error(backends):
    async def reset(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npartial")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST, not FIN: the body did not end, it was cut

    async with raw_server(reset) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await send(backends(), server.url)


async def test_credentials_in_the_url_are_refused_not_dropped(backends):
    with pytest.raises(httpx.UnsupportedProtocol, match="credentials"):
        await send(backends(), "http://user:secret@127.0.0.1:9/ws")


async def test_a_compressed_answer_is_inflated_within_the_cap(backends):
    import gzip

    small = gzip.compress(b"ok" * 100)
    bomb = gzip.compress(b"0" * 50_000)  # ~100 bytes on the wire, 50 KB inflated
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
        for body in (small, bomb)
    ]
    async with raw_server(*answers) as server:
        backend = backends(max_response_bytes=1000)
        assert (await send(backend, server.url)).content == b"ok" * 100
        with pytest.raises(ResponseTooLarge):
            await send(backend, server.url)
