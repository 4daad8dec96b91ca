"""The application form of `POST /api/v1/lltp/hoso`, as the judicial-records system reads it.

`HoSo` (the province, the portal's dossier code, the form `ToKhai` with its residence history
`NoiCuTru`) validates the body; `invalid_fields` names what failed without the values.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.provinces import PROVINCES

__all__ = ["HoSo", "NoiCuTru", "ToKhai", "invalid_fields"]


def _check_date(value: str, fmt: str) -> str:
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        raise ValueError("not a valid date") from None
    return value


class NoiCuTru(BaseModel):
    """One place of residence in the applicant's history."""

    model_config = ConfigDict(extra="forbid")

    noiCuTru: str = Field(min_length=1, max_length=300)
    tuNgay: str | None = Field(None, pattern=r"^[0-9]{8}$")
    denNgay: str | None = Field(None, pattern=r"^[0-9]{8}$")


class ToKhai(BaseModel):
    """The application form."""

    model_config = ConfigDict(extra="forbid")

    loaiPhieu: Literal[1, 2]
    maMucDich: str = Field(min_length=1, max_length=20)
    nycHoTen: str = Field(min_length=1, max_length=100)
    nycGioiTinh: Literal["1", "2"]
    nycNgaySinh: str = Field(pattern=r"^[0-9]{8}$")
    nycSoGiayTo: str = Field(pattern=r"^[0-9]{12}$")
    nycThuongTru: str = Field(min_length=1, max_length=300)
    nycCuTru: list[NoiCuTru] = Field(default_factory=list, max_length=20)

    @field_validator("nycNgaySinh")
    @classmethod
    def _birth_date(cls, value: str) -> str:
        return _check_date(value, "%Y%m%d")


class HoSo(BaseModel):
    """A submitted application: the province, the portal's dossier code, the form."""

    model_config = ConfigDict(extra="forbid")

    maTinh: str = Field(pattern=r"^[0-9]{3}$")
    maHoSoMCDT: str = Field(min_length=1, max_length=100)
    ngayTiepNhan: str = Field(pattern=r"^[0-9]{14}$", description="yyyyMMddHHmmss")
    toKhai: ToKhai

    @field_validator("maTinh")
    @classmethod
    def _province(cls, value: str) -> str:
        if value not in PROVINCES:
            raise ValueError("not a province code")
        return value

    @field_validator("ngayTiepNhan")
    @classmethod
    def _received(cls, value: str) -> str:
        return _check_date(value, "%Y%m%d%H%M%S")


def invalid_fields(exc: ValidationError) -> str:
    """The fields that failed, by name only (never the submitted values)."""
    names = sorted({".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()})
    return ", ".join(names)
