"""Canonical models of the business-registration service (National Business Registration
Database, Cơ sở dữ liệu quốc gia về đăng ký doanh nghiệp)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from hub.canonical.common import Address, CanonicalModel, EnterpriseCodeStr, PersonalIdStr

__all__ = [
    "BusinessLine",
    "Enterprise",
    "EnterpriseList",
    "EnterpriseLookup",
    "EnterprisePage",
    "EnterpriseSearch",
    "EnterpriseStatus",
    "EnterpriseStatusChanged",
    "EnterpriseSummary",
    "LegalRepresentative",
    "RepresentativeQuery",
]

#: The enterprise's legal status in the register: operating, temporarily suspended (tạm
#: ngừng kinh doanh), in the middle of dissolution, dissolved, declared bankrupt, or with its
#: registration certificate revoked.
EnterpriseStatus = Literal["active", "suspended", "dissolving", "dissolved", "bankrupt", "revoked"]


class EnterpriseLookup(CanonicalModel):
    """Look an enterprise (or one of its branches) up by enterprise code."""

    enterprise_code: EnterpriseCodeStr


class LegalRepresentative(CanonicalModel):
    """A person registered as the enterprise's legal representative."""

    personal_id: str | None = Field(None, description="Identity document number (CCCD)")
    full_name: str
    position: str | None = Field(None, description="Title, as registered (Vietnamese)")


class BusinessLine(CanonicalModel):
    """A registered line of business."""

    code: str = Field(description="VSIC 2018 code (4 digits)")
    name: str = Field(description="VSIC name (Vietnamese)")
    main: bool = Field(False, description="The enterprise's main line")


class Enterprise(CanonicalModel):
    """An enterprise's or a branch's registration record."""

    enterprise_code: str = Field(description="10-digit code, with -NNN for a branch")
    name: str = Field(description="Registered Vietnamese name")
    name_en: str | None = Field(None, description="Registered foreign-language name")
    short_name: str | None = None
    status: EnterpriseStatus
    registered_on: dt.date = Field(description="Date of first registration")
    legal_representatives: list[LegalRepresentative] = Field(default_factory=list)
    head_office: Address | None = Field(None, description="Head office (a branch's own seat)")
    business_lines: list[BusinessLine] = Field(default_factory=list)
    charter_capital_vnd: int | None = Field(
        None,
        ge=0,
        description="Charter capital in whole VND; none for a branch or a private enterprise "
        "(doanh nghiệp tư nhân), which have no charter capital of their own",
    )


class EnterpriseSummary(CanonicalModel):
    """One enterprise in a list: enough to choose which to look up."""

    enterprise_code: str
    name: str
    status: EnterpriseStatus
    registered_on: dt.date
    head_office_province_code: str | None = Field(None, description="3-digit legacy code")


NamePrefix = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]


class EnterpriseSearch(CanonicalModel):
    """Search enterprises by the start of their name, a page at a time.

    Case and accents are ignored, and the legal form ("CÔNG TY TNHH", "CÔNG TY CỔ PHẦN",
    "DOANH NGHIỆP TƯ NHÂN", "CHI NHÁNH" …) is skipped: the prefix may match the name from
    any word on ("hoang phat" finds "CÔNG TY TNHH XÂY DỰNG HOÀNG PHÁT").
    """

    name_prefix: NamePrefix
    page: int = Field(1, ge=1, le=10_000)
    page_size: int = Field(20, ge=1, le=100)


class EnterprisePage(CanonicalModel):
    """One page of search results; `total` counts every match."""

    items: list[EnterpriseSummary]
    page: int
    page_size: int
    total: int


class RepresentativeQuery(CanonicalModel):
    """The enterprises a person is legal representative of, by personal ID."""

    personal_id: PersonalIdStr


class EnterpriseList(CanonicalModel):
    """Enterprises (head offices, not branches) a person represents; empty when none."""

    items: list[EnterpriseSummary]


class EnterpriseStatusChanged(CanonicalModel):
    """An enterprise's legal status changed in the register (suspended, dissolved…)."""

    enterprise_code: str
    name: str | None = None
    province_code: str | None = Field(None, description="Province of the head office")
    previous_status: EnterpriseStatus
    status: EnterpriseStatus
