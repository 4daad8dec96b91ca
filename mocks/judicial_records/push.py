"""The judicial-records mock's push of a final result to the portal (the hub), signed.

Signature: `X-LLTP-Timestamp: <unix seconds>` and `X-LLTP-Signature: <lower-case hex
HMAC-SHA256(secret, timestamp + "." + raw body)>`. A push that fails (no connection, or an
answer other than 2xx) is retried with doubling back-off, then given up: the receiver is
expected to poll as a fallback.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

__all__ = ["PushTarget", "Pusher", "sign"]

DEFAULT_PUSH_URL = "http://127.0.0.1:8000/v1/judicial-records/results"
log = logging.getLogger("mocks.judicial_records")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-LLTP-Signature` of a body sent at `timestamp`."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class PushTarget:
    """Where results go; settable at run time (`app.state.push`). `url=None`: no pushes."""

    url: str | None = DEFAULT_PUSH_URL
    transport: httpx.AsyncBaseTransport | None = None


class Pusher:
    """Delivers one signed body with retries; reports whether it got through."""

    def __init__(
        self,
        target: PushTarget,
        *,
        secret: str,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        attempts: int,
        backoff_s: float,
        timeout_s: float = 10.0,
    ) -> None:
        self.target, self.secret = target, secret
        self.clock, self.sleep = clock, sleep
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s

    async def deliver(self, reference: str, body: bytes, on_attempt: Callable[[], None]) -> bool:
        """POST `body` until a 2xx answer or the attempts run out."""
        for attempt in range(1, self.attempts + 1):
            on_attempt()
            outcome = await self._post(body)
            if outcome is None:
                return True
            # Codes only: the reference is upstream's own, the body (personal data) never logged.
            log.info(
                "push of %s failed (%s), attempt %d of %d",
                reference,
                outcome,
                attempt,
                self.attempts,
            )
            if attempt < self.attempts:
                await self.sleep(self.backoff_s * 2 ** (attempt - 1))
        return False

    async def _post(self, body: bytes) -> str | None:
        """None on a 2xx answer, else what went wrong (a status or an exception name)."""
        url = self.target.url
        if url is None:
            return "no push URL"
        timestamp = str(int(self.clock()))
        headers = {
            "content-type": "application/json; charset=utf-8",
            "x-lltp-timestamp": timestamp,
            "x-lltp-signature": sign(self.secret, timestamp, body),
        }
        try:
            async with httpx.AsyncClient(
                transport=self.target.transport, timeout=self.timeout_s
            ) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None if response.is_success else f"HTTP {response.status_code}"
