"""The civil-status books the mock serves, derived from the shared synthetic population.

Every record is built from `mocks.data` citizens so the two mocks agree: each citizen has a
birth record (KS) with their name, gender, birth date and parents; each married couple one
marriage record (KH); each widowed citizen a marriage record with a spouse outside the data
set and that spouse's death record (KT) declared by the widow(er); each divorced citizen a
marriage record carrying the court's divorce note; and, for a share of the older citizens
whose parents are both outside the data set, one parent's death record declared by the
citizen. Nobody in the population data set is dead: the population mock serves them as
living people.

Records are plain dicts in the upstream's own field names (docs/mock-civil-status.md). The
draws come from one `random.Random` per citizen and purpose, seeded from the data-set seed
and the personal ID, so a record never depends on the order in which others were built.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hub.identifiers import Gender, make_personal_id
from hub.provinces import province_name
from mocks.data import Address, Citizen
from mocks.data import _vocab as vocab
from mocks.data._geography import Geography, Ward
from mocks.data.generate import SEED as DATA_SEED

__all__ = ["AS_OF", "BOOK_SIZE", "KINDS", "Registry", "build_registry", "record_key"]

AS_OF = dt.date(2024, 12, 31)  # the data set is "as of" 1 January 2025
BOOK_SIZE = 200  # entries per book (quyển), two per page
KINDS = ("KS", "KH", "KT")
_GENDER_CODE = {"male": "1", "female": "2"}
_CAUSES_OLD = ("Bệnh già", "Bệnh già", "Bệnh tim mạch", "Đột quỵ", "Bệnh phổi")
_CAUSES_YOUNG = ("Bệnh tim mạch", "Ung thư", "Tai nạn giao thông", "Đột quỵ", "Bệnh hiểm nghèo")


def record_key(kind: str, year: int, book: int, number: int) -> str:
    """The mock's URL-safe lookup key of a record, e.g. `KS-2005-01-000123`."""
    return f"{kind}-{year}-{book:02d}-{number:06d}"


