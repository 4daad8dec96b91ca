"""The caller's side of the population service's HTTP-level authentication.

    Authorization: Basic base64(user:password)
    timestamp: <Unix epoch seconds>
    password = lower-case hex SHA-256(url + user + timestamp + secret)

`url` is the endpoint the request is posted to, without query string. Tests and the
benchmark use this module; the hub's adapter carries its own copy on purpose (the adapter
must not depend on the mocks).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Generator

import httpx


def password_for(url: str, user: str, timestamp: str, secret: str) -> str:
    """The one-time password for a request posted to `url` at `timestamp`."""
    return hashlib.sha256(f"{url}{user}{timestamp}{secret}".encode()).hexdigest()


def auth_headers(url: str, user: str, secret: str, now: float | None = None) -> dict[str, str]:
    """`Authorization` and `timestamp` headers for one request to `url`."""
    timestamp = str(int(time.time() if now is None else now))
    token = base64.b64encode(f"{user}:{password_for(url, user, timestamp, secret)}".encode())
    return {"Authorization": f"Basic {token.decode('ascii')}", "timestamp": timestamp}


def endpoint_url(url: httpx.URL) -> str:
    """The URL as signed: scheme, host[:port] and path, no query string."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"


class PopulationAuth(httpx.Auth):
    """httpx auth that signs every request (works under zeep's AsyncTransport too)."""

    def __init__(self, user: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.user, self.secret, self.clock = user, secret, clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url = endpoint_url(request.url)
        request.headers.update(auth_headers(url, self.user, self.secret, self.clock()))
        yield request
