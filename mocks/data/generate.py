"""Generate the synthetic population: `python -m mocks.data.generate [--check]`.

Writes `mocks/data/citizens.json.gz`. The output depends only on SEED and this code: one
`random.Random(SEED)` drives every choice, draws come from tuples (never sets or hash-ordered
dicts), JSON keys are sorted and gzip's timestamp is zero, so a rerun rewrites the file
byte-identically (`--check` verifies that instead of writing).

Citizens come in households: single people, couples, parents with children, single parents,
and three generations with the head's elderly parent(s). Children take their father's family
name, parents are at least 19 birth years older than their children, spouses refer to each
other, and every personal ID encodes its holder's birth-registration province, gender and
birth year (hub.identifiers.make_personal_id).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

from mocks.data import DATA_FILE_NAME
from mocks.data import _vocab as vocab
from mocks.data._geography import ethnicity_weights
from mocks.data._people import NEWEST_YEAR, OLDEST_YEAR, Person, PersonDraws

SEED = 20_250_701
TARGET_CITIZENS = 12_000
FORMAT_VERSION = 1
DATA_FILE = Path(__file__).with_name(DATA_FILE_NAME)

_HOUSEHOLD_KINDS = (
    ("single", 12),
    ("couple", 10),
    ("nuclear", 52),
    ("single_parent", 8),
    ("three_generation", 18),
)


class _Generator(PersonDraws):
    """Composes households of people and turns them into data-file records."""

    def marry(self, a: Person, b: Person) -> None:
        a.spouse, b.spouse = b, a
        a.marital = b.marital = "married"

    def spouse_of(self, head: Person, province: str, ethnicity: str) -> Person:
        gap = self.rng.randint(-2, 7)  # husbands are usually a few years older
        if head.gender == "male":
            gender, year = "female", min(head.year + gap, NEWEST_YEAR - 18)
        else:
            gender, year = "male", min(head.year - gap, NEWEST_YEAR - 20)
        family = self.family_name(province)
        spouse = self.person(
            gender,
            year,
            family,
            "CH02",
            hometown=self.hometown(province),
            ethnicity=ethnicity if self.chance(0.95) else "01",
        )
        self.marry(head, spouse)
        return spouse

    def outside_parents(self, person: Person, province: str) -> None:
        """Name-only parents for someone whose parents are not in the household."""
        if person.year < 1945 and self.chance(0.5):
            return  # the oldest records often lack their parents' names
        year = person.year - self.rng.randint(20, 35)
        person.father = self.name_only("male", person.family, year)
        person.mother = self.name_only("female", self.family_name(province), year)

    def children(
        self,
        father: Person | str,
        mother: Person | str,
        years: tuple[int, int],
        family: str,
        province: str,
        hometown: dict[str, str],
        ethnicity: str,
    ) -> list[Person]:
        mother_year = years[1]
        # Both parents at least 19 birth years older, so every child is 18+ years younger.
        year = max(max(years) + 19, mother_year + self.rng.randint(20, 30))
        limit = 5 if mother_year < 1960 else 4 if mother_year < 1975 else 3
        kids: list[Person] = []
        for _ in range(self.rng.randint(1, limit)):
            if year > NEWEST_YEAR or year > mother_year + 45:
                break
            gender = "male" if self.chance(0.51) else "female"
            if NEWEST_YEAR - year > 30 and self.chance(0.65):
                year += self.rng.randint(1, 5)
                continue  # most children over 30 have left to found their own household
            taken = tuple(k.given for k in kids)
            kid = self.person(
                gender, year, family, "CH03", hometown=hometown, ethnicity=ethnicity, avoid=taken
            )
            kid.father, kid.mother = father, mother
            kids.append(kid)
            year += self.rng.randint(1, 5)
        return kids

    # -- households ----------------------------------------------------------------------
    def household(self) -> list[dict[str, Any]]:
        province = self.province()
        kind = self.pick(_HOUSEHOLD_KINDS)
        ethnicity = self.pick(ethnicity_weights(province))
        members = getattr(self, f"_{kind}")(province, ethnicity)
        return self.finish(members, province)

    def head(self, province: str, ethnicity: str, gender: str, years: tuple[int, int]) -> Person:
        family = self.family_name(province)
        return self.person(
            gender,
            self.rng.randint(*years),
            family,
            "CH01",
            hometown=self.hometown(province),
            ethnicity=ethnicity,
        )

    def _single(self, province: str, ethnicity: str) -> list[Person]:
        gender = "male" if self.chance(0.5) else "female"
        head = self.head(province, ethnicity, gender, (1935, 2006))
        head.marital = self.lone_status(head.year)
        self.outside_parents(head, province)
        return [head]

    def _couple(
        self,
        province: str,
        ethnicity: str,
        years: tuple[int, int] = (1940, 2000),
        with_children: bool = False,
    ) -> list[Person]:
        gender = "male" if self.chance(0.86) else "female"
        head = self.head(province, ethnicity, gender, years)
        spouse = self.spouse_of(head, province, ethnicity)
        self.outside_parents(head, province)
        self.outside_parents(spouse, province)
        members = [head, spouse]
        if with_children:
            father, mother = (head, spouse) if head.gender == "male" else (spouse, head)
            members += self.children(
                father,
                mother,
                (father.year, mother.year),
                father.family,
                province,
                father.hometown,
                ethnicity,
            )
        return members

    def _nuclear(self, province: str, ethnicity: str) -> list[Person]:
        return self._couple(province, ethnicity, (1962, 2000), with_children=True)

    def _single_parent(self, province: str, ethnicity: str) -> list[Person]:
        gender = "female" if self.chance(0.75) else "male"
        head = self.head(province, ethnicity, gender, (1962, 1995))
        head.marital = "divorced" if self.chance(0.6) else "widowed"
        self.outside_parents(head, province)
        other_year = head.year + (-self.rng.randint(0, 6) if gender == "female" else 3)
        if gender == "female":
            family = self.family_name(province)
            father: Person | str = self.name_only("male", family, other_year)
            mother: Person | str = head
            hometown = self.hometown(province)  # the absent father's home town
        else:
            family, father, hometown = head.family, head, head.hometown
            mother = self.name_only("female", self.family_name(province), other_year)
        years = (head.year, other_year) if gender == "male" else (other_year, head.year)
        return [head, *self.children(father, mother, years, family, province, hometown, ethnicity)]

    def _three_generation(self, province: str, ethnicity: str) -> list[Person]:
        gender = "male" if self.chance(0.85) else "female"
        head = self.head(province, ethnicity, gender, (1952, 1992))
        members = [head]
        if self.chance(0.9):
            spouse = self.spouse_of(head, province, ethnicity)
            self.outside_parents(spouse, province)
            father, mother = (head, spouse) if head.gender == "male" else (spouse, head)
            members.append(spouse)
            members += self.children(
                father,
                mother,
                (father.year, mother.year),
                father.family,
                province,
                father.hometown,
                ethnicity,
            )
        else:
            head.marital = self.lone_status(head.year)
        members += self.elders(head, province, ethnicity)
        return members

    def elders(self, head: Person, province: str, ethnicity: str) -> list[Person]:
        """The head's parent(s), living with the family (CH04)."""
        father_year = max(head.year - self.rng.randint(22, 38), OLDEST_YEAR)
        father_year = min(father_year, head.year - 19)
        mother_year = min(father_year + self.rng.randint(0, 6), head.year - 19)
        both = self.chance(0.4)
        elders: list[Person] = []
        if both or self.chance(0.3):
            # The head's father shares the head's family name and home town.
            dad = self.person(
                "male",
                father_year,
                head.family,
                "CH04",
                hometown=head.hometown,
                ethnicity=ethnicity,
            )
            head.father = dad
            elders.append(dad)
        else:
            head.father = self.name_only("male", head.family, father_year)
        if both or not elders:
            mum = self.person(
                "female",
                mother_year,
                self.family_name(province),
                "CH04",
                hometown=self.hometown(province),
                ethnicity=ethnicity,
            )
            head.mother = mum
            elders.append(mum)
        else:
            head.mother = self.name_only("female", self.family_name(province), mother_year)
        if both:
            self.marry(elders[0], elders[1])
        else:
            elders[0].marital = "widowed"
        for elder in elders:
            if self.chance(0.5):
                self.outside_parents(elder, province)
        return elders

    def finish(self, members: list[Person], province: str) -> list[dict[str, Any]]:
        """Give IDs and addresses to a household and turn it into records."""
        book = self.book_number(province)
        home = self.geo.address(province)
        religion = self.pick(vocab.RELIGIONS)
        for person in members:
            self.register_birth(person, province)
        head = members[0]
        return [self.record(p, head, book, home, religion) for p in members]

    def record(
        self, p: Person, head: Person, book: str, home: dict[str, str], religion: str
    ) -> dict[str, Any]:
        assert p.dob is not None and p.birth_place is not None
        age = NEWEST_YEAR - p.year
        current = home
        if 18 <= age <= 40 and self.chance(0.08):
            current = self.geo.address(self.pick(vocab.MIGRATION_TARGETS))  # works elsewhere
        return {
            "personal_id": p.personal_id,
            "old_id_number": self.old_id(p),
            "family_name": p.family,
            "middle_name": p.middle,
            "given_name": p.given,
            "gender": p.gender,
            "date_of_birth": p.dob.isoformat(),
            "ethnicity_code": p.ethnicity,
            "religion_code": religion if self.chance(0.95) else "00",
            "nationality": "VN",
            "marital_status": p.marital,
            "blood_group": self.pick(vocab.BLOOD_GROUPS),
            "birth_registration_place": p.birth_place,
            "hometown": p.hometown,
            "permanent_address": home,
            "current_address": current,
            "father": _ref(p.father),
            "mother": _ref(p.mother),
            "spouse": _ref(p.spouse),
            "household_book_number": book,
            "household_head": _ref(head),
            "relation_to_head": p.relation,
        }


