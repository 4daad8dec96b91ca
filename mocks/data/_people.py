"""Drawing one person at a time: names, birth dates, identifiers, home towns.

Part of the generator (mocks.data.generate), which composes these people into households.
Every draw goes through one `random.Random`, in a fixed order, from tuples only.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, TypeVar

from hub.identifiers import Gender, make_personal_id
from hub.provinces import PROVINCES
from mocks.data import _vocab as vocab
from mocks.data._geography import Geography, is_south

OLDEST_YEAR = 1930
NEWEST_YEAR = 2024  # the data set is "as of" 1 January 2025

T = TypeVar("T")
_PROVINCE_CODES = tuple(sorted(PROVINCES))


@dataclass(eq=False)
class Person:
    """A citizen while its household is being built (references still objects)."""

    family: str
    middle: str
    given: str
    gender: str
    year: int
    relation: str
    hometown: dict[str, str]
    ethnicity: str
    personal_id: str = ""
    dob: dt.date | None = None
    birth_place: dict[str, str] | None = None
    marital: str = "single"
    father: Person | str | None = None
    mother: Person | str | None = None
    spouse: Person | str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.family, self.middle, self.given) if p)


class PersonDraws:
    """Draws names, dates, identifiers and places from one seeded random source."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.geo = Geography(self.rng)
        # Membership tests only (never iterated), so hash order cannot leak into the output.
        self.ids: set[str] = set()
        self.old_ids: set[str] = set()
        self.books: set[str] = set()
        weights = dict(vocab.PROVINCE_WEIGHT)
        self.province_weights = tuple(weights.get(code, 1) for code in _PROVINCE_CODES)

    # -- drawing helpers ---------------------------------------------------------------
    def pick(self, weighted: tuple[tuple[T, int], ...]) -> T:
        values = [value for value, _ in weighted]
        return self.rng.choices(values, [weight for _, weight in weighted])[0]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def province(self) -> str:
        return self.rng.choices(_PROVINCE_CODES, self.province_weights)[0]

    def any_province(self) -> str:
        return self.rng.choice(_PROVINCE_CODES)

    def family_name(self, province: str) -> str:
        name = self.pick(vocab.FAMILY_NAMES)
        for northern, southern in vocab.SOUTHERN_SPELLINGS:
            if is_south(province) and name == northern and self.chance(0.6):
                return southern
            if not is_south(province) and name == southern and self.chance(0.6):
                return northern
        return name

    def middle_name(self, gender: str, year: int) -> str:
        modern = year >= 1980
        if gender == "male":
            table = vocab.MIDDLE_MALE_MODERN if modern else vocab.MIDDLE_MALE_TRADITIONAL
        else:
            table = vocab.MIDDLE_FEMALE_MODERN if modern else vocab.MIDDLE_FEMALE_TRADITIONAL
        if modern and self.chance(0.01):
            return ""  # a few people have no middle name (ChuDem empty)
        return self.pick(table)

    def given_name(self, gender: str, avoid: tuple[str, ...] = ()) -> str:
        names = vocab.GIVEN_MALE if gender == "male" else vocab.GIVEN_FEMALE
        while True:
            name = self.rng.choice(names)
            if name not in avoid:
                return name

    def name_only(self, gender: str, family: str, year: int) -> str:
        """The full name of someone outside the data set (an absent parent)."""
        return f"{family} {self.middle_name(gender, year)} {self.given_name(gender)}".replace(
            "  ", " "
        )

    def hometown(self, province: str) -> dict[str, str]:
        origin = province if self.chance(0.7) else self.any_province()
        return self.geo.address(origin, with_detail=False)

    # -- people ------------------------------------------------------------------------
    def person(self, gender: str, year: int, family: str, relation: str, **kw: Any) -> Person:
        year = min(max(year, OLDEST_YEAR), NEWEST_YEAR)
        avoid = kw.pop("avoid", ())
        person = Person(
            family=family,
            middle=self.middle_name(gender, year),
            given=self.given_name(gender, avoid),
            gender=gender,
            year=year,
            relation=relation,
            **kw,
        )
        start = dt.date(year, 1, 1).toordinal()
        person.dob = dt.date.fromordinal(start + self.rng.randrange(366 if year % 4 == 0 else 365))
        return person

    def register_birth(self, person: Person, home_province: str) -> None:
        """Pick the birth-registration province and derive the personal ID from it."""
        if person.relation == "CH03":
            province = home_province if self.chance(0.93) else self.any_province()
        elif self.chance(0.6):
            province = person.hometown["province_code"]
        else:
            province = home_province if self.chance(0.75) else self.any_province()
        person.birth_place = self.geo.address(province, with_detail=False)
        gender: Gender = "male" if person.gender == "male" else "female"
        while not person.personal_id or person.personal_id in self.ids:
            serial = self.rng.randrange(1_000_000)
            person.personal_id = make_personal_id(province, gender, person.year, serial)
        self.ids.add(person.personal_id)

    def old_id(self, person: Person) -> str | None:
        """A 9-digit CMND for some adults born before 1995 (the card the CCCD replaced)."""
        if person.year >= 1995 or not self.chance(0.6):
            return None
        prefix = person.birth_place["province_code"][1:] if person.birth_place else "01"
        while True:
            number = f"{prefix}{self.rng.randrange(10_000_000):07d}"
            if number not in self.old_ids:
                self.old_ids.add(number)
                return number

    def book_number(self, province: str) -> str:
        while True:
            number = f"{province}{self.rng.randrange(1_000_000):06d}"
            if number not in self.books:
                self.books.add(number)
                return number

    def lone_status(self, year: int) -> str:
        age = NEWEST_YEAR - year
        if age < 25:
            return self.pick((("single", 95), ("divorced", 5)))
        if age < 60:
            return self.pick((("single", 50), ("divorced", 35), ("widowed", 15)))
        return self.pick((("widowed", 60), ("divorced", 15), ("single", 25)))
