import datetime as dt

import pytest

from hub.identifiers import InvalidIdentifier, make_personal_id, parse_personal_id
from hub.provinces import PROVINCES


def test_parses_what_the_digits_encode():
    pid = parse_personal_id("001085012345")
    assert (pid.province_code, pid.gender, pid.birth_year) == ("001", "male", 1985)
    assert parse_personal_id("079301000001").gender == "female"
    assert parse_personal_id("079301000001").birth_year == 2001


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "12 digits"),
        ("00108501234", "12 digits"),
        ("0010850123456", "12 digits"),
        ("00108501234a", "12 digits"),
        ("００１０８５０１２３４５", "12 digits"),  # full-width digits are not ASCII digits
        ("003085012345", "province"),  # 003 is not a province code
        ("097085012345", "province"),
        ("001485012345", "century"),  # 2100s
        ("001885012345", "century"),  # 1800s
        ("001299012345", "future"),  # born 2099
    ],
)
def test_rejects_with_a_reason_that_does_not_echo_the_value(value, reason):
    with pytest.raises(InvalidIdentifier) as info:
        parse_personal_id(value, today=dt.date(2026, 11, 21))
    assert reason in str(info.value)
    if value:
        assert value not in str(info.value)


def test_63_legacy_provinces():
    assert len(PROVINCES) == 63
    assert PROVINCES["079"] == "Hồ Chí Minh"


def test_make_round_trips():
    for gender in ("male", "female"):
        for year in (1930, 1999, 2000, 2024):
            value = make_personal_id("048", gender, year, 42)
            parsed = parse_personal_id(value)
            assert (parsed.gender, parsed.birth_year, parsed.province_code) == (gender, year, "048")
