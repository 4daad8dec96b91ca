"""The synthetic business register the mock serves, generated deterministically at load time.

`load_register()` builds it once per process (2,400 head offices and about 350 branches, in
about 0.15 s on top of the citizens' own load) from one `random.Random(SEED)`,
drawing only from tuples and from the citizens in file order, so every run yields the same
register. It agrees with the population data set (mocks.data):

- every legal representative is a citizen (same personal ID, full name and birth date) who
  was at least 20 at registration; most citizens represent nothing, some several enterprises;
  nobody owns two private enterprises (the Law on Enterprises allows one);
- head offices lie in real wards of the population mock's map (the generator rebuilds its
  `Geography` from the same seed), 70 % in the representative's own province;
- enterprise codes are 10-digit tax codes with python-stdnum's check digit; the first two
  digits are the tax department's for the five centrally-run cities (01 Hà Nội, 02 Hải Phòng,
  03 TP Hồ Chí Minh, 04 Đà Nẵng, 18 Cần Thơ) and synthetic elsewhere, the next two grow with
  the registration year (00 in 1995 … 10 in 2024), and codes whose check would be 10 are
  skipped; branches are the parent's code with `-001`, `-002` …, each with its own seat in
  another province, the parent's representatives and no charter capital.

Values are plain English keys and Vietnamese text; the mock's app renders them into the
upstream's field names (docs/mock-business-registration.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from stdnum.vn import mst

from hub.provinces import PROVINCES
from mocks.business_registration import _vocab as vocab
from mocks.data import Address, Citizen, load_citizens
from mocks.data._geography import Geography
from mocks.data.generate import SEED as POPULATION_SEED

__all__ = [
    "AS_OF",
    "SEED",
    "BusinessLine",
    "Enterprise",
    "Register",
    "Representative",
    "build_register",
    "load_register",
]

SEED = 20_250_704
HEAD_OFFICES = 2_400
AS_OF = dt.date(2025, 1, 1)  # the population data set's "as of" date
FIRST_REGISTRATION = dt.date(1995, 1, 1)
MIN_FOUNDER_AGE = 20
BRANCH_SHARE = 0.14

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Representative:
    """A legal representative: a citizen of the population data set and their title."""

    personal_id: str
    full_name: str
    date_of_birth: dt.date
    position: str


@dataclass(frozen=True, slots=True)
class BusinessLine:
    """A registered line of business (VSIC 2018 level 4)."""

    code: str
    name: str
    main: bool


@dataclass(frozen=True, slots=True)
class Enterprise:
    """A head office or a branch (`legal_form` "branch", code `…-NNN`)."""

    code: str
    name: str
    name_en: str | None
    short_name: str | None
    legal_form: str
    status: str
    registered_on: dt.date
    representatives: tuple[Representative, ...]
    head_office: Address
    business_lines: tuple[BusinessLine, ...]
    charter_capital_vnd: int | None

    @property
    def is_branch(self) -> bool:
        """True for a branch record."""
        return self.legal_form == "branch"


@dataclass(frozen=True)
class Register:
    """The whole register with its two look-up indexes (read-only)."""

    enterprises: tuple[Enterprise, ...]
    by_code: Mapping[str, Enterprise]
    by_representative: Mapping[str, tuple[Enterprise, ...]]


def ascii_upper(text: str) -> str:
    """Vietnamese text without diacritics, upper-case ("HOÀNG PHÁT" → "HOANG PHAT")."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _code_prefixes() -> dict[str, str]:
    """Two leading digits per province: the real ones for the five cities, synthetic else."""
    prefixes = dict(vocab.CITY_CODE_PREFIX)
    taken = set(prefixes.values())
    free = (f"{n:02d}" for n in range(5, 100) if f"{n:02d}" not in taken)
    for code in sorted(PROVINCES):
        if code not in prefixes:
            prefixes[code] = next(free)
    return prefixes


