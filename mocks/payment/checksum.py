"""`MaXacThuc`: the platform's checksum of a message, in both directions.

`MaXacThuc = lower-case hex SHA-256(F1 + "|" + … + "|" + Fn + "|" + secret)` over the
message's signed fields in a fixed order, each written as its JSON value's text (integers in
decimal, strings as they are, UTF-8; a missing optional field is the empty string). A plain
hash with the secret appended, not an HMAC, as the platform documents it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DOI_SOAT_REPLY",
    "DOI_SOAT_REQUEST",
    "ERROR_REPLY",
    "GET_BILL_REPLY",
    "GET_BILL_REQUEST",
    "INIT_REPLY",
    "INIT_REQUEST",
    "IPN",
    "QUERY_REPLY",
    "QUERY_REQUEST",
    "checksum",
    "field_text",
    "sign",
    "verify",
]

#: The signed fields of each message, in signing order (docs/mock-payment.md).
INIT_REQUEST = (
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
INIT_REPLY = ("MaLoi", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "UrlThanhToan")
QUERY_REQUEST = ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
QUERY_REPLY = (
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "MaGiaoDich",
    "SoTien",
    "TrangThaiGD",
    "ThoiGianThanhToan",
)
GET_BILL_REQUEST = QUERY_REQUEST
GET_BILL_REPLY = ("MaLoi", "MaDoiTac", "MaThamChieu", "SoBienLai")
DOI_SOAT_REQUEST = ("LoaiBanTin", "PhienBan", "MaDoiTac", "NgayDoiSoat", "ThoiGianGD")
DOI_SOAT_REPLY = ("MaLoi", "MaDoiTac", "NgayDoiSoat", "SoLuong")
ERROR_REPLY = ("MaLoi", "MaDoiTac")
IPN = ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaGiaoDich", "ThoiGianGD")


def field_text(value: str | int | None) -> str:
    """A signed field's text: strings as they are, integers in decimal, missing as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"a signed field is a string or an integer, not {type(value).__name__}")


def checksum(values: Sequence[str | int | None], secret: str) -> str:
    """The MaXacThuc of these field values, in the order given."""
    text = "|".join([*(field_text(v) for v in values), secret])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sign(message: Mapping[str, Any], fields: Sequence[str], secret: str) -> str:
    """The MaXacThuc of `message` over its `fields` (a field not in it signs as "")."""
    return checksum([message.get(name) for name in fields], secret)


def verify(given: str, expected: str) -> bool:
    """Whether a received MaXacThuc is the expected one, compared in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
