"""The IPN: the platform's signed notice to the partner that a transaction has settled.

Each attempt is a fresh message (its `ThoiGianGD` is when it is sent, so its `MaXacThuc`
changes too). A delivery without a 2xx answer (no connection, a timeout, another status) is
sent again after 1, 2, 4 … × `backoff_s` seconds, up to `attempts` times; a 409 answer means
the partner already has it, and delivery stops.

The judicial-records mock's `Pusher` signs with headers over a fixed body, so it cannot
send a fresh body each attempt nor stop on 409; this is the payment platform's own loop. It
shares that mock's `PushTarget` (`app.state.push`: `url`, `transport`, changeable at run
time; `url=None` turns the IPN off).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import httpx
import orjson

from mocks.judicial_records.push import PushTarget
from mocks.payment import checksum

__all__ = ["DEFAULT_IPN_URL", "VIETNAM", "IpnSender", "PushTarget", "vietnam_time"]

DEFAULT_IPN_URL = "http://127.0.0.1:8000/v1/payments/ipn"
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
log = logging.getLogger("mocks.payment")

Delivery = Literal["delivered", "failed", "off"]


def vietnam_time(timestamp: float, fmt: str = "%Y%m%d%H%M%S") -> str:
    """A Unix time as Vietnam time (UTC+7) in the platform's `yyyyMMddHHmmss`."""
    return dt.datetime.fromtimestamp(timestamp, VIETNAM).strftime(fmt)


class IpnSender:
    """Builds, signs and delivers the IPN of a settled transaction, with retries."""

    def __init__(
        self,
        target: PushTarget,
        *,
        partner_code: str,
        secret: str,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        attempts: int,
        backoff_s: float,
        timeout_s: float = 10.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("ipn_attempts must be at least 1")
        self.target = target
        self.partner_code, self.secret = partner_code, secret
        self.clock, self.sleep = clock, sleep
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s

    def message(
        self, *, paid: bool, reference: str, amount: int, transaction_id: str
    ) -> dict[str, str | int]:
        """The IPN as sent now: `ThoiGianGD` is this moment, `MaXacThuc` signs it."""
        body: dict[str, str | int] = {
            "LoaiBanTin": "IPN",
            "MaLoi": "00" if paid else "01",
            "MaDoiTac": self.partner_code,
            "MaThamChieu": reference,
            "SoTien": amount,
            "MaGiaoDich": transaction_id,
            "ThoiGianGD": vietnam_time(self.clock()),
        }
        body["MaXacThuc"] = checksum.sign(body, checksum.IPN, self.secret)
        return body

    async def deliver(
        self,
        *,
        paid: bool,
        reference: str,
        amount: int,
        transaction_id: str,
        on_attempt: Callable[[], None],
    ) -> Delivery:
        """Send until a 2xx or 409 answer ("delivered") or the attempts run out ("failed")."""
        for attempt in range(1, self.attempts + 1):
            if self.target.url is None:
                return "off"
            on_attempt()
            body = self.message(
                paid=paid, reference=reference, amount=amount, transaction_id=transaction_id
            )
            problem = await self._post(self.target.url, orjson.dumps(body))
            if problem is None:
                return "delivered"
            # The reference is the partner's own; the payer's data is never logged.
            log.info(
                "IPN for %s failed (%s), attempt %d of %d",
                reference,
                problem,
                attempt,
                self.attempts,
            )
            if attempt < self.attempts:
                await self.sleep(self.backoff_s * 2 ** (attempt - 1))
        return "failed"

    async def _post(self, url: str, body: bytes) -> str | None:
        """None when the partner has the IPN (2xx or 409), else what went wrong."""
        try:
            async with httpx.AsyncClient(
                transport=self.target.transport, timeout=self.timeout_s
            ) as client:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return type(exc).__name__
        if response.is_success or response.status_code == 409:
            return None
        return f"HTTP {response.status_code}"
