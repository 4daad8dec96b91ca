"""The payment platform's checksum and signed fields, written out from docs/mock-payment.md.

Tests of the mock and of the adapter sign and check messages with this, never with the
code under test, so a change of field order or format there fails the tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

PARTNER = "LGSPHUB"
SECRET = "payment-secret"

#: The signed fields of each request, in order.
SIGNED: dict[str, tuple[str, ...]] = {
    "INIT": (
        "LoaiBanTin",
        "PhienBan",
        "MaDoiTac",
        "MaThamChieu",
        "SoTien",
        "MaTienTe",
        "ThongTinGiaoDich",
        "ThoiGianGD",
        "UrlTraVe",
    ),
    "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "GET_BILL": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "DOI_SOAT": ("LoaiBanTin", "PhienBan", "MaDoiTac", "NgayDoiSoat", "ThoiGianGD"),
}
#: The signed fields of each successful reply, in order.
REPLY_SIGNED: dict[str, tuple[str, ...]] = {
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
IPN_SIGNED = (
    "LoaiBanTin",
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaGiaoDich",
    "ThoiGianGD",
)


def mac(values: Sequence[Any], secret: str = SECRET) -> str:
    """MaXacThuc of values in order: SHA-256 of them '|'-joined with the secret last."""
    text = "|".join("" if v is None else str(v) for v in values) + "|" + secret
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mac_of(message: Mapping[str, Any], names: Sequence[str], secret: str = SECRET) -> str:
    return mac([message.get(name) for name in names], secret)


def signed_init(
    reference: str, amount: int, when: str, *, partner: str = PARTNER, secret: str = SECRET
) -> dict[str, Any]:
    """A complete INIT request, signed (`when` is ThoiGianGD, yyyyMMddHHmmss)."""
    message: dict[str, Any] = {
        "LoaiBanTin": "INIT",
        "PhienBan": "1.0.6",
        "MaDoiTac": partner,
        "MaThamChieu": reference,
        "SoTien": amount,
        "MaTienTe": "VND",
        "ThongTinGiaoDich": "Lệ phí",
        "ThoiGianGD": when,
        "UrlTraVe": None,
        "ThongTinBienLai": {"MaTTHC": "1.001234", "MaHoSo": "HS-1", "HoTenNguoiNop": "A"},
    }
    message["MaXacThuc"] = mac_of(message, SIGNED["INIT"], secret)
    return message
