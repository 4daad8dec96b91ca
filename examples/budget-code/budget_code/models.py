"""The canonical models of budget-code: what the hub's clients send and get back.

A budget-relationship code (mã số đơn vị có quan hệ với ngân sách, MSQHNS) is the 7-digit
number the Ministry of Finance issues to every unit that uses the state budget (a
department, a school, a commune's people's committee) and to every public investment
project; the State Treasury pays nothing to a unit without one.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BudgetCode = str
_CODE = r"^[0-9]{7}$"


class BudgetUnitQuery(BaseModel):
    """Which unit to look up."""

    model_config = ConfigDict(extra="forbid")

    code: BudgetCode = Field(pattern=_CODE, description="The 7-digit budget-relationship code")


class BudgetUnit(BaseModel):
    """A unit (or project) with a budget-relationship code."""

    code: BudgetCode
    name: str
    kind: Literal["budget-unit", "investment-project", "other"] = Field(
        description="A unit that uses the budget, or a public investment project"
    )
    budget_level: Literal["central", "province", "district", "commune"]
    chapter_code: str = Field(description="Mã chương: the budget chapter (3 digits)")
    treasury_code: str = Field(description="Mã KBNN: the State Treasury office (4 digits)")
    province_code: str = Field(description="Legacy 3-digit province code")
    parent_code: BudgetCode | None = Field(None, description="The unit it answers to")
    issued_on: dt.date
    status: Literal["active", "closed"]


class SubordinatesQuery(BaseModel):
    """Whose subordinate units to list."""

    model_config = ConfigDict(extra="forbid")

    code: BudgetCode = Field(pattern=_CODE, description="The parent unit's code")


class BudgetUnitList(BaseModel):
    """Units answering to one parent (empty when none)."""

    items: list[BudgetUnit]
