"""Tests of the land-registry adapter: the hub's conformance battery against the mock (with
expected answers, the mock held to the registry's schema), the mapping against that schema,
and calls through the hub's own API: personal data, audit subjects from the answer, paging,
faults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from hub.mapping_tools import check_upstream_paths
from hub.testing import AdapterConformance, Sample, hub_client
from mocks.faults import parse_fault_options

from land_registry import LandRegistryAdapter
from land_registry.mock import create_app, load_records

PACKAGE = Path(__file__).resolve().parent.parent / "land_registry"
#: What each sample parcel must answer through the hub, by parcel id (one per parcel).
EXPECTED = json.loads((Path(__file__).parent / "expected.json").read_text(encoding="utf-8"))
PARCEL = "26734-12-345"
OWNER = "068075001234"  # Lê Văn Thành: five parcels, three pages of two
NOBODY = "068075999999"  # a valid personal ID the registry does not know
SERVICE = "/v1/services/land-registry"
OWNED = [parcel for parcel in EXPECTED.values() if parcel["owner"]["personal_id"] == OWNER]


class TestLandRegistryConformance(AdapterConformance):
    """What the hub expects of every adapter, on the one worked with personal data."""

    adapter = LandRegistryAdapter
    mock = staticmethod(create_app)
    config: ClassVar[dict] = {"page_size": 2}  # paging at work in every check
    samples: ClassVar[dict[str, Sample]] = {
        "lookup-parcel": {"parcel_id": PARCEL},
        "parcels-of-owner": {"personal_id": OWNER},
    }
    unknown: ClassVar[dict[str, Sample]] = {"lookup-parcel": {"parcel_id": "26734-99-999"}}
    expected: ClassVar[dict[str, dict]] = {
        "lookup-parcel": EXPECTED[PARCEL],
        "parcels-of-owner": {"personal_id": OWNER, "items": OWNED},
    }


def test_the_mapping_names_only_what_the_registry_has():
    assert check_upstream_paths(PACKAGE / "mapping.yaml", PACKAGE / "upstream.schema.json") == []


async def test_every_sample_parcel_answers_what_is_expected():
    assert set(EXPECTED) == set(load_records()), "one expected answer per sample parcel"
    async with hub_client(LandRegistryAdapter, create_app()) as client:
        for parcel_id, expected in EXPECTED.items():
            found = await client.post(f"{SERVICE}/lookup-parcel", json={"parcel_id": parcel_id})
            assert found.status_code == 200, found.text
            assert found.json()["data"] == expected


async def test_a_persons_parcels_across_pages_and_nobodys_none():
    config = {"page_size": 2}
    async with hub_client(LandRegistryAdapter, create_app(), config=config) as client:
        owned = await client.post(f"{SERVICE}/parcels-of-owner", json={"personal_id": OWNER})
        assert owned.status_code == 200, owned.text
        assert owned.json()["data"] == {"personal_id": OWNER, "items": OWNED}
        none = await client.post(f"{SERVICE}/parcels-of-owner", json={"personal_id": NOBODY})
        assert none.json()["data"] == {"personal_id": NOBODY, "items": []}


async def test_the_owner_learns_of_a_parcel_lookup_in_their_access_report():
    allow = ["land-registry", "audit:access-log"]
    async with hub_client(LandRegistryAdapter, create_app(), allow=allow) as client:
        found = await client.post(f"{SERVICE}/lookup-parcel", json={"parcel_id": PARCEL})
        assert found.status_code == 200, found.text
        report = await client.get(f"/v1/citizens/{OWNER}/access-log")
        assert report.status_code == 200, report.text
        entries = [e for e in report.json()["data"]["entries"] if e["service"] != "audit"]
        assert [(e["operation"], e["outcome"]) for e in entries] == [("lookup-parcel", "disclosed")]


async def test_bad_input_personal_data_and_names():
    async with hub_client(LandRegistryAdapter, create_app(), purpose="test") as client:
        bad = await client.post(f"{SERVICE}/parcels-of-owner", json={"personal_id": "0680751"})
        assert bad.status_code in (400, 422) and "0680751" not in bad.text
        unpurposed = await client.post(
            f"{SERVICE}/lookup-parcel", json={"parcel_id": PARCEL}, headers={"x-purpose": ""}
        )
        assert unpurposed.status_code in (400, 403), unpurposed.text
        typo = await client.post(f"{SERVICE}/lookup_parcel", json={"parcel_id": PARCEL})
        assert typo.status_code == 404 and "did you mean `lookup-parcel`" in typo.json()["detail"]


async def test_the_mock_takes_faults_and_the_hub_reports_them():
    down = create_app(faults=parse_fault_options(["http-503"]))  # as `--fault http-503`
    async with hub_client(LandRegistryAdapter, down) as client:
        answer = await client.post(f"{SERVICE}/lookup-parcel", json={"parcel_id": PARCEL})
        assert answer.status_code == 503 and answer.json()["code"] == "UPSTREAM_UNAVAILABLE"
        assert OWNER not in answer.text
