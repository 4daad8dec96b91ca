"""The canonical models of the land registry: what the hub's clients send and get back.

Input models are validated before anything goes upstream (a bad parcel id or personal ID is
a 422 that names the field, never its value); output models are what the mapping must
produce. Both are `CanonicalModel`s, as the hub's own are: unknown fields refused, frozen.
"""

from __future__ import annotations

import datetime as dt

from hub.canonical import CanonicalModel, PersonalIdStr
from pydantic import Field

#: A parcel's id: the ward's code (5 digits), the map sheet and the parcel's number on it.
PARCEL_ID = r"^[0-9]{5}-[0-9]{1,3}-[0-9]{1,4}$"


class ParcelQuery(CanonicalModel):
    """Which parcel to look up."""

    parcel_id: str = Field(pattern=PARCEL_ID, description="Ward code-sheet-parcel: 26734-12-345")


class OwnerQuery(CanonicalModel):
    """Whose parcels to list."""

    personal_id: PersonalIdStr


class Owner(CanonicalModel):
    """The land user named on the certificate (chủ sử dụng)."""

    personal_id: str
    full_name: str


class Parcel(CanonicalModel):
    """A land parcel (thửa đất) as the registry records it."""

    parcel_id: str
    map_sheet: int
    parcel_number: int
    area_m2: float
    land_use: str = Field(description="Land-use purpose code (ONT, LUC, CLN…)")
    address: str
    certificate_number: str | None = None
    certified_on: dt.date | None = None
    owner: Owner


class ParcelList(CanonicalModel):
    """Every parcel a person uses, all the registry's pages read."""

    personal_id: str
    items: list[Parcel]