@dataclass
class Registry:
    """Every record by key, and the keys each personal ID appears in (any role)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_person: dict[str, list[str]] = field(default_factory=dict)

    def of_person(self, personal_id: str) -> list[dict[str, Any]]:
        """The records naming a person, oldest registration first."""
        return [self.records[key] for key in self.by_person.get(personal_id, ())]


@functools.cache
def _wards() -> dict[str, Ward]:
    # The generator draws its map first from its seeded source: the same call rebuilds it,
    # names included, so registering authorities carry the ward names the data set used.
    geography = Geography(random.Random(DATA_SEED))
    return {ward.code: ward for wards in geography.wards.values() for ward in wards}


def _authority(place: Address) -> dict[str, str]:
    ward = _wards().get(place.ward_code)
    name = f"UBND {ward.kind} {ward.name}" if ward else f"UBND cấp xã {place.ward_code}"
    return {
        "maCoQuan": f"{place.province_code}{place.district_code}{place.ward_code}",
        "tenCoQuan": f"{name}, {province_name(place.province_code)}",
        "maTinh": place.province_code,
        "maHuyen": place.district_code,
        "maXa": place.ward_code,
    }


def _place(place: Address, detail: str = "") -> dict[str, str]:
    return {
        "maTinh": place.province_code,
        "maHuyen": place.district_code,
        "maXa": place.ward_code,
        "dcChiTiet": detail,
    }


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _between(rng: random.Random, low: dt.date, high: dt.date) -> dt.date:
    high = min(high, AS_OF)
    if low >= high:
        return min(low, AS_OF)
    return low + dt.timedelta(days=rng.randrange((high - low).days + 1))


def _birthday(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class _Outsider:
    """Someone named in the books but not in the population data set."""

    full_name: str
    gender: Gender
    date_of_birth: dt.date
    personal_id: str | None


class _Builder:
    def __init__(self, citizens: Iterable[Citizen], seed: int) -> None:
        self.citizens = tuple(citizens)
        self.index = {c.personal_id: c for c in self.citizens}
        self.seed = seed
        self.used_ids = set(self.index)
        self.drafts: list[tuple[str, dt.date, dict[str, Any]]] = []
        self.children: dict[str, list[Citizen]] = defaultdict(list)
        for c in self.citizens:
            for parent in (c.father, c.mother):
                if parent is not None and parent.personal_id:
                    self.children[parent.personal_id].append(c)

    def rng(self, citizen: Citizen, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}:{citizen.personal_id}:{purpose}")

    def add(self, kind: str, registered: dt.date, place: Address, fields: dict[str, Any]) -> None:
        record = {"ngayDangKy": _ymd(registered), "noiDangKy": _authority(place), **fields}
        self.drafts.append((kind, registered, record))

    # -- people outside the data set ---------------------------------------------------

    def outsider(
        self,
        rng: random.Random,
        name: str | None,
        gender: Gender,
        year: int,
        province: str,
        *,
        with_id: bool,
    ) -> _Outsider:
        year = max(1900, min(year, AS_OF.year - 18))
        dob = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
        if name is None:
            family = rng.choice([n for n, _ in vocab.FAMILY_NAMES])
            middle = "Văn" if gender == "male" else "Thị"
            given = rng.choice(vocab.GIVEN_MALE if gender == "male" else vocab.GIVEN_FEMALE)
            name = f"{family} {middle} {given}"
        personal_id = None
        while with_id and (personal_id is None or personal_id in self.used_ids):
            personal_id = make_personal_id(province, gender, year, rng.randrange(1_000_000))
        if personal_id:
            self.used_ids.add(personal_id)
        return _Outsider(name, gender, dob, personal_id)

    def absent_parent(self, citizen: Citizen) -> str | None:
        """The name of the other parent of the citizen's children, when only named there."""
        for child in self.children.get(citizen.personal_id, ()):
            for parent in (child.father, child.mother):
                if parent is not None and parent.personal_id is None:
                    return parent.full_name
        return None

    def marriage_date(
        self, rng: random.Random, husband_dob: dt.date, wife_dob: dt.date, kids: list[Citizen]
    ) -> dt.date:
        legal = max(_birthday(husband_dob, 20), _birthday(wife_dob, 18))
        day = _between(rng, legal, _birthday(legal, 5))
        if kids:
            eldest = min(k.date_of_birth for k in kids)
            day = min(day, eldest - dt.timedelta(days=rng.randint(200, 700)))
        return min(max(day, legal), AS_OF)

    # -- records ---------------------------------------------------------------------

    def birth(self, c: Citizen) -> None:
        rng = self.rng(c, "KS")
        registered = _between(
            rng, c.date_of_birth + dt.timedelta(days=1), c.date_of_birth + dt.timedelta(days=60)
        )
        ward = _wards().get(c.birth_registration_place.ward_code)
        clinic = f"Trạm y tế {ward.kind} {ward.name}" if ward else ""
        fields: dict[str, Any] = {
            "nksHoTen": c.full_name,
            "nksGioiTinh": _GENDER_CODE[c.gender],
            "nksNgaySinh": _ymd(c.date_of_birth),
            "nksNoiSinh": _place(c.birth_registration_place, clinic),
            "nksDanToc": c.ethnicity_code,
            "nksQuocTich": c.nationality,
            "nksSoDinhDanh": c.personal_id,
        }
        for prefix, ref in (("cha", c.father), ("me", c.mother)):
            if ref is None:
                continue
            fields[f"{prefix}HoTen"] = ref.full_name
            fields[f"{prefix}SoDinhDanh"] = ref.personal_id
            known = self.index.get(ref.personal_id or "")
            fields[f"{prefix}NgaySinh"] = _ymd(known.date_of_birth) if known else None
        self.add("KS", registered, c.birth_registration_place, fields)

    def couple(self, husband: Citizen, wife: Citizen) -> None:
        rng = self.rng(husband, "KH")
        kids = self.children.get(husband.personal_id, [])
        registered = self.marriage_date(rng, husband.date_of_birth, wife.date_of_birth, kids)
        self.add("KH", registered, wife.permanent_address, self.spouses(husband, wife))

    @staticmethod
    def spouses(husband: Citizen | _Outsider, wife: Citizen | _Outsider) -> dict[str, Any]:
        return {
            "chongHoTen": husband.full_name,
            "chongNgaySinh": _ymd(husband.date_of_birth),
            "chongSoDinhDanh": husband.personal_id,
            "voHoTen": wife.full_name,
            "voNgaySinh": _ymd(wife.date_of_birth),
            "voSoDinhDanh": wife.personal_id,
        }

    def former_spouse(
        self, c: Citizen, *, deceased: bool
    ) -> tuple[_Outsider, dt.date, list[Citizen]]:
        """The spouse of a widowed or divorced citizen, and the marriage's registration date."""
        rng = self.rng(c, "KH")
        gender: Gender = "female" if c.gender == "male" else "male"
        gap = rng.randint(0, 6)
        year = c.date_of_birth.year + (gap if gender == "female" else -gap)
        province = c.hometown.province_code
        spouse = self.outsider(rng, self.absent_parent(c), gender, year, province, with_id=deceased)
        husband, wife = (c, spouse) if c.gender == "male" else (spouse, c)
        kids = self.children.get(c.personal_id, [])
        registered = self.marriage_date(rng, husband.date_of_birth, wife.date_of_birth, kids)
        self.add(
            "KH",
            registered,
            c.permanent_address,
            self.spouses(husband, wife) | self.divorce(c, rng, registered, kids, deceased),
        )
        return spouse, registered, kids

    def divorce(
        self, c: Citizen, rng: random.Random, married: dt.date, kids: list[Citizen], deceased: bool
    ) -> dict[str, Any]:
        if deceased:
            return {}
        low = max([_birthday(married, 1)] + [k.date_of_birth + dt.timedelta(days=30) for k in kids])
        effective = _between(rng, low, _birthday(low, 8))
        court = f"Tòa án nhân dân {province_name(c.permanent_address.province_code)}"
        number = f"{rng.randint(1, 450)}/{effective.year}/QĐST-HNGĐ"
        return {
            "ghiChuLyHon": {
                "soQuyetDinh": number,
                "tenToaAn": court,
                "ngayHieuLuc": _ymd(effective),
            }
        }

    def widowed(self, c: Citizen) -> None:
        spouse, married, kids = self.former_spouse(c, deceased=True)
        rng = self.rng(c, "KT")
        low = max(
            [married + dt.timedelta(days=30)]
            + [k.date_of_birth - dt.timedelta(days=200) for k in kids]
        )
        died = _between(rng, low, _birthday(spouse.date_of_birth, 95))
        relation = "Vợ" if c.gender == "female" else "Chồng"
        self.death(spouse, died, c, relation, rng)

    def parent_death(self, c: Citizen) -> None:
        """For a share of older citizens whose parents are both outside the data set."""
        if c.father is None or c.mother is None or c.father.personal_id or c.mother.personal_id:
            return
        rng = self.rng(c, "KT-parent")
        age = AS_OF.year - c.date_of_birth.year
        share = 0.6 if age >= 60 else 0.3 if age >= 45 else 0.1 if age >= 30 else 0.02
        if rng.random() >= share:
            return
        mother = rng.random() < 0.35
        ref = c.mother if mother else c.father
        gender: Gender = "female" if mother else "male"
        year = c.date_of_birth.year - (rng.randint(19, 30) if mother else rng.randint(23, 35))
        parent = self.outsider(
            rng, ref.full_name, gender, year, c.hometown.province_code, with_id=True
        )
        low = max(c.date_of_birth + dt.timedelta(days=365), _birthday(parent.date_of_birth, 40))
        died = _between(rng, low, _birthday(parent.date_of_birth, 100))
        self.death(parent, died, c, "Con", rng)

    def death(
        self,
        person: _Outsider,
        died: dt.date,
        declarant: Citizen,
        relation: str,
        rng: random.Random,
    ) -> None:
        age = died.year - person.date_of_birth.year
        causes = _CAUSES_OLD if age >= 70 else _CAUSES_YOUNG
        home = declarant.permanent_address
        fields = {
            "nktHoTen": person.full_name,
            "nktGioiTinh": _GENDER_CODE[person.gender],
            "nktNgaySinh": _ymd(person.date_of_birth),
            "nktSoDinhDanh": person.personal_id,
            "nktNgayChet": _ymd(died),
            "nktNoiChet": _place(home, home.detail or "Tại nhà"),
            "nktNguyenNhanChet": rng.choice(causes),
            "nycHoTen": declarant.full_name,
            "nycSoDinhDanh": declarant.personal_id,
            "nycQuanHe": relation,
        }
        registered = _between(rng, died + dt.timedelta(days=1), died + dt.timedelta(days=15))
        self.add("KT", registered, home, fields)

    # -- numbering -------------------------------------------------------------------

    def numbered(self) -> Iterator[dict[str, Any]]:
        """Records in registration order, numbered per kind and year into books of pages."""
        counters: dict[tuple[str, int], int] = defaultdict(int)
        order = sorted(range(len(self.drafts)), key=lambda i: (self.drafts[i][1], i))
        for i in order:
            kind, registered, fields = self.drafts[i]
            counters[kind, registered.year] += 1
            n = counters[kind, registered.year]
            book = (n - 1) // BOOK_SIZE + 1
            yield {
                "maHoTich": record_key(kind, registered.year, book, n),
                "loaiHoTich": kind,
                "soDangKy": str(n),
                "quyenSo": f"{book:02d}/{registered.year}",
                "trangSo": str((n - 1) % BOOK_SIZE // 2 + 1),
                **fields,
            }


_ROLE_IDS = (
    "nksSoDinhDanh",
    "chaSoDinhDanh",
    "meSoDinhDanh",
    "chongSoDinhDanh",
    "voSoDinhDanh",
    "nktSoDinhDanh",
    "nycSoDinhDanh",
)


def build_registry(citizens: Iterable[Citizen], seed: int = DATA_SEED) -> Registry:
    """Every record of the citizens, numbered, and indexed by the personal IDs they name."""
    builder = _Builder(citizens, seed)
    for c in builder.citizens:
        builder.birth(c)
        if (
            c.marital_status == "married"
            and c.gender == "male"
            and c.spouse
            and c.spouse.personal_id
        ):
            builder.couple(c, builder.index[c.spouse.personal_id])
        elif c.marital_status == "widowed":
            builder.widowed(c)
        elif c.marital_status == "divorced":
            builder.former_spouse(c, deceased=False)
        builder.parent_death(c)
    registry = Registry()
    for record in builder.numbered():
        key = record["maHoTich"]
        registry.records[key] = record
        for role in _ROLE_IDS:
            personal_id = record.get(role)
            if personal_id and key not in registry.by_person.get(personal_id, ()):
                registry.by_person.setdefault(personal_id, []).append(key)
    return registry