def _ref(who: Person | str | None) -> dict[str, str | None] | None:
    if who is None:
        return None
    if isinstance(who, str):
        return {"full_name": who, "personal_id": None}
    return {"full_name": who.full_name, "personal_id": who.personal_id}


def generate(seed: int = SEED, target: int = TARGET_CITIZENS) -> list[dict[str, Any]]:
    """Citizen records (plain dicts in the data file's shape), households kept together."""
    generator = _Generator(seed)
    citizens: list[dict[str, Any]] = []
    while len(citizens) < target:
        citizens.extend(generator.household())
    return citizens


def render(seed: int = SEED, target: int = TARGET_CITIZENS) -> bytes:
    """The data file's exact bytes: sorted-key JSON, gzip with a zero timestamp."""
    document = {"format": FORMAT_VERSION, "seed": seed, "citizens": generate(seed, target)}
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the shipped data file."""
    parser = argparse.ArgumentParser(
        prog="python -m mocks.data.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=DATA_FILE)
    parser.add_argument("--check", action="store_true", help="fail if the file would change")
    args = parser.parse_args(argv)
    blob = render()
    if args.check:
        same = args.output.exists() and args.output.read_bytes() == blob
        print(f"{args.output}: {'up to date' if same else 'OUT OF DATE'}")
        return 0 if same else 1
    args.output.write_bytes(blob)
    print(f"wrote {args.output} ({len(blob):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
