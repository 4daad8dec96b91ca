"""The platform's messages (docs/mock-payment.md): the signed fields of each, in their fixed
order, `MaXacThuc` over them, what each reply code means, the IPN callback read and verified,
and the platform's clock format. Sending them is the adapter's (`adapters.payment`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from hub.capabilities.payments.models import PaymentNotification
from hub.errors import (
    HubError,
    InvalidJson,
    InvalidSignature,
    NotFound,
    SchemaViolation,
    StaleMessage,
    UpstreamBadResponse,
    UpstreamRejected,
    UpstreamUnavailable,
)
from hub.upstream import response_json

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
TIME_FORMAT = "%Y%m%d%H%M%S"
# The signed fields of each message, in their fixed order (docs/mock-payment.md).
INIT_SIGNED = (
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaTienTe",
    "ThongTinGiaoDich",
    "ThoiGianGD",
    "UrlTraVe",
)
QUERY_SIGNED = ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
RECONCILIATION_SIGNED = ("LoaiBanTin", "PhienBan", "MaDoiTac", "NgayDoiSoat", "ThoiGianGD")
IPN_SIGNED = (
    "LoaiBanTin",
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaGiaoDich",
    "ThoiGianGD",
)
REPLY_SIGNED = {
    "INIT": ("MaLoi", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "UrlThanhToan"),
    "QUERY": (
        "MaLoi",
        "MaDoiTac",
        "MaThamChieu",
        "MaGiaoDich",
        "SoTien",
        "TrangThaiGD",
        "ThoiGianThanhToan",
    ),
    "GET_BILL": ("MaLoi", "MaDoiTac", "MaThamChieu", "SoBienLai"),
    "DOI_SOAT": ("MaLoi", "MaDoiTac", "NgayDoiSoat", "SoLuong"),
}
ERROR_REPLY_SIGNED = ("MaLoi", "MaDoiTac")
#: MaLoi of a reply -> the hub error it is (docs/mock-payment.md).
REPLY_ERRORS: dict[str, type[HubError]] = {
    "01": UpstreamRejected,  # our message was malformed
    "02": UpstreamRejected,  # our checksum did not verify: a wrong secret
    "03": UpstreamRejected,  # our partner code is unknown
    "04": NotFound,  # no transaction with that reference
    "05": UpstreamRejected,  # the reference was used with another amount
    "06": NotFound,  # no receipt: not paid
    "99": UpstreamUnavailable,  # system error, try later
}


def _text(value: Any) -> str:
    """A field as the checksum writes it: numbers in decimal, strings as they are, a missing
    or null field as the empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):  # no boolean is signed; refuse rather than guess its text
        raise TypeError("a boolean in a signed field")
    return str(value)


def checksum(message: Mapping[str, Any], fields: Sequence[str], secret: str) -> str:
    """`MaXacThuc`: lower-case hex SHA-256 of the fields in order, '|'-joined, secret last.

    A plain hash with the secret appended, not an HMAC: that is how the platform defines
    it, so it is computed here rather than with the hmac module.
    """
    text = "|".join([*(_text(message.get(name)) for name in fields), secret])
    return hashlib.sha256(text.encode()).hexdigest()


def verified_checksum(message: Mapping[str, Any], fields: Sequence[str], secret: str) -> str:
    """The message's checksum when its `MaXacThuc` is that (compared in constant time); the
    empty string when it is not, or when a signed field cannot be written."""
    given = message.get("MaXacThuc")
    try:
        expected = checksum(message, fields, secret)
    except TypeError:
        return ""
    if isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode()):
        return expected
    return ""


def read_ipn(
    body: bytes, *, secret: str, partner_code: str, max_age_s: float, now: float | None
) -> PaymentNotification:
    """The platform's IPN callback, verified (see `PaymentAdapter.parse_notification`)."""
    try:
        message = orjson.loads(body)  # nesting past its depth limit is an error too
    except orjson.JSONDecodeError:
        raise InvalidJson("the callback is not JSON") from None
    if not isinstance(message, dict) or message.get("LoaiBanTin") != "IPN":
        raise SchemaViolation("the callback is not the platform's IPN message")
    expected = verified_checksum(message, IPN_SIGNED, secret)
    partner_ok = message.get("MaDoiTac") == partner_code
    if not (partner_ok and expected):
        raise InvalidSignature(log_context={"partner_ok": partner_ok})
    try:
        occurred_at = parse_vietnam_time(message.get("ThoiGianGD"))
        amount = message.get("SoTien")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError("SoTien is not an integer")
        code = message.get("MaLoi")
        note = PaymentNotification(
            reference=message.get("MaThamChieu"),  # type: ignore[arg-type]
            transaction_id=message.get("MaGiaoDich"),  # type: ignore[arg-type]
            amount=amount,
            status="paid" if code == "00" else "failed",
            occurred_at=occurred_at,
            error_code=code,  # type: ignore[arg-type]
            message_id=expected,
        )
    except (ValueError, ValidationError) as exc:
        raise SchemaViolation(
            "the callback does not have the expected shape",
            log_context={"cause": type(exc).__name__},
        ) from None
    current = time.time() if now is None else now
    age = current - occurred_at.timestamp()
    if abs(age) > max_age_s:
        raise StaleMessage(log_context={"age_s": round(age)})
    return note


def reply_json(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when it is not one (to be judged by its status)."""
    try:
        return response_json(response)
    except UpstreamBadResponse:
        return None


def vietnam_time(moment: dt.datetime) -> str:
    """A moment as the platform writes it: yyyyMMddHHmmss in Vietnam (a naive one is UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(VIETNAM).strftime(TIME_FORMAT)


def parse_vietnam_time(value: Any) -> dt.datetime:
    """The moment a yyyyMMddHHmmss field names, in Vietnam; ValueError when it is not one."""
    if not isinstance(value, str) or len(value) != 14 or not value.isascii() or not value.isdigit():
        raise ValueError("ThoiGianGD is not yyyyMMddHHmmss")
    return dt.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=VIETNAM)
