"""The platform's request messages as it reads them: each field checked against
docs/mock-payment.md, failures reported by field name only (never the value sent).

`read(message)` returns the operation with its clean fields, or the names of the fields that
are missing, of the wrong type or out of range (MaLoi "01").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from mocks.payment import checksum

__all__ = [
    "MAX_AMOUNT",
    "OPERATIONS",
    "Invalid",
    "Receipt",
    "Request",
    "partner_of",
    "read",
]

MAX_AMOUNT: Final = 10_000_000_000
MAX_URL_LENGTH: Final = 500
#: Each operation's signed request fields, in signing order.
OPERATIONS: Final[dict[str, tuple[str, ...]]] = {
    "INIT": checksum.INIT_REQUEST,
    "QUERY": checksum.QUERY_REQUEST,
    "GET_BILL": checksum.GET_BILL_REQUEST,
    "DOI_SOAT": checksum.DOI_SOAT_REQUEST,
}
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_PERSONAL_ID = re.compile(r"\d{12}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Receipt:
    """`ThongTinBienLai`: what the receipt shows besides the payment itself."""

    procedure_code: str
    dossier_id: str
    payer_name: str
    payer_personal_id: str | None


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed request; only the fields its operation uses are set."""

    operation: str
    partner: str
    given_checksum: str
    expected_fields: tuple[str | int | None, ...]  # the signed values, in signing order
    reference: str = ""
    amount: int = 0
    description: str = ""
    time: str = ""
    return_url: str | None = None
    receipt: Receipt | None = None
    day: str = ""


class Invalid(Exception):
    """The message is malformed; `fields` names what is wrong (never the values)."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class _Fields:
    """Reads fields of one JSON object, collecting the names of the bad ones."""

    def __init__(self, message: Mapping[str, Any], bad: list[str], prefix: str = "") -> None:
        self.message, self.bad, self.prefix = message, bad, prefix

    def _fail(self, name: str) -> None:
        self.bad.append(self.prefix + name)

    def text(
        self,
        name: str,
        low: int,
        high: int,
        *,
        optional: bool = False,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        """A string of low..high characters; None (or "") for an absent optional field."""
        value = self.message.get(name)
        if optional and value in (None, ""):
            return None
        if not isinstance(value, str) or not low <= len(value) <= high:
            self._fail(name)
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self._fail(name)
            return None
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.message.get(name)
        if type(value) is not int or not low <= value <= high:
            self._fail(name)
            return 0
        return value

    def moment(self, name: str, fmt: str, digits: int) -> str:
        """A `yyyyMMdd[HHmmss]` string that is a real date (and time)."""
        value = self.text(name, digits, digits) or ""
        if value:
            try:
                if not value.isascii() or not value.isdigit():
                    raise ValueError
                dt.datetime.strptime(value, fmt)
            except ValueError:
                self._fail(name)
                return ""
        return value

    def url(self, name: str) -> str | None:
        """An optional absolute http(s) URL."""
        value = self.text(name, 1, MAX_URL_LENGTH, optional=True)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            self._fail(name)
            return None
        return value


def _receipt(message: Mapping[str, Any], bad: list[str]) -> Receipt | None:
    raw = message.get("ThongTinBienLai")
    if not isinstance(raw, dict):
        bad.append("ThongTinBienLai")
        return None
    fields = _Fields(raw, bad, "ThongTinBienLai.")
    return Receipt(
        procedure_code=fields.text("MaTTHC", 1, 50) or "",
        dossier_id=fields.text("MaHoSo", 1, 50) or "",
        payer_name=fields.text("HoTenNguoiNop", 1, 100) or "",
        payer_personal_id=fields.text(
            "SoDinhDanhNguoiNop", 12, 12, optional=True, pattern=_PERSONAL_ID
        ),
    )


def partner_of(message: Any) -> str:
    """`MaDoiTac` as the request sent it, for signing an error reply ("" when unusable)."""
    if isinstance(message, dict) and isinstance(message.get("MaDoiTac"), str):
        return str(message["MaDoiTac"])
    return ""


def read(message: Any) -> Request:
    """The request in `message` (a parsed JSON value); raises Invalid naming bad fields."""
    if not isinstance(message, dict):
        raise Invalid(["(body)"])
    operation = message.get("LoaiBanTin")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise Invalid(["LoaiBanTin"])
    bad: list[str] = []
    fields = _Fields(message, bad)
    fields.text("PhienBan", 1, 20)
    partner = fields.text("MaDoiTac", 1, 50) or ""
    values: dict[str, Any] = {"time": fields.moment("ThoiGianGD", "%Y%m%d%H%M%S", 14)}
    if operation == "INIT":
        values["reference"] = fields.text("MaThamChieu", 1, 50, pattern=_VISIBLE_ASCII) or ""
        values["amount"] = fields.integer("SoTien", 1, MAX_AMOUNT)
        if message.get("MaTienTe") != "VND":
            bad.append("MaTienTe")
        values["description"] = fields.text("ThongTinGiaoDich", 1, 200) or ""
        values["return_url"] = fields.url("UrlTraVe")
        values["receipt"] = _receipt(message, bad)
    elif operation in ("QUERY", "GET_BILL"):
        values["reference"] = fields.text("MaThamChieu", 1, 50, pattern=_VISIBLE_ASCII) or ""
    else:
        values["day"] = fields.moment("NgayDoiSoat", "%Y%m%d", 8)
    given = message.get("MaXacThuc")
    if not isinstance(given, str) or not given:
        bad.append("MaXacThuc")
    if bad:
        raise Invalid(bad)
    signed = tuple(message.get(name) for name in OPERATIONS[operation])
    return Request(
        operation=operation,
        partner=partner,
        given_checksum=str(given),
        expected_fields=signed,
        **values,
    )
