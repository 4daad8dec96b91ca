"""The synthetic population: reproducible, valid identifiers, coherent families."""

from __future__ import annotations

import datetime as dt
import gzip
import unicodedata
from collections import Counter, defaultdict

import pytest

from hub.identifiers import parse_personal_id
from hub.provinces import PROVINCES
from mocks.data import Citizen, citizen_index, citizens_from_json, load_citizens
from mocks.data.generate import DATA_FILE, render

AS_OF = dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def index() -> dict[str, Citizen]:
    return dict(citizen_index())


def test_regenerating_rewrites_the_shipped_file_byte_for_byte() -> None:
    shipped = DATA_FILE.read_bytes()
    fresh = render()
    # The JSON must match exactly; the gzip bytes too (same zlib, mtime 0, no file name).
    assert gzip.decompress(fresh) == gzip.decompress(shipped)
    assert fresh == shipped
    assert len(shipped) < 4 * 1024 * 1024


def test_loader_matches_the_file_and_is_cached(citizens: list[Citizen]) -> None:
    assert len(citizens) >= 10_000
    assert citizens_from_json(gzip.decompress(DATA_FILE.read_bytes())) == tuple(citizens)
    again = load_citizens()
    assert again == citizens and again is not citizens  # a fresh list of the same records
    assert again[0] is citizens[0]
    assert citizen_index() is citizen_index()
    assert len(citizen_index()) == len(citizens)  # personal IDs are unique


def test_every_id_is_valid_and_agrees_with_its_holder(citizens: list[Citizen]) -> None:
    for c in citizens:
        parsed = parse_personal_id(c.personal_id, today=AS_OF)
        assert parsed.gender == c.gender
        assert parsed.birth_year == c.date_of_birth.year
        assert parsed.province_code == c.birth_registration_place.province_code
        assert dt.date(1930, 1, 1) <= c.date_of_birth <= dt.date(2024, 12, 31)


def test_old_ids_only_for_adults_born_before_1995(citizens: list[Citizen]) -> None:
    old = [c for c in citizens if c.old_id_number]
    assert len(old) > 1000
    assert len({c.old_id_number for c in old}) == len(old)
    for c in old:
        assert len(c.old_id_number) == 9 and c.old_id_number.isdigit()
        assert c.date_of_birth.year < 1995


def test_parents_are_older_and_of_the_right_gender(
    citizens: list[Citizen], index: dict[str, Citizen]
) -> None:
    linked = 0
    for child in citizens:
        for ref, gender in ((child.father, "male"), (child.mother, "female")):
            if ref is None or ref.personal_id is None:
                continue
            parent = index[ref.personal_id]
            linked += 1
            assert parent.gender == gender
            assert parent.full_name == ref.full_name
            assert (child.date_of_birth - parent.date_of_birth).days >= 18 * 365
        if child.father is not None:
            # Children take their father's family name, whether he is in the set or not.
            assert child.father.full_name.split()[0] == child.family_name
    assert linked > 5000


def test_spouses_refer_to_each_other(citizens: list[Citizen], index: dict[str, Citizen]) -> None:
    for c in citizens:
        assert (c.spouse is not None) == (c.marital_status == "married")
        if c.spouse is None:
            continue
        assert c.spouse.personal_id is not None
        partner = index[c.spouse.personal_id]
        assert partner.spouse is not None and partner.spouse.personal_id == c.personal_id
        assert partner.gender != c.gender
        assert abs(partner.date_of_birth.year - c.date_of_birth.year) <= 10


def test_households_are_coherent(citizens: list[Citizen], index: dict[str, Citizen]) -> None:
    households: dict[str, list[Citizen]] = defaultdict(list)
    for c in citizens:
        households[c.household_book_number].append(c)
    sizes = Counter(min(len(m), 5) for m in households.values())
    assert sizes[1] > 100 and sizes[5] > 100  # single people and big families both exist
    three_generations = 0
    for members in households.values():
        heads = [m for m in members if m.relation_to_head == "CH01"]
        assert len(heads) == 1
        head = heads[0]
        assert head.household_head.personal_id == head.personal_id
        for m in members:
            assert m.household_head == head.household_head
            assert m.permanent_address == head.permanent_address
            assert m.permanent_address.province_code == head.household_book_number[:3]
            if m.relation_to_head == "CH03":
                assert m.marital_status == "single"
                assert {m.father.personal_id, m.mother.personal_id} & {head.personal_id}
            if m.relation_to_head == "CH04":
                three_generations += 1
                assert m.personal_id in (head.father.personal_id, head.mother.personal_id)
    assert three_generations > 300
    assert Counter(c.marital_status for c in citizens).keys() == {
        "single",
        "married",
        "divorced",
        "widowed",
    }


def test_names_are_vietnamese_with_diacritics(citizens: list[Citizen]) -> None:
    families = Counter(c.family_name for c in citizens)
    assert families.most_common(1)[0][0] == "Nguyễn"
    assert {"Trần", "Lê", "Phạm", "Đặng", "Bùi", "Đỗ", "Võ", "Huỳnh"} <= families.keys()
    with_marks = sum(not c.full_name.isascii() for c in citizens)
    assert with_marks > 0.8 * len(citizens)
    for c in citizens:
        assert unicodedata.is_normalized("NFC", c.full_name)
        assert c.given_name and c.family_name
        assert c.middle_name != "Thị" or c.gender == "female"
        assert c.middle_name != "Văn" or c.gender == "male"


def test_codes_and_addresses_are_well_formed(citizens: list[Citizen]) -> None:
    assert Counter(c.ethnicity_code for c in citizens).most_common(1)[0][0] == "01"
    assert Counter(c.religion_code for c in citizens).most_common(1)[0][0] == "00"
    assert {c.blood_group for c in citizens} == {"O", "A", "B", "AB", None}
    assert {c.relation_to_head for c in citizens} == {"CH01", "CH02", "CH03", "CH04"}
    for c in citizens:
        for address in (
            c.birth_registration_place,
            c.hometown,
            c.permanent_address,
            c.current_address,
        ):
            assert address.province_code in PROVINCES
            assert len(address.district_code) == 3 and address.district_code.isdigit()
            assert len(address.ward_code) == 5 and address.ward_code.isdigit()
            assert address.country == "VN"
        assert c.permanent_address.detail and c.current_address.detail
    moved = sum(c.current_address != c.permanent_address for c in citizens)
    assert 0 < moved < 0.1 * len(citizens)
