"""The IPN: the platform's signed notice to the partner that a transaction has settled.

Each attempt is a fresh message (its `ThoiGianGD` is when it is sent, so its `MaXacThuc`
changes too). A delivery without a 2xx answer (no connection, a timeout, another status) is
sent again after 1, 2, 4 … × `backoff_s` seconds, up to `attempts` times; a 409 answer means
the partner already has it, and delivery stops.

Delivery is the mocks' shared loop (mocks._push.deliver), also used by the judicial-records
mock's push; `app.state.push` is a `PushTarget` (`url`, `transport`, changeable at run time;
`url=None` turns the IPN off).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import orjson

from mocks._push import Delivery, PushTarget, deliver
from mocks.payment import checksum

__all__ = ["DEFAULT_IPN_URL", "IPN_PATH", "VIETNAM", "IpnSender", "PushTarget", "vietnam_time"]

#: Where on the merchant (the hub) IPNs go; `DEFAULT_IPN_URL` is on `hub up`'s hub.
IPN_PATH = "/v1/payments/ipn"
DEFAULT_IPN_URL = f"http://127.0.0.1:8000{IPN_PATH}"
log = logging.getLogger("mocks.payment")
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")


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
        """Send until a 2xx or 409 answer ("delivered") or the attempts run out ("failed"),
        a fresh message each time. The reference is the partner's own; the payer's data is
        never logged."""

        def message() -> tuple[bytes, dict[str, str]]:
            body = self.message(
                paid=paid, reference=reference, amount=amount, transaction_id=transaction_id
            )
            return orjson.dumps(body), {"content-type": "application/json"}

        return await deliver(
            self.target,
            message,
            label=reference,
            attempts=self.attempts,
            backoff_s=self.backoff_s,
            sleep=self.sleep,
            on_attempt=on_attempt,
            accepted=lambda status: 200 <= status < 300 or status == 409,
            timeout_s=self.timeout_s,
            logger=log,
        )
