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

from mocks._push import PushTarget, deliver

__all__ = ["DEFAULT_PUSH_URL", "PUSH_PATH", "PushTarget", "Pusher", "sign"]

#: Where on the portal (the hub) results are pushed; `DEFAULT_PUSH_URL` is on `hub up`'s hub.
PUSH_PATH = "/v1/judicial-records/results"
DEFAULT_PUSH_URL = f"http://127.0.0.1:8000{PUSH_PATH}"
log = logging.getLogger("mocks.judicial_records")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-LLTP-Signature` of a body sent at `timestamp`."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Pusher:
    """Delivers one signed body with retries (mocks._push.deliver); reports whether it got
    through."""

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
        """POST `body`, signed at each attempt's time, until a 2xx answer or the attempts
        run out. The reference is upstream's own; the body (personal data) is never logged."""

        def message() -> tuple[bytes, dict[str, str]]:
            timestamp = str(int(self.clock()))
            return body, {
                "content-type": "application/json; charset=utf-8",
                "x-lltp-timestamp": timestamp,
                "x-lltp-signature": sign(self.secret, timestamp, body),
            }

        outcome = await deliver(
            self.target,
            message,
            label=reference,
            attempts=self.attempts,
            backoff_s=self.backoff_s,
            sleep=self.sleep,
            on_attempt=on_attempt,
            timeout_s=self.timeout_s,
            logger=log,
        )
        return outcome == "delivered"
