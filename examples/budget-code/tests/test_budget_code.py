"""Tests of the budget-code adapter: the hub's conformance battery against the mock, the
mapping against the registry's JSON Schema, and calls through the hub's own API."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hub.mapping_tools import check_upstream_paths
from hub.testing import AdapterConformance, Sample, hub_client

from budget_code import BudgetCodeAdapter
from budget_code.mock import create_app, load_records

PACKAGE = Path(__file__).resolve().parent.parent / "budget_code"
PROVINCE = "1059866"  # Ủy ban nhân dân tỉnh Lâm Đồng
SCHOOL = "1061207"  # a school under the province's Department of Education


class TestBudgetCodeConformance(AdapterConformance):
    """What the hub expects of every adapter."""

    adapter = BudgetCodeAdapter
    mock = staticmethod(create_app)
    samples: ClassVar[dict[str, Sample]] = {
        "lookup": {"code": SCHOOL},
        "subordinates": {"code": PROVINCE},
    }
    unknown: ClassVar[dict[str, Sample]] = {"lookup": {"code": "9999999"}}


def test_the_mapping_names_only_what_the_registry_has():
    assert check_upstream_paths(PACKAGE / "mapping.yaml", PACKAGE / "upstream.schema.json") == []


async def test_a_unit_and_its_subordinates_through_the_hub_api():
    school = load_records()[SCHOOL]
    async with hub_client(BudgetCodeAdapter, create_app()) as client:
        catalogue = (await client.get("/v1/services")).json()["data"]
        [entry] = [s for s in catalogue if s["name"] == "budget-code"]
        assert {op["name"] for op in entry["operations"]} == {"lookup", "subordinates"}

        found = await client.post("/v1/services/budget-code/lookup", json={"code": SCHOOL})
        assert found.status_code == 200, found.text
        assert found.json()["data"] == {
            "code": SCHOOL,
            "name": school["TenDonVi"],
            "kind": "budget-unit",
            "budget_level": "province",
            "chapter_code": "422",
            "treasury_code": "2511",
            "province_code": "068",
            "parent_code": "1060433",
            "issued_on": "2007-09-05",
            "status": "active",
        }

        below = await client.post("/v1/services/budget-code/subordinates", json={"code": PROVINCE})
        assert below.status_code == 200, below.text
        names = {unit["name"] for unit in below.json()["data"]["items"]}
        assert "Sở Tài chính tỉnh Lâm Đồng" in names and len(names) == 4
        leaf = await client.post("/v1/services/budget-code/subordinates", json={"code": SCHOOL})
        assert leaf.json()["data"] == {"items": []}

        missing = await client.post("/v1/services/budget-code/lookup", json={"code": "9999999"})
        assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
        invalid = await client.post("/v1/services/budget-code/lookup", json={"code": "12"})
        assert invalid.status_code == 422  # refused before any upstream call
