"""New registrations over time and the registry's change feed (biến động hộ tịch).

The mock registers births, deaths and marriages after its data set's date: at a rate set
at start-up (`event_rate_per_min`), and one at a time through `POST /_mock/events`. Each
registration adds a record to the books, so the person's records (`GET …/congdan/{id}`)
show it afterwards, and an entry to the change feed, `GET /api/v1/hotich/biendong?
tuSoThuTu=N&soLuong=M`: the entries after sequence number N, oldest first, at most M, with
the last sequence number and whether more wait (docs/mock-civil-status.md).

The registry handed in is this app's own copy (records and per-person key lists are
copied on write), so registrations never reach another app built in the same process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from hub.identifiers import make_personal_id
from mocks.civil_status.registry import BOOK_SIZE, Registry, record_key
from mocks.data import _vocab as vocab

__all__ = ["ChangeLog", "RegistrationError", "own_copy"]

#: The feed's kinds of change, by record kind.
CHANGE_KINDS = {"KS": "DANG_KY_KHAI_SINH", "KT": "DANG_KY_KHAI_TU", "KH": "DANG_KY_KET_HON"}
KIND_CODES = {"birth": "KS", "death": "KT", "marriage": "KH"}
MAX_PAGE = 500
VIETNAM = dt.timezone(dt.timedelta(hours=7))


class RegistrationError(Exception):
    """A registration the registry refuses: `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def own_copy(registry: Registry) -> Registry:
    """A registry of its own over the same records (shallow: lists are copied on write)."""
    return Registry(records=dict(registry.records), by_person=dict(registry.by_person))


class ChangeLog:
    """The registrations made since start-up, in order, numbered from 1."""

    def __init__(
        self, registry: Registry, *, clock: Callable[[], float], seed: int | None = None
    ) -> None:
        self.registry = registry
        self.entries: list[dict[str, Any]] = []
        self._clock = clock
        self._rng = random.Random(seed)
        self._numbers: dict[tuple[str, int], int] = defaultdict(int)
        for record in registry.records.values():
            year = int(record["ngayDangKy"][:4])
            key = (record["loaiHoTich"], year)
            self._numbers[key] = max(self._numbers[key], int(record["soDangKy"]))

    # -- the feed --------------------------------------------------------------------

    def page(self, after: int, limit: int) -> dict[str, Any]:
        entries = self.entries[after : after + limit] if after >= 0 else []
        last = entries[-1]["soThuTu"] if entries else after
        return {
            "danhSach": entries,
            "soThuTuCuoi": last,
            "conDuLieu": last < len(self.entries),
        }

    # -- registrations ----------------------------------------------------------------

    def register(self, kind: str, personal_id: str, spouse_id: str | None = None) -> dict[str, Any]:
        """Register a birth (to the named mother), a death or a marriage (with `spouse_id`)
        now; returns the feed entry. RegistrationError for one the books refuse."""
        code = KIND_CODES.get(kind)
        if code is None:
            raise RegistrationError(400, "kind must be birth, death or marriage")
        person = self._birth_record(personal_id)
        if self._dead(personal_id):
            raise RegistrationError(409, "this person's death is already registered")
        if code == "KT":
            fields = self._death(person)
        elif code == "KS":
            fields = self._birth(person)
        else:
            fields = self._marriage(person, self._birth_record(spouse_id or ""))
        return self._add(code, person["noiDangKy"], fields)

    def register_random(self) -> dict[str, Any] | None:
        """A registration of a random living person (the start-up rate's)."""
        people = [pid for pid in self.registry.by_person if not self._dead(pid)]
        if not people:
            return None
        kind = self._rng.choice(("birth", "death", "marriage"))
        for _ in range(20):
            first, second = self._rng.sample(people, 2)
            try:
                return self.register(kind, first, second)
            except RegistrationError:
                continue
        return None

    def _birth_record(self, personal_id: str) -> dict[str, Any]:
        for key in self.registry.by_person.get(personal_id, ()):
            record = self.registry.records[key]
            if record["loaiHoTich"] == "KS" and record.get("nksSoDinhDanh") == personal_id:
                return record
        raise RegistrationError(404, "no birth record of this personal ID")

    def _dead(self, personal_id: str) -> bool:
        return any(
            self.registry.records[key]["loaiHoTich"] == "KT"
            and self.registry.records[key].get("nktSoDinhDanh") == personal_id
            for key in self.registry.by_person.get(personal_id, ())
        )

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), VIETNAM).date()

    def _death(self, person: dict[str, Any]) -> dict[str, Any]:
        died = self._today() - dt.timedelta(days=self._rng.randint(1, 10))
        fields = {
            "nktHoTen": person["nksHoTen"],
            "nktGioiTinh": person["nksGioiTinh"],
            "nktNgaySinh": person["nksNgaySinh"],
            "nktSoDinhDanh": person["nksSoDinhDanh"],
            "nktNgayChet": died.strftime("%Y%m%d"),
            "nktNoiChet": {**person["nksNoiSinh"], "dcChiTiet": "Tại nhà"},
            "nktNguyenNhanChet": self._rng.choice(("Bệnh già", "Bệnh tim mạch", "Đột quỵ")),
        }
        for prefix in ("me", "cha"):  # a living parent declares it, if any
            parent = person.get(f"{prefix}SoDinhDanh")
            if parent and not self._dead(parent):
                fields |= {
                    "nycHoTen": person.get(f"{prefix}HoTen"),
                    "nycSoDinhDanh": parent,
                    "nycQuanHe": "Mẹ" if prefix == "me" else "Cha",
                }
                break
        return fields

    def _birth(self, mother: dict[str, Any]) -> dict[str, Any]:
        if mother["nksGioiTinh"] != "2":
            raise RegistrationError(400, "a birth is registered to the mother")
        today = self._today()
        born = today - dt.timedelta(days=self._rng.randint(1, 30))
        gender = self._rng.choice(("male", "female"))
        place = mother["nksNoiSinh"]
        while True:
            serial = self._rng.randrange(1_000_000)
            child_id = make_personal_id(place["maTinh"], gender, born.year, serial)
            if child_id not in self.registry.by_person:
                break
        family = mother["nksHoTen"].split(" ")[0]
        middle = "Văn" if gender == "male" else "Thị"
        given = self._rng.choice(vocab.GIVEN_MALE if gender == "male" else vocab.GIVEN_FEMALE)
        return {
            "nksHoTen": f"{family} {middle} {given}",
            "nksGioiTinh": "1" if gender == "male" else "2",
            "nksNgaySinh": born.strftime("%Y%m%d"),
            "nksNoiSinh": place,
            "nksDanToc": mother.get("nksDanToc", "01"),
            "nksQuocTich": mother.get("nksQuocTich", "VN"),
            "nksSoDinhDanh": child_id,
            "meHoTen": mother["nksHoTen"],
            "meSoDinhDanh": mother["nksSoDinhDanh"],
            "meNgaySinh": mother["nksNgaySinh"],
        }

    def _marriage(self, one: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
        if one["nksGioiTinh"] == other["nksGioiTinh"]:
            raise RegistrationError(400, "the spouses' genders must differ")
        if self._dead(other["nksSoDinhDanh"]):
            raise RegistrationError(409, "the spouse's death is registered")
        husband, wife = (one, other) if one["nksGioiTinh"] == "1" else (other, one)
        return {
            "chongHoTen": husband["nksHoTen"],
            "chongNgaySinh": husband["nksNgaySinh"],
            "chongSoDinhDanh": husband["nksSoDinhDanh"],
            "voHoTen": wife["nksHoTen"],
            "voNgaySinh": wife["nksNgaySinh"],
            "voSoDinhDanh": wife["nksSoDinhDanh"],
        }

    def _add(self, code: str, authority: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        today = self._today()
        self._numbers[code, today.year] += 1
        n = self._numbers[code, today.year]
        book = (n - 1) // BOOK_SIZE + 1
        key = record_key(code, today.year, book, n)
        record = {
            "maHoTich": key,
            "loaiHoTich": code,
            "soDangKy": str(n),
            "quyenSo": f"{book:02d}/{today.year}",
            "trangSo": str((n - 1) % BOOK_SIZE // 2 + 1),
            "ngayDangKy": today.strftime("%Y%m%d"),
            "noiDangKy": authority,
            **fields,
        }
        self.registry.records[key] = record
        for name, value in fields.items():
            if name.endswith("SoDinhDanh") and value:
                self.registry.by_person[value] = [*self.registry.by_person.get(value, ()), key]
        entry = {
            "soThuTu": len(self.entries) + 1,
            "loaiBienDong": CHANGE_KINDS[code],
            "thoiDiem": dt.datetime.fromtimestamp(self._clock(), VIETNAM).isoformat(),
            "maHoTich": key,
            "hoTich": record,
        }
        self.entries.append(entry)
        return entry

    async def run(self, rate_per_min: float) -> None:
        """Register random people at `rate_per_min` until cancelled."""
        while True:
            await asyncio.sleep(self._rng.expovariate(rate_per_min / 60))
            self.register_random()
