"""A synthetic administrative map: districts and wards under the 63 real legacy provinces.

Province codes are the real ones (hub.provinces). District (3-digit) and ward (5-digit) codes
are numbered nationally in province order, as the real General Statistics Office list is,
but they and the place names are invented: a mock must never look like a real address book.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hub.provinces import PROVINCES
from mocks.data import _vocab as vocab


@dataclass(frozen=True, slots=True)
class Ward:
    """One ward (phường), commune (xã) or township (thị trấn)."""

    province_code: str
    district_code: str
    code: str
    kind: str
    name: str

    @property
    def urban(self) -> bool:
        """Wards and townships get street addresses; communes get hamlets."""
        return self.kind != "xã"


def _region(province_code: str) -> str:
    if province_code in vocab.NORTH_MOUNTAIN:
        return "north-mountain"
    if province_code < "038":
        return "north"
    return "south" if province_code >= "070" else "central"


class Geography:
    """Wards of every province, drawn once from the generator's random source."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.wards: dict[str, tuple[Ward, ...]] = {}
        district_no, ward_no = 0, 0
        for province in sorted(PROVINCES):
            big = province in vocab.BIG_CITIES
            n_districts = rng.randint(6, 12) if big else rng.randint(4, 9)
            wards: list[Ward] = []
            for index in range(n_districts):
                district_no += rng.randint(1, 2)
                urban = index == 0 or (big and index < n_districts * 0.7)
                for w in range(rng.randint(4, 9)):
                    # Gaps between codes, as in the real list where merged wards left holes.
                    ward_no += rng.randint(2, 9)
                    kind = "phường" if urban else ("thị trấn" if w == 0 else "xã")
                    wards.append(
                        Ward(province, f"{district_no:03d}", f"{ward_no:05d}", kind, self._name())
                    )
            self.wards[province] = tuple(wards)

    def _name(self) -> str:
        first, second = self._rng.sample(vocab.PLACE_SYLLABLES, 2)
        return f"{first} {second}"

    def ward(self, province_code: str) -> Ward:
        """A random ward of the province."""
        return self._rng.choice(self.wards[province_code])

    def detail(self, ward: Ward) -> str:
        """A street or hamlet line in the style of the region."""
        rng, region = self._rng, _region(ward.province_code)
        if ward.urban:
            number, street = rng.randint(1, 250), rng.choice(vocab.STREETS)
            style = rng.random()
            if region == "north" and style < 0.6:
                return f"Số {number}, ngõ {rng.randint(1, 300)}, phố {street}"
            if region == "south" and style < 0.4:
                return f"Số {number}/{rng.randint(1, 60)} đường {street}, {ward.kind} {ward.name}"
            return f"Số {number} đường {street}, {ward.kind} {ward.name}"
        prefix = {"north-mountain": "Bản", "south": "Ấp"}.get(region, "Thôn")
        hamlet = rng.choice(vocab.HAMLETS)
        if rng.random() < 0.15:
            hamlet = str(rng.randint(1, 12))  # numbered hamlets ("Thôn 3") are common
        return f"{prefix} {hamlet}, xã {ward.name}"

    def address(self, province_code: str, *, with_detail: bool = True) -> dict[str, str]:
        """An address record in the data file's shape (detail "" for ward-level places)."""
        ward = self.ward(province_code)
        return {
            "province_code": ward.province_code,
            "district_code": ward.district_code,
            "ward_code": ward.code,
            "detail": self.detail(ward) if with_detail else "",
            "country": "VN",
        }


def is_south(province_code: str) -> bool:
    """South of the old Bình Thuận line, where Huỳnh and Võ replace Hoàng and Vũ."""
    return _region(province_code) == "south" or province_code in vocab.HIGHLANDS


def ethnicity_weights(province_code: str) -> tuple[tuple[str, int], ...]:
    """Which ethnicity codes households of a province are drawn from."""
    if province_code in vocab.NORTH_MOUNTAIN:
        return vocab.ETHNICITIES_NORTH_MOUNTAIN
    if province_code in vocab.HIGHLANDS:
        return vocab.ETHNICITIES_HIGHLANDS
    if province_code in vocab.MEKONG:
        return vocab.ETHNICITIES_MEKONG
    return vocab.ETHNICITIES_LOWLAND
