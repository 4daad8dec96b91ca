"""Things to pay for: sample public-service procedures with their fees, and payers.

The procedures are common ones of the National Public Service Portal with fees (lệ phí)
typical of a province; the codes are synthetic, in the portal's `1.001234` format. Payers
are adults drawn (seeded, so every run lists the same ones) from the shared population data
set, so the hub can look them up too.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from typing import Any, Final, NamedTuple

from mocks.data import Citizen, load_citizens

__all__ = ["PROCEDURES", "Procedure", "sample_records"]

MAX_RECORDS: Final = 1000
_ADULT_ON = dt.date(2025, 1, 1)
_SEED = 8105


class Procedure(NamedTuple):
    """A public-service procedure: its code, its name and its fee in VND."""

    code: str
    name: str
    fee: int


PROCEDURES: Final[tuple[Procedure, ...]] = tuple(
    Procedure(*p)
    for p in (
        ("1.001234", "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", 200_000),
        ("1.004884", "Cấp bản sao trích lục hộ tịch", 8_000),
        ("1.000894", "Đăng ký kết hôn có yếu tố nước ngoài", 1_500_000),
        ("1.002309", "Đổi giấy phép lái xe do ngành Giao thông vận tải cấp", 135_000),
        ("1.003355", "Cấp hộ chiếu phổ thông lần đầu", 200_000),
        ("2.001610", "Đăng ký thành lập hộ kinh doanh", 100_000),
        ("1.001612", "Đăng ký thành lập công ty trách nhiệm hữu hạn một thành viên", 50_000),
        ("1.004194", "Đăng ký thường trú", 20_000),
        ("2.000815", "Chứng thực bản sao từ bản chính giấy tờ, văn bản", 2_000),
        ("1.002255", "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ", 75_000),
        (
            "1.003003",
            "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất",
            30_000,
        ),
        ("1.000656", "Cấp lại thẻ Căn cước", 70_000),
        ("2.001955", "Cấp Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", 700_000),
        ("1.001776", "Cấp chứng nhận đăng ký xe mô tô, xe gắn máy lần đầu", 1_000_000),
        ("1.000105", "Cấp Giấy phép bán lẻ sản phẩm rượu", 1_200_000),
    )
)


def _adult(citizen: Citizen) -> bool:
    born = citizen.date_of_birth
    birthday_to_come = (_ADULT_ON.month, _ADULT_ON.day) < (born.month, born.day)
    return _ADULT_ON.year - born.year - birthday_to_come >= 18


@functools.cache
def _payers() -> tuple[Citizen, ...]:
    adults = [c for c in load_citizens() if _adult(c)]
    return tuple(random.Random(_SEED).sample(adults, min(MAX_RECORDS, len(adults))))


def sample_records(limit: int) -> list[dict[str, Any]]:
    """`limit` (≤ MAX_RECORDS) procedures, each with a payer; the same on every call."""
    payers = _payers()
    return [
        {
            "procedure_code": procedure.code,
            "procedure_name": procedure.name,
            "amount": procedure.fee,
            "payer_name": payer.full_name,
            "payer_personal_id": payer.personal_id,
        }
        for i, payer in enumerate(payers[:limit])
        for procedure in (PROCEDURES[i % len(PROCEDURES)],)
    ]
