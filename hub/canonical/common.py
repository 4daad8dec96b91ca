"""Types shared by several canonical models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hub.identifiers import InvalidIdentifier, parse_enterprise_code, parse_personal_id

Gender = Literal["male", "female"]
#: A person's marital status, as the population register and the civil-status books say it.
MaritalStatus = Literal["single", "married", "divorced", "widowed"]

#: The pydantic error types the core turns into a 400 with their own code (not a generic
#: 422): identifiers are checked before any upstream call and the caller is told which.
INVALID_PERSONAL_ID_ERROR = "invalid_personal_id"
INVALID_ENTERPRISE_CODE_ERROR = "invalid_enterprise_code"


def _check_personal_id(value: str) -> str:
    try:
        parse_personal_id(value)
    except InvalidIdentifier as exc:
        raise PydanticCustomError(INVALID_PERSONAL_ID_ERROR, str(exc)) from None
    return value


PersonalIdStr = Annotated[
    str,
    AfterValidator(_check_personal_id),
    Field(
        description="12-digit personal ID (CCCD): legacy province code, century/gender digit, "
        "birth year, serial.",
        examples=["001085012345"],
        json_schema_extra={"pattern": r"^[0-9]{12}$"},
    ),
]


def _check_enterprise_code(value: str) -> str:
    try:
        parse_enterprise_code(value)
    except InvalidIdentifier as exc:
        raise PydanticCustomError(INVALID_ENTERPRISE_CODE_ERROR, str(exc)) from None
    return value


EnterpriseCodeStr = Annotated[
    str,
    AfterValidator(_check_enterprise_code),
    Field(
        description="Enterprise code (mã số doanh nghiệp): 10-digit tax code with a valid "
        "check digit, optionally `-NNN` for a branch.",
        examples=["0100109106", "0100109106-001"],
        json_schema_extra={"pattern": r"^[0-9]{10}(-[0-9]{3})?$"},
    ),
]


class CanonicalModel(BaseModel):
    """Base of canonical models: strict about unknown input fields, frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(CanonicalModel):
    """A Vietnamese administrative address (legacy three-level codes)."""

    province_code: str | None = Field(None, description="3-digit legacy province code")
    province_name: str | None = None
    district_code: str | None = None
    ward_code: str | None = None
    detail: str | None = Field(None, description="Street, house number, hamlet…")
    country: str | None = Field(None, description="ISO 3166 alpha-2")


class Relative(CanonicalModel):
    """A person named in another person's record (parent, spouse, household head)."""

    personal_id: str | None = None
    full_name: str | None = None
    nationality: str | None = None
