"""The fault-injecting transport: wrapped around a mock, it makes upstream fail on demand.

The conformance battery switches one `Fault` on around a call and reads back, from the
`Injection`, which requests met it. Adapter tests can use `FaultTransport` directly too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

#: What the kit's transport does to the requests it targets.
#: hang: never answers (the hub's per-attempt timeout must end it); read_timeout: raises
#: httpx.ReadTimeout (as the HTTP client does when its own read timeout fires first);
#: http_500: a 500 with a text body (a fake stack trace); http_503: a 503 with no body;
#: malformed: the real answer cut in half; scrambled: the real answer still JSON, but every
#: list and number in it replaced by a string (a well-formed page of garbage); refuse:
#: every request, targeted or not, fails with httpx.ConnectError; unauthorized /
#: server_error: every request, targeted or not, is answered 401 / 500 (an upstream that
#: refuses our credentials, or is broken: a health probe must not call either ok).
Fault = Literal[
    "hang",
    "read_timeout",
    "http_500",
    "http_503",
    "malformed",
    "scrambled",
    "refuse",
    "unauthorized",
    "server_error",
]

#: The faults that meet every request, targeted or not, and the status they answer with.
_EVERY_REQUEST = {"unauthorized": 401, "server_error": 500}

#: Planted in the body of the injected HTTP 500: it must never reach the caller.
CANARY = "conformance-canary-5f0c1e"
_ERROR_PAGE = (
    "Internal Server Error\n"
    "Traceback (most recent call last):\n"
    '  File "/srv/upstream/handlers.py", line 42, in handle\n'
    f"RuntimeError: database connection lost ({CANARY})\n"
).encode()


@dataclass
class Injection:
    """What one fault met while it was on: the targeted requests, the real answers cut."""

    fault: Fault
    requests: list[httpx.Request] = field(default_factory=list)
    cut_answers: list[bytes] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many upstream requests met the fault (one per attempt, for a sane adapter)."""
        return len(self.requests)


@dataclass(frozen=True)
class Answer:
    """One answer upstream gave, as the transport recorded it (`FaultTransport.record`)."""

    request: httpx.Request
    status_code: int
    headers: httpx.Headers
    body: bytes


class FaultTransport(httpx.AsyncBaseTransport):
    """Wraps the mock's transport; while a fault is on, the requests `targets` selects meet it.

    Untargeted requests (a token endpoint, say) go through untouched, so multi-step
    protocols still reach the step under test. Every request is recorded in `requests`.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, targets: Callable[[httpx.Request], bool]
    ) -> None:
        self.inner = inner
        self.targets = targets
        self.requests: list[httpx.Request] = []
        self._injection: Injection | None = None
        self._answers: list[Answer] | None = None

    @contextlib.contextmanager
    def record(self) -> Iterator[list[Answer]]:
        """Keep, for the block, every answer upstream gives to a request the transport's
        `targets` select (no fault on): what the battery holds to the upstream's schema."""
        answers: list[Answer] = []
        self._answers = answers
        try:
            yield answers
        finally:
            self._answers = None

    @contextlib.contextmanager
    def inject(self, fault: Fault) -> Iterator[Injection]:
        """Switch `fault` on for the block; yields the record of what met it."""
        injection = Injection(fault)
        self._injection = injection
        try:
            yield injection
        finally:
            self._injection = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        injection = self._injection
        if injection is None:
            if self._answers is not None and self.targets(request):
                return await self._recorded(request, self._answers)
            return await self.inner.handle_async_request(request)
        if injection.fault == "refuse":
            injection.requests.append(request)
            raise httpx.ConnectError("connection refused (conformance kit)", request=request)
        if injection.fault in _EVERY_REQUEST:
            injection.requests.append(request)
            status = _EVERY_REQUEST[injection.fault]
            return httpx.Response(status, json={"error": f"HTTP {status} (conformance kit)"})
        if not self.targets(request):
            return await self.inner.handle_async_request(request)
        injection.requests.append(request)
        if injection.fault == "hang":  # only the hub's per-attempt timeout ends this
            await asyncio.Event().wait()
            raise AssertionError("unreachable: nothing sets the event")
        if injection.fault == "read_timeout":
            raise httpx.ReadTimeout("read timed out (conformance kit)", request=request)
        if injection.fault == "http_500":
            return httpx.Response(
                500, headers={"content-type": "text/plain; charset=utf-8"}, content=_ERROR_PAGE
            )
        if injection.fault == "http_503":
            return httpx.Response(503)
        # malformed: the real answer, cut in half; scrambled: the real answer, garbled
        response = await self.inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        injection.cut_answers.append(body)
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        if injection.fault == "scrambled":
            kept = [(n, v) for n, v in kept if n.lower() != "content-type"]
            kept.append(("content-type", "application/json"))
            return httpx.Response(response.status_code, headers=kept, content=_scrambled(body))
        return httpx.Response(
            response.status_code, headers=kept, content=body[: max(len(body) // 2, 1)]
        )

    async def _recorded(self, request: httpx.Request, answers: list[Answer]) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        answers.append(Answer(request, response.status_code, response.headers, body))
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=kept, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _scrambled(body: bytes) -> bytes:
    """A JSON answer with every list and number replaced by the canary string (objects,
    their keys and other values kept, so an envelope still reads as a success); anything
    else, or an answer with neither, becomes a JSON object of garbage."""
    changed = False

    def garble(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, dict):
            return {key: garble(item) for key, item in value.items()}
        if isinstance(value, list) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            changed = True
            return CANARY
        return value

    try:
        scrambled = garble(json.loads(body))
    except ValueError:
        scrambled = None
    if not changed:
        scrambled = {"garbage": CANARY}
    return json.dumps(scrambled).encode()


def path_prefixes(prefixes: Sequence[str]) -> Callable[[httpx.Request], bool]:
    """A `targets` predicate: requests whose URL path starts with one of `prefixes`."""
    wanted = tuple(prefixes)
    return lambda request: request.url.path.startswith(wanted)
