"""Status changes over time and the register's change feed (biến động tình trạng pháp lý).

The mock changes enterprises' legal status after its data set's date: at a rate set at
start-up (`event_rate_per_min`), and one at a time through `POST /_mock/events`
(`{"enterprise_code", "status"}`). Each change replaces the enterprise in the app's own
register, so `chiTietDoanhNghiep` answers the new status afterwards, and adds an entry to
`GET /apiDKKD/DoanhNghiep/bienDong?tuSoThuTu=N&soLuong=M`: the entries after sequence
number N, oldest first, at most M (docs/mock-business-registration.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Mapping
from typing import Any

from mocks.business_registration.data import Enterprise, Register

__all__ = ["MAX_PAGE", "StatusChangeError", "StatusLog"]

MAX_PAGE = 500
VIETNAM = dt.timezone(dt.timedelta(hours=7))
#: The moves a random change makes from each status.
_NEXT = {
    "active": ("suspended", "dissolving"),
    "suspended": ("active", "dissolving"),
    "dissolving": ("dissolved",),
}


class StatusChangeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _with(register: Register, new: Enterprise) -> Register:
    """The register with one enterprise replaced (its look-up indexes too)."""
    old = register.by_code[new.code]
    enterprises = tuple(new if e is old else e for e in register.enterprises)
    by_representative = {
        pid: tuple(new if e is old else e for e in found)
        for pid, found in register.by_representative.items()
    }
    return dataclasses.replace(
        register,
        enterprises=enterprises,
        by_code={**register.by_code, new.code: new},
        by_representative=by_representative,
    )


class StatusLog:
    """The status changes made since start-up, numbered from 1."""

    def __init__(
        self,
        read: Callable[[], Register],
        write: Callable[[Register, str], None],
        codes: Mapping[str, tuple[str, str]],
        *,
        clock: Callable[[], float],
        seed: int | None = None,
    ) -> None:
        self._read, self._write, self._codes = read, write, codes
        self._clock, self._rng = clock, random.Random(seed)
        self.entries: list[dict[str, Any]] = []

    def page(self, after: int, limit: int) -> dict[str, Any]:
        entries = self.entries[after : after + limit]
        last = entries[-1]["SoThuTu"] if entries else after
        return {"DanhSach": entries, "SoThuTuCuoi": last, "ConDuLieu": last < len(self.entries)}

    def change(self, code: str, status: str) -> dict[str, Any]:
        if status not in self._codes:
            raise StatusChangeError(400, f"status must be one of {', '.join(self._codes)}")
        register = self._read()
        enterprise = register.by_code.get(code)
        if enterprise is None:
            raise StatusChangeError(404, "no enterprise with this code")
        if enterprise.status == status:
            raise StatusChangeError(409, "the enterprise already has this status")
        self._write(_with(register, dataclasses.replace(enterprise, status=status)), code)
        before, after = self._codes[enterprise.status], self._codes[status]
        entry = {
            "SoThuTu": len(self.entries) + 1,
            "MaSoDoanhNghiep": code,
            "TenTiengViet": enterprise.name,
            "MaTinh": enterprise.head_office.province_code,
            "TinhTrangCu": {"MaTinhTrang": before[0], "TenTinhTrang": before[1]},
            "TinhTrangMoi": {"MaTinhTrang": after[0], "TenTinhTrang": after[1]},
            "ThoiDiem": dt.datetime.fromtimestamp(self._clock(), VIETNAM).isoformat(),
        }
        self.entries.append(entry)
        return entry

    def change_random(self) -> dict[str, Any] | None:
        movable = [e for e in self._read().enterprises if e.status in _NEXT]
        if not movable:
            return None
        enterprise = self._rng.choice(movable)
        return self.change(enterprise.code, self._rng.choice(_NEXT[enterprise.status]))

    async def run(self, rate_per_min: float) -> None:
        while True:
            await asyncio.sleep(self._rng.expovariate(rate_per_min / 60))
            self.change_random()