class _Generator:
    """Draws enterprises one at a time from one seeded random source."""

    def __init__(self, citizens: Sequence[Citizen]) -> None:
        self.rng = random.Random(SEED)
        self.geo = Geography(random.Random(POPULATION_SEED))  # the population mock's wards
        latest_birth = _add_years(AS_OF, -MIN_FOUNDER_AGE)
        self.adults = tuple(c for c in citizens if c.date_of_birth <= latest_birth)
        self.prefixes = _code_prefixes()
        self.codes: set[str] = set()
        self.names: set[str] = set()
        self.private_owners: set[str] = set()

    def pick(self, weighted: Sequence[tuple[T, int]]) -> T:
        values = [value for value, _ in weighted]
        return self.rng.choices(values, [weight for _, weight in weighted])[0]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- people ----------------------------------------------------------------------------
    def founders(self) -> list[Citizen]:
        """One entry per enterprise to found: most founders once, a few several times."""
        ranked = sorted(self.adults, key=lambda c: self.rng.random() ** (1 / self._weight(c)))
        founders: list[Citizen] = []
        for citizen in reversed(ranked):
            founders += [citizen] * self.pick(((1, 82), (2, 12), (3, 4), (4, 1), (5, 1)))
            if len(founders) >= HEAD_OFFICES:
                break
        self.rng.shuffle(founders)
        return founders[:HEAD_OFFICES]

    @staticmethod
    def _weight(citizen: Citizen) -> float:
        age = AS_OF.year - citizen.date_of_birth.year
        return 3.0 if 28 <= age <= 65 else 0.2 if age > 80 else 1.0

    def co_representative(self, first: Citizen, since: dt.date) -> Citizen:
        latest_birth = _add_years(since, -MIN_FOUNDER_AGE)
        while True:
            other = self.rng.choice(self.adults)
            if other is not first and other.date_of_birth <= latest_birth:
                return other

    # -- one head office -------------------------------------------------------------------
    def head_office(self, founder: Citizen) -> Enterprise:
        form = self.pick([(f[0], f[1]) for f in vocab.LEGAL_FORMS])
        if form == "private":
            if founder.personal_id in self.private_owners:
                form = "llc1"
            else:
                self.private_owners.add(founder.personal_id)
        _, _, prefix, en_suffix, short_suffix = next(f for f in vocab.LEGAL_FORMS if f[0] == form)
        registered_on = self.registration_date(founder)
        province = founder.current_address.province_code
        if not self.chance(0.7):
            province = self.pick(vocab.BUSINESS_CENTRES)
        sector = self.pick([(s, s[0]) for s in vocab.SECTORS])
        words, words_en = self.rng.choice(sector[1])
        if self.chance(0.25):  # a bare trade name, without the sector words
            words = words_en = ""
        distinct, name = self.name(prefix, words)
        name_en = short = None
        if en_suffix is not None and self.chance(0.8):
            middle = f" {words_en}" if words_en else ""
            name_en = f"{ascii_upper(distinct)}{middle} {en_suffix}"
            if short_suffix is not None and self.chance(0.7):
                short = f"{ascii_upper(distinct)} {short_suffix}"
        return Enterprise(
            code=self.code(province, registered_on.year),
            name=name,
            name_en=name_en,
            short_name=short,
            legal_form=form,
            status="active" if registered_on.year >= 2024 else self.pick(vocab.STATUSES),
            registered_on=registered_on,
            representatives=self.representatives(form, founder, registered_on),
            head_office=self.address(province),
            business_lines=self.business_lines(sector[2]),
            charter_capital_vnd=None
            if form == "private"
            else self.rng.choice(vocab.CAPITALS[form]),
        )

    def registration_date(self, founder: Citizen) -> dt.date:
        earliest = max(FIRST_REGISTRATION, _add_years(founder.date_of_birth, MIN_FOUNDER_AGE))
        span = (AS_OF - earliest).days - 1
        # Skewed towards recent years: most enterprises alive today were founded lately.
        return earliest + dt.timedelta(days=int(span * (1 - self.rng.random() ** 1.6)))

    def name(self, prefix: str, words: str) -> tuple[str, str]:
        """(distinctive part, full Vietnamese name), unique in the register."""
        while True:
            first = self.rng.choice(vocab.NAME_FIRST)
            second = self.rng.choice(vocab.NAME_SECOND)
            if first == second:
                continue
            distinct = f"{first} {second}"
            name = " ".join(part for part in (prefix, words, distinct) if part)
            if name not in self.names:
                self.names.add(name)
                return distinct, name

    def representatives(
        self, form: str, founder: Citizen, since: dt.date
    ) -> tuple[Representative, ...]:
        titles = vocab.POSITIONS[form]
        people = [founder]
        if len(titles) > 1 and self.chance(0.2):
            people.append(self.co_representative(founder, since))
        return tuple(
            Representative(c.personal_id, c.full_name, c.date_of_birth, title)
            for c, title in zip(people, titles, strict=False)
        )

    def business_lines(self, sector_codes: tuple[str, ...]) -> tuple[BusinessLine, ...]:
        main = sector_codes[0] if self.chance(0.7) else self.rng.choice(sector_codes)
        others = self.rng.sample(sector_codes, self.rng.randint(0, len(sector_codes) - 1))
        others += self.rng.sample(tuple(vocab.VSIC), self.rng.randint(0, 4))
        codes = sorted({main, *others})
        return tuple(BusinessLine(c, vocab.VSIC[c], c == main) for c in codes)

    def address(self, province: str) -> Address:
        ward = self.geo.ward(province)
        return Address(province, ward.district_code, ward.code, self.geo.detail(ward))

    def code(self, province: str, year: int) -> str:
        """A new enterprise code: province prefix, year bucket, serial, check digit."""
        bucket = min(10, max(0, (year - 1995) * 10 // 29))
        while True:
            body = f"{self.prefixes[province]}{bucket:02d}{self.rng.randrange(100_000):05d}"
            check = mst.calc_check_digit(body)
            code = body + check
            # A check of 10 has no digit; stdnum also refuses seven zeros after the prefix.
            if len(check) == 1 and body[2:9] != "0000000" and code not in self.codes:
                self.codes.add(code)
                return code

    # -- branches --------------------------------------------------------------------------
    def branches(self, head: Enterprise) -> list[Enterprise]:
        if head.legal_form not in ("llc", "llc1", "jsc") or head.registered_on.year >= 2023:
            return []
        if not self.chance(BRANCH_SHARE):
            return []
        count = self.pick(((1, 60), (2, 28), (3, 12)))
        places = [c for c, _ in vocab.BUSINESS_CENTRES if c != head.head_office.province_code]
        return [
            self.branch(head, number, province)
            for number, province in enumerate(self.rng.sample(places, count), start=1)
        ]

    def branch(self, head: Enterprise, number: int, province: str) -> Enterprise:
        place = PROVINCES[province].upper()
        if province in vocab.CITY_CODE_PREFIX:
            place = f"THÀNH PHỐ {place}"
        span = (AS_OF - head.registered_on).days - 1
        status = head.status
        if status == "active":
            status = self.pick((("active", 85), ("suspended", 5), ("dissolved", 10)))
        main = next(line for line in head.business_lines if line.main)
        others = [line for line in head.business_lines if not line.main]
        lines = sorted([main, *self.rng.sample(others, min(2, len(others)))], key=lambda b: b.code)
        return Enterprise(
            code=f"{head.code}-{number:03d}",
            name=f"{vocab.BRANCH_PREFIX} {head.name} TẠI {place}",
            name_en=None,
            short_name=None,
            legal_form="branch",
            status=status,
            registered_on=head.registered_on + dt.timedelta(days=self.rng.randint(30, span)),
            representatives=head.representatives,
            head_office=self.address(province),
            business_lines=tuple(lines),
            charter_capital_vnd=None,
        )


def build_register(citizens: Sequence[Citizen]) -> Register:
    """Generate the register from citizens (the shipped ones in `load_register`)."""
    generator = _Generator(citizens)
    enterprises: list[Enterprise] = []
    for founder in generator.founders():
        head = generator.head_office(founder)
        enterprises += [head, *generator.branches(head)]
    by_person: dict[str, list[Enterprise]] = {}
    for enterprise in enterprises:
        if enterprise.is_branch:
            continue
        for rep in enterprise.representatives:
            by_person.setdefault(rep.personal_id, []).append(enterprise)
    return Register(
        enterprises=tuple(enterprises),
        by_code=MappingProxyType({e.code: e for e in enterprises}),
        by_representative=MappingProxyType(
            {
                pid: tuple(sorted(found, key=lambda e: (e.registered_on, e.code)))
                for pid, found in by_person.items()
            }
        ),
    )


@functools.cache
def load_register() -> Register:
    """The register built from the shipped citizens; built once per process, then shared."""
    return build_register(load_citizens())
