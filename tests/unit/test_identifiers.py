import datetime as dt

import pytest

from hub.identifiers import (
    InvalidIdentifier,
    make_personal_id,
    parse_enterprise_code,
    parse_personal_id,
)
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


# -- enterprise codes -----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["0100109106", "0100109106-001", "0100109106-999"])
def test_valid_enterprise_codes(code: str) -> None:
    parsed = parse_enterprise_code(code)
    assert parsed.head_office == "0100109106"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("0100109107", "check digit"),
        ("010010910", "10 digits"),
        ("0100109106-000", "001 to 999"),
        ("0100109106-01", "10 digits"),
        ("01001091O6", "10 digits"),
        ("０１００１０９１０６", "10 digits"),
    ],
)
def test_invalid_enterprise_codes_say_why_without_the_value(code: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_enterprise_code(code)
    assert reason in str(caught.value)
    assert code not in str(caught.value)
