"""Canonical models of the population service (National Population Database)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from hub.canonical.common import (
    Address,
    CanonicalModel,
    Gender,
    MaritalStatus,
    PersonalIdStr,
    Relative,
)

HouseholdRelation = Literal["head", "spouse", "child", "parent", "grandchild", "other"]
BloodType = Literal["O", "A", "B", "AB"]


class CitizenLookup(CanonicalModel):
    """Look a citizen up by personal ID."""

    personal_id: PersonalIdStr


class Household(CanonicalModel):
    """The citizen's household registration."""

    book_number: str | None = None
    head: Relative | None = None
    relation_to_head: HouseholdRelation | None = None


class Citizen(CanonicalModel):
    """A citizen as the National Population Database records them."""

    personal_id: str
    old_id_number: str | None = Field(None, description="9-digit identity card number (CMND)")
    full_name: str
    family_name: str | None = None
    middle_name: str | None = None
    given_name: str | None = None
    gender: Gender
    date_of_birth: dt.date
    nationality: str | None = None
    ethnicity_code: str | None = None
    religion_code: str | None = None
    marital_status: MaritalStatus | None = None
    blood_type: BloodType | None = None
    birth_registration_place: Address | None = None
    hometown: Address | None = None
    permanent_address: Address | None = None
    current_address: Address | None = None
    father: Relative | None = None
    mother: Relative | None = None
    spouse: Relative | None = None
    household: Household | None = None


class CitizenVerification(CanonicalModel):
    """Check a citizen's stated details against the national record."""

    personal_id: PersonalIdStr
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: dt.date
    gender: Gender | None = None


class FieldMatches(CanonicalModel):
    """Field-by-field result of a verification (None: the field was not asked)."""

    full_name: bool
    date_of_birth: bool
    gender: bool | None = None


class CitizenVerificationResult(CanonicalModel):
    """Whether every stated detail matches; never returns the recorded values. A client gets
    `match` alone unless its field grant names `found` and `fields` (a verification is not
    an oracle: hub.security.verification)."""

    match: bool
    found: bool | None = Field(
        None, description="Whether the personal ID exists at all (only where granted)"
    )
    fields: FieldMatches | None = Field(
        None, description="Field-by-field matches (only where granted)"
    )
