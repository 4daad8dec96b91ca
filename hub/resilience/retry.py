"""Timeouts, retries and the one place where upstream failures become hub errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
from lxml import etree
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from hub.errors import (
    HubError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreadable,
)
from hub.mapping import MappingValueError
from hub.upstream import status_error

T = TypeVar("T")


#: Errors of reading upstream's bytes: XML (lxml), JSON (a body that is not JSON or not
#: UTF-8, from `response.json()`), the mapping (a value it cannot convert) and pydantic's (a
#: mapped answer that does not fit the canonical model). Any other exception an operation
#: raises is the adapter's own bug (hub.errors.AdapterError, made by the gateway).
UPSTREAM_PARSE_ERRORS: tuple[type[Exception], ...] = (
    etree.LxmlError,
    MappingValueError,
    ValidationError,
    json.JSONDecodeError,
    UnicodeDecodeError,
)
_TRANSPORT_ERRORS = (httpx.HTTPError, TimeoutError)
#: The parse errors that say the bytes are not XML or JSON at all (UpstreamUnreadable), as
#: opposed to a value off the contract in a well-formed answer (UpstreamBadResponse).
_UNREADABLE = (etree.XMLSyntaxError, json.JSONDecodeError, UnicodeDecodeError)
#: zeep's errors about upstream's answer (the others are about the WSDL or our request).
_ZEEP_PARSE_ERRORS = (
    "XMLSyntaxError",
    "XMLParseError",
    "DTDForbidden",
    "EntitiesForbidden",
    "ExternalReferenceForbidden",
    "UnexpectedElementError",
    "IncompleteMessage",
)


def is_upstream_exception(exc: BaseException) -> bool:
    """Whether an exception is one `translate_upstream_errors` turns into an upstream
    error: a transport error, a timeout, an error parsing upstream's answer (httpx, lxml,
    zeep, JSON, the mapping, pydantic). The gateway blames the adapter for any other."""
    return isinstance(exc, _TRANSPORT_ERRORS + UPSTREAM_PARSE_ERRORS) or (
        _zeep_error(exc) is not None
    )


def _zeep_error(exc: BaseException) -> HubError | None:
    """The upstream error a zeep exception means, None for another exception. zeep is only
    looked up once imported (an adapter that uses it has): none of its errors exist before."""
    zeep_exceptions = sys.modules.get("zeep.exceptions")
    if zeep_exceptions is None or not isinstance(exc, zeep_exceptions.Error):
        return None
    context = {"cause": type(exc).__name__}
    if isinstance(exc, zeep_exceptions.Fault):
        # faultstring may quote personal data: only the side of the fault is kept
        client_side = str(exc.code or "").rpartition(":")[2].endswith("Client")
        return (UpstreamRejected if client_side else UpstreamError)(log_context=context)
    if isinstance(exc, zeep_exceptions.TransportError):
        error = status_error(int(exc.status_code or 0), has_body=bool(exc.content))
        return (error or UpstreamBadResponse)(log_context=context)
    if type(exc).__name__ in ("XMLSyntaxError", "XMLParseError"):
        return UpstreamUnreadable(log_context=context)
    if type(exc).__name__ in _ZEEP_PARSE_ERRORS:
        return UpstreamBadResponse(log_context=context)
    return None


@contextlib.contextmanager
def translate_upstream_errors() -> Iterator[None]:
    """Turn transport and parse failures into hub errors (details kept for logs)."""
    try:
        yield
    except HubError:
        raise
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # never reached upstream
        raise UpstreamUnavailable(log_context={"cause": type(exc).__name__}) from exc
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise UpstreamTimeout(log_context={"cause": type(exc).__name__}) from exc
    except httpx.ConnectError as exc:
        raise UpstreamUnavailable(log_context={"cause": type(exc).__name__}) from exc
    except httpx.HTTPError as exc:  # protocol errors, resets, …
        raise UpstreamError(log_context={"cause": type(exc).__name__}) from exc
    except _UNREADABLE as exc:  # not the protocol's format at all: counted by the circuit
        raise UpstreamUnreadable(log_context={"cause": type(exc).__name__}) from exc
    except UPSTREAM_PARSE_ERRORS as exc:
        # The message may quote upstream values (personal data): it goes to the log context,
        # which is pseudonymised, never to the caller.
        raise UpstreamBadResponse(log_context={"cause": type(exc).__name__}) from exc
    except Exception as exc:
        zeep_error = _zeep_error(exc)
        if zeep_error is None:
            raise
        raise zeep_error from exc


def _is_retriable(exc: BaseException) -> bool:
    return isinstance(exc, HubError) and exc.retriable


class RetryPolicy:
    """Bounded exponential back-off with jitter, for idempotent operations only."""

    def __init__(self, *, attempts: int, deadline_s: float, initial_s: float, max_s: float) -> None:
        self.attempts, self.deadline_s = attempts, deadline_s
        self.initial_s, self.max_s = initial_s, max_s

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        idempotent: bool,
        timeout_s: float,
        on_retry: Callable[[], None] | None = None,
        deadline_s: float | None = None,
    ) -> T:
        """Run `call` within the total deadline (`deadline_s`, default the policy's), each
        attempt within `timeout_s` (or what is left of the deadline), retrying retriable
        errors when the operation is idempotent."""
        total = self.deadline_s if deadline_s is None else deadline_s
        deadline = time.monotonic() + total
        try:
            # The first attempt runs bare: tenacity's bookkeeping costs more than the whole
            # pipeline's other steps together, and most calls succeed the first time.
            return await self._attempt(call, min(timeout_s, total))
        except HubError as exc:
            if not (idempotent and exc.retriable and self.attempts > 1):
                raise
            # tenacity waits between its own attempts; this is the wait before its first.
            pause = random.uniform(0, self.initial_s)
            if deadline - time.monotonic() - pause <= 0:
                raise  # no time left for another attempt: the real failure, not a timeout
            if on_retry is not None:
                on_retry()
        await asyncio.sleep(pause)

        def before_sleep(_: RetryCallState) -> None:
            if on_retry is not None:
                on_retry()

        async def attempt() -> T:
            left = max(deadline - time.monotonic(), 0.001)
            return await self._attempt(call, min(timeout_s, left))

        remaining = deadline - time.monotonic()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts - 1) | stop_after_delay(remaining),
            # full jitter: a random wait up to the exponential bound, so retries spread out
            wait=wait_random_exponential(multiplier=self.initial_s, max=self.max_s),
            retry=retry_if_exception(_is_retriable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async with asyncio.timeout(remaining):
                return await retrying(attempt)
        except TimeoutError as exc:  # the whole deadline ran out while waiting to retry
            raise UpstreamTimeout() from exc

    @staticmethod
    async def _attempt(call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        with translate_upstream_errors():
            async with asyncio.timeout(timeout_s):
                return await call()


def doubling_delay(initial_s: float, max_s: float, step: int) -> float:
    """`initial_s` doubled `step` times, at most `max_s`: the back-off of the hub's
    background work (job polls, payment queries, webhook deliveries)."""
    return min(max_s, initial_s * 2 ** min(max(step, 0), 30))
