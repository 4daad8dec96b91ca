"""The HTTP/1.1 protocol `hub serve` runs: uvicorn's httptools protocol, with the answers
it writes by itself (before any ASGI app sees the request) in the hub's own form.

uvicorn answers a request it cannot parse with a plain-text 400 of its own, with none of
the hub's headers, and reads request lines and headers of any length (httptools sets no
bound). Here a malformed request is a 400 `BAD_REQUEST`, a target longer than
`MAX_TARGET_BYTES` a 414 `URI_TOO_LONG` and headers past `MAX_HEADER_BYTES` a 431
`HEADERS_TOO_LARGE`: problem+json with a request id and the security headers, and the
connection closed, as uvicorn does. A subclass, because uvicorn has no hook for these
answers; it keeps to the two methods and the callbacks it overrides.
"""

from __future__ import annotations

import logging

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.api.middleware import SECURITY_HEADERS, new_request_id
from hub.errors import BadRequest, HeadersTooLarge, HubError, UriTooLong

__all__ = ["MAX_HEADER_BYTES", "MAX_TARGET_BYTES", "HubHttpProtocol"]

log = logging.getLogger("hub.http")

#: The longest request target read (the path and query; 8 KB, as nginx's default line).
MAX_TARGET_BYTES = 8192
#: The most header bytes (names and values together) one request may carry.
MAX_HEADER_BYTES = 65536

_REASONS = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class _Refused(Exception):
    """Raised from a parser callback: httptools turns it into HttpParserCallbackError."""


class HubHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request lines and headers, and the hub's
    problem+json for what it refuses before the app."""

    _refusal: HubError | None = None
    _header_bytes = 0

    def on_message_begin(self) -> None:
        self._refusal, self._header_bytes = None, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_TARGET_BYTES:
            self._refusal = UriTooLong(
                f"the request target is longer than {MAX_TARGET_BYTES} bytes"
            )
            raise _Refused()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refusal = HeadersTooLarge(f"the headers exceed {MAX_HEADER_BYTES} bytes")
            raise _Refused()
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        """What uvicorn calls for a request it cannot parse (and for our refusals)."""
        error = self._refusal or BadRequest("the request is not valid HTTP/1.1")
        rid = new_request_id()
        body = orjson.dumps(error.problem(rid))
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"x-request-id", rid.encode()),
            *SECURITY_HEADERS,
        ]
        head = [b"HTTP/1.1 %d %s\r\n" % (error.status, _REASONS.get(error.status, b"Bad Request"))]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()
        log.info("refused a request before the app: %s request_id=%s", error.code, rid)
