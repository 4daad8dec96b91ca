"""Canonical models of the civil-status service (the Ministry of Justice's registry).

A record is one entry of a civil-status book: a birth, a marriage or a death registration.
The people it names are listed with their role; the fields that only one kind of record
has (birth date and place for a birth, date, place and cause for a death, a divorce note on
a marriage) are set for that kind and null otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from hub.canonical.common import Address, CanonicalModel, Gender, MaritalStatus, PersonalIdStr

RecordKind = Literal["birth", "marriage", "death"]
PersonRole = Literal["subject", "father", "mother", "husband", "wife", "deceased", "declarant"]

#: The registry's record key: kind (KS birth, KH marriage, KT death), year, book, number.
#: ASCII digits only: pydantic's regex engine reads `\d` as any Unicode digit (Arabic-Indic,
#: full-width), which would reach upstream (issue 18, finding 4).
RECORD_NUMBER_PATTERN = r"^(KS|KH|KT)-[0-9]{4}-[0-9]{2}-[0-9]{6}$"
KIND_PREFIX: dict[str, str] = {"birth": "KS", "marriage": "KH", "death": "KT"}


class CivilStatusQuery(CanonicalModel):
    """A citizen's civil-status records (or status) by personal ID."""

    personal_id: PersonalIdStr


class RecordLookup(CanonicalModel):
    """One record by kind and number; the number's prefix must name the same kind."""

    kind: RecordKind
    number: str = Field(
        pattern=RECORD_NUMBER_PATTERN,
        max_length=20,
        description="The record's key: KS/KH/KT, registration year, book and number.",
        examples=["KS-2005-01-000123"],
    )

    @model_validator(mode="after")
    def _kind_matches_number(self) -> RecordLookup:
        if not self.number.startswith(KIND_PREFIX[self.kind] + "-"):
            raise ValueError(f"a {self.kind} record number starts with {KIND_PREFIX[self.kind]}-")
        return self


class Authority(CanonicalModel):
    """The civil-status authority (usually a commune's People's Committee) that registered."""

    code: str | None = None
    name: str | None = None


class RecordPerson(CanonicalModel):
    """A person named in a record, in one role.

    `declarant` is who declared a death (a spouse or a child); `personal_id` is null for
    people registered without one (older records, people abroad).
    """

    role: PersonRole
    personal_id: str | None = None
    full_name: str
    date_of_birth: dt.date | None = None


class DivorceNote(CanonicalModel):
    """The note of a court's divorce decision written beside a marriage record."""

    decision_number: str | None = None
    court: str | None = None
    effective_on: dt.date


class CivilStatusRecord(CanonicalModel):
    """One registration in a civil-status book."""

    kind: RecordKind
    number: str = Field(description="The record's key, as `record` looks it up")
    registration_number: str | None = Field(None, description="Số đăng ký within the year")
    book: str | None = Field(None, description="Quyển số, e.g. 01/2005")
    page: str | None = Field(None, description="Trang số")
    registered_on: dt.date
    authority: Authority
    place: Address | None = Field(None, description="Where it was registered")
    persons: list[RecordPerson]
    date_of_birth: dt.date | None = Field(None, description="Birth records")
    gender: Gender | None = Field(None, description="Birth records")
    place_of_birth: Address | None = Field(None, description="Birth records")
    date_of_death: dt.date | None = Field(None, description="Death records")
    place_of_death: Address | None = Field(None, description="Death records")
    cause_of_death: str | None = Field(None, description="Death records, as registered")
    divorce: DivorceNote | None = Field(None, description="Marriage records ended by divorce")


class CivilStatusRecords(CanonicalModel):
    """Every record naming a person, in any role, oldest registration first."""

    personal_id: str
    records: list[CivilStatusRecord]


class MaritalStatusEvidence(CanonicalModel):
    """A record a marital-status confirmation rests on."""

    kind: RecordKind
    number: str
    registered_on: dt.date


class MaritalStatusConfirmation(CanonicalModel):
    """A citizen's marital status as the civil-status records show it on `as_of`.

    single: no marriage registered; married: the latest marriage stands; divorced: it
    carries a divorce note; widowed: the spouse's death is registered. `evidence` lists the
    marriage record and, for widowed, the spouse's death record.
    """

    personal_id: str
    status: MaritalStatus
    as_of: dt.date
    evidence: list[MaritalStatusEvidence]


class DeathRegistered(CanonicalModel):
    """A death was registered: the deceased's personal ID and the death record."""

    personal_id: str | None = Field(None, description="The deceased's personal ID")
    province_code: str | None = Field(None, description="Province of the registering authority")
    record: CivilStatusRecord


class BirthRegistered(CanonicalModel):
    """A birth was registered: the child's new personal ID, the mother's, and the record."""

    personal_id: str | None = Field(None, description="The child's personal ID")
    mother_personal_id: str | None = None
    father_personal_id: str | None = None
    province_code: str | None = Field(None, description="Province of the registering authority")
    record: CivilStatusRecord


class MarriageRegistered(CanonicalModel):
    """A marriage was registered: both spouses' personal IDs and the record."""

    husband_personal_id: str | None = None
    wife_personal_id: str | None = None
    province_code: str | None = Field(None, description="Province of the registering authority")
    record: CivilStatusRecord
