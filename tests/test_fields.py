"""Field-level policy: a client receives only the canonical fields granted to it, through
every route (resource, generic, profile), nested objects and lists included; a client
allowed only `verify` never receives personal data at all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hub.fields import check_field_grants, parse_field_grant, trim
from mocks.data import load_citizens
from tests.conftest import RunningHub

CITIZEN = next(c for c in load_citizens() if c.marital_status == "married")
NAME_AND_PROVINCE = {
    "population": ["full_name", "date_of_birth", "permanent_address.province_code"],
}


async def test_a_client_receives_only_its_granted_fields(hub: RunningHub) -> None:
    trimmed, full = hub.client(fields=NAME_AND_PROVINCE), hub.client()
    url = f"/v1/citizens/{CITIZEN.personal_id}"
    answer = await hub.http.get(url, headers=hub.headers(trimmed))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "full_name": CITIZEN.full_name,
        "date_of_birth": CITIZEN.date_of_birth.isoformat(),
        "permanent_address": {"province_code": CITIZEN.permanent_address.province_code},
    }
    everything = (await hub.http.get(url, headers=hub.headers(full))).json()["data"]
    assert {"father", "household", "ethnicity_code"} <= set(everything)

    generic = await hub.http.post(
        "/v1/services/population/lookup",
        json={"personal_id": CITIZEN.personal_id},
        headers=hub.headers(trimmed),
    )
    assert generic.json()["data"] == answer.json()["data"]

    profile = (await hub.http.get(f"{url}/profile", headers=hub.headers(trimmed))).json()
    assert profile["data"]["citizen"]["data"] == answer.json()["data"]
    assert profile["data"]["civil_status"]["data"]["records"]  # no grant there: in full


async def test_lists_are_cut_element_by_element(hub: RunningHub) -> None:
    key = hub.client(fields={"civil-status": ["records.kind", "records.registered_on"]})
    answer = await hub.http.get(
        f"/v1/civil-status/records?personal_id={CITIZEN.personal_id}", headers=hub.headers(key)
    )
    assert answer.status_code == 200, answer.text
    records = answer.json()["data"]["records"]
    assert records and all(set(r) == {"kind", "registered_on"} for r in records)
    assert set(answer.json()["data"]) == {"records"}


async def test_a_verify_only_client_never_receives_personal_data(hub: RunningHub) -> None:
    key = hub.client(allow=["population:verify"])
    stated = {
        "personal_id": CITIZEN.personal_id,
        "full_name": "Someone Else",
        "date_of_birth": CITIZEN.date_of_birth.isoformat(),
    }
    answer = await hub.http.post("/v1/citizens/verify", json=stated, headers=hub.headers(key))
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert CITIZEN.full_name not in text and CITIZEN.permanent_address.detail not in text
    assert answer.json()["data"]["match"] is False
    lookup = await hub.http.get(f"/v1/citizens/{CITIZEN.personal_id}", headers=hub.headers(key))
    assert lookup.status_code == 403


def test_trim_keeps_whole_what_is_granted_whole():
    data = {"a": {"x": 1, "y": 2}, "b": [{"k": 1, "v": 2}, {"k": 3, "v": 4}], "c": 5}
    assert trim(data, ["a.x", "b.k"]) == {"a": {"x": 1}, "b": [{"k": 1}, {"k": 3}]}
    assert trim(data, ["a", "a.x"]) == {"a": {"x": 1, "y": 2}}  # "a" whole wins
    assert trim(data, ["a.x", "a"]) == {"a": {"x": 1, "y": 2}}
    assert trim({"a": None}, ["a.x"]) == {"a": None}


def test_grants_are_checked_against_what_services_answer():
    from adapters.population import PopulationAdapter

    outputs = {"population": [s.output_model for s in PopulationAdapter.operations.values()]}
    check_field_grants({"population": ["full_name", "household.head.full_name"]}, outputs)
    with pytest.raises(ValueError, match="answers no field 'colour'"):
        check_field_grants({"population": ["colour"]}, outputs)
    with pytest.raises(ValueError, match=r"answers no field 'full_name\.first'"):
        check_field_grants({"population": ["full_name.first"]}, outputs)
    with pytest.raises(ValueError, match="no service named 'weather'"):
        check_field_grants({"weather": ["x"]}, outputs)
    assert parse_field_grant("population: full_name, gender") == (
        "population",
        ["full_name", "gender"],
    )
    with pytest.raises(ValueError):
        parse_field_grant("population")


def test_hub_clients_create_refuses_a_field_no_service_answers(tmp_path):
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db"}
    hub = [sys.executable, "-m", "hub.cli", "clients", "create"]
    ok = subprocess.run(
        [*hub, "tax", "--allow", "population", "--fields", "population:full_name,gender"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*hub, "tax2", "--allow", "population", "--fields", "population:salary"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0 and "answers no field 'salary'" in bad.stderr
