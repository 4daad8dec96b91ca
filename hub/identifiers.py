"""Identifiers validated before any upstream call.

A personal ID (CCCD / số định danh cá nhân) has 12 digits (Circular 59/2021/TT-BCA):

    PPP G YY NNNNNN
    |   | |  `- six-digit serial
    |   | `---- last two digits of the birth year
    |   `------ century and gender: 0/1 = 1900s male/female, 2/3 = 2000s, 4/5 = 2100s,
    |           6/7 = 2200s, 8/9 = 1800s
    `---------- legacy province code of the birth registration (see hub.provinces)

There is no check digit. We accept the 1900s and 2000s only, with a birth year not in the
future: 12-digit IDs were first issued in 2016, so nobody holding one was born before
1900, and a 2100s digit can only be a typo. That catches many mistyped IDs a plain
"12 digits" check would let through to the national system.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from hub.provinces import PROVINCES

Gender = Literal["male", "female"]

_CENTURIES = {0: 1900, 1: 1900, 2: 2000, 3: 2000}


@dataclass(frozen=True, slots=True)
class PersonalId:
    """The facts a personal ID's digits encode."""

    value: str
    province_code: str
    gender: Gender
    birth_year: int


class InvalidIdentifier(ValueError):
    """Raised with a reason that never repeats the identifier itself."""


def parse_personal_id(value: str, *, today: dt.date | None = None) -> PersonalId:
    """Check a personal ID and return what its digits encode.

    Raises InvalidIdentifier whose message names the rule broken, never the value
    (it is personal data and error messages end up in logs).
    """
    if not isinstance(value, str) or len(value) != 12 or not value.isascii() or not value.isdigit():
        raise InvalidIdentifier("a personal ID is exactly 12 digits")
    province = value[:3]
    if province not in PROVINCES:
        raise InvalidIdentifier("the first three digits are not a province code")
    digit = int(value[3])
    century = _CENTURIES.get(digit)
    if century is None:
        raise InvalidIdentifier("the fourth digit is not a valid century and gender code")
    year = century + int(value[4:6])
    if year > (today or dt.date.today()).year:
        raise InvalidIdentifier("the birth year encoded in the ID is in the future")
    gender: Gender = "male" if digit % 2 == 0 else "female"
    return PersonalId(value=value, province_code=province, gender=gender, birth_year=year)


def make_personal_id(province_code: str, gender: Gender, birth_year: int, serial: int) -> str:
    """Compose a personal ID from its parts (used by the mock data set and tests)."""
    if province_code not in PROVINCES:
        raise InvalidIdentifier("unknown province code")
    if not 1900 <= birth_year <= 2099 or not 0 <= serial <= 999_999:
        raise InvalidIdentifier("birth year or serial out of range")
    digit = (0 if birth_year < 2000 else 2) + (0 if gender == "male" else 1)
    return f"{province_code}{digit}{birth_year % 100:02d}{serial:06d}"


@dataclass(frozen=True, slots=True)
class EnterpriseCode:
    """An enterprise code (mã số doanh nghiệp): a 10-digit tax code, optionally a branch."""

    value: str
    head_office: str
    branch: str | None


def parse_enterprise_code(value: str) -> EnterpriseCode:
    """Check an enterprise code: 10 digits with a valid check digit, optionally `-NNN`.

    The check digit is python-stdnum's `stdnum.vn.mst` (10 − Σ dᵢ·wᵢ mod 11, weights
    31, 29, 23, 19, 17, 13, 7, 5, 3); we only add the stricter shape our contract states
    (stdnum also accepts separators and 13 digits without the dash).
    """
    from stdnum.exceptions import ValidationError as StdnumError
    from stdnum.vn import mst

    if not isinstance(value, str) or not value.isascii():
        raise InvalidIdentifier("an enterprise code is 10 digits, optionally -NNN for a branch")
    head, dash, branch = value.partition("-")
    if (
        len(head) != 10
        or not head.isdigit()
        or (dash and (len(branch) != 3 or not branch.isdigit()))
    ):
        raise InvalidIdentifier("an enterprise code is 10 digits, optionally -NNN for a branch")
    if dash and branch == "000":
        raise InvalidIdentifier("branch numbers run from 001 to 999")
    try:
        mst.validate(head)
    except StdnumError:
        raise InvalidIdentifier("the enterprise code's check digit is wrong") from None
    return EnterpriseCode(value=value, head_office=head, branch=branch or None)
