"""Audit subjects from the output: every person an answer disclosed is a subject of the
call's record, so that their access report lists it (a marriage record names two people, an
enterprise record its representatives), the index stays in step with the hashed records,
and `hub audit verify` sees a row removed from it."""

from __future__ import annotations

import hashlib
import hmac
import json

import orjson
import pytest
from pydantic import BaseModel
from sqlalchemy import text

from hub.adapter import Adapter, CallContext, operation
from hub.audit.archive import archive
from hub.audit.chain import CHAINED, GENESIS, record_hash, signing_key
from hub.audit.subjects import assign, path_problem, subjects_in
from hub.audit.verify import verify
from hub.core.models import utcnow
from mocks.business_registration.data import load_register
from mocks.data import load_citizens

MARRIED = next(c for c in load_citizens() if c.marital_status == "married")
ENTERPRISE = next(
    e for e in load_register().enterprises if not e.is_branch and len(e.representatives) == 2
)


def key_of(running) -> bytes:
    return signing_key(running.settings.secret_key.get_secret_value().encode())


async def access_log(hub, personal_id: str) -> list[dict]:
    portal = hub.client(allow=["audit:access-log"], purposes=["self-service"])
    answer = await hub.http.get(
        f"/v1/citizens/{personal_id}/access-log", headers=hub.headers(portal, "self-service")
    )
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["data"]["entries"] if e["service"] != "audit"]


def subject_rows(hub) -> list[tuple[str, int]]:
    with hub.hub.engine.connect() as conn:
        rows = conn.execute(text("SELECT subject_id, record_id FROM audit_subjects")).all()
    return sorted((str(s), int(r)) for s, r in rows)


async def test_an_enterprise_record_is_in_each_representatives_access_report(hub):
    key = hub.client(allow=["business-registration"])
    answer = await hub.http.get(
        f"/v1/enterprises/{ENTERPRISE.code}", headers=hub.headers(key, "test")
    )
    assert answer.status_code == 200, answer.text
    people = [r.personal_id for r in ENTERPRISE.representatives]
    (row,) = [r for r in hub.audit_rows() if r["operation"] == "lookup"]
    assert row["subject_id"] == people[0]
    assert json.loads(row["subjects"]) == people[1:]
    assert subject_rows(hub) == [(people[1], row["id"])]
    for person in people:
        entries = await access_log(hub, person)
        assert [(e["service"], e["operation"], e["outcome"]) for e in entries] == [
            ("business-registration", "lookup", "disclosed")
        ], person
    assert verify(hub.hub.engine, key_of(hub)).ok


async def test_a_marriage_record_is_in_both_spouses_access_reports(hub):
    key = hub.client(allow=["civil-status"])
    listed = await hub.http.get(
        "/v1/civil-status/records",
        params={"personal_id": MARRIED.personal_id},
        headers=hub.headers(key, "test"),
    )
    assert listed.status_code == 200, listed.text
    marriage = next(r for r in listed.json()["data"]["records"] if r["kind"] == "marriage")
    spouses = [p["personal_id"] for p in marriage["persons"] if p["personal_id"]]
    assert len(spouses) == 2 and MARRIED.personal_id in spouses
    (spouse,) = [p for p in spouses if p != MARRIED.personal_id]
    other = hub.client(allow=["civil-status"])
    found = await hub.http.get(
        f"/v1/civil-status/records/marriage/{marriage['number']}",
        headers=hub.headers(other, "test"),
    )
    assert found.status_code == 200, found.text
    for person in spouses:
        operations = [e["operation"] for e in await access_log(hub, person)]
        # the spouse's list of records disclosed them too; then the record itself
        assert operations == ["records", "record"], (person, operations)
    # the admin search by subject finds both records too
    admin = hub.client(allow=["admin:audit"], purposes=["audit"])
    searched = await hub.http.get(
        "/admin/audit", params={"subject_id": spouse}, headers=hub.headers(admin, "audit")
    )
    assert searched.status_code == 200, searched.text
    ops = [r["operation"] for r in searched.json()["data"]["records"]]
    assert ops[:2] == ["records", "record"], ops


async def test_verify_sees_the_subject_index_or_the_subjects_altered(hub):
    key = hub.client(allow=["business-registration"])
    answer = await hub.http.get(
        f"/v1/enterprises/{ENTERPRISE.code}", headers=hub.headers(key, "test")
    )
    assert answer.status_code == 200
    engine, audit_key = hub.hub.engine, key_of(hub)
    assert verify(engine, audit_key).ok
    ((person, record_id),) = subject_rows(hub)
    with engine.begin() as conn:  # hide the access from the second representative's report
        conn.execute(text("DELETE FROM audit_subjects WHERE record_id = :r"), {"r": record_id})
    found = verify(engine, audit_key)
    assert not found.ok
    assert found.problems == [
        f"record {record_id}: a subject it disclosed is missing from the subject index"
    ]
    assert await access_log(hub, person) == []
    with engine.begin() as conn:  # and both: the record's hashed list edited to match
        conn.execute(
            text("UPDATE audit_records SET subjects = NULL WHERE id = :r"), {"r": record_id}
        )
    found = verify(engine, audit_key)
    assert not found.ok and "altered or forged" in found.problems[0]


async def test_archiving_takes_the_index_rows_with_the_records(hub, tmp_path):
    key = hub.client(allow=["business-registration"])
    answer = await hub.http.get(
        f"/v1/enterprises/{ENTERPRISE.code}", headers=hub.headers(key, "test")
    )
    assert answer.status_code == 200
    manifest = archive(hub.hub.engine, key_of(hub), tmp_path / "archive", utcnow())
    assert manifest is not None
    assert subject_rows(hub) == []
    assert verify(hub.hub.engine, key_of(hub), tmp_path / "archive").ok


def test_records_hashed_before_the_subjects_column_keep_their_hash():
    key = b"k" * 32
    row = dict.fromkeys(CHAINED)
    row.update(id=1, at="2026-01-01 00:00:00.000000", status=200, duration_ms=1.0)
    old = [None if row[c] is None else row[c] for c in CHAINED[: CHAINED.index("fields") + 1]]
    old = [1, "2026-01-01T00:00:00.000000Z", *old[2:]]
    old[CHAINED.index("status")], old[CHAINED.index("duration_ms")] = 200, 1.0
    before = hmac.digest(key, GENESIS.encode() + b"\n" + orjson.dumps(old), hashlib.sha256)
    assert record_hash(key, GENESIS, row) == before.hex()
    assert record_hash(key, GENESIS, {**row, "subjects": '["001085000001"]'}) != before.hex()


def test_subjects_are_read_through_lists_and_assigned():
    data = {"persons": [{"personal_id": "A"}, {"personal_id": None}, {"personal_id": "B"}]}
    assert subjects_in(data, ["persons.personal_id"]) == ["A", "B"]
    assert subjects_in({"owner": {"personal_id": "A"}}, ["owner.personal_id", "x.y"]) == ["A"]
    assert assign(None, ["A", "B"]) == ("A", '["B"]')
    assert assign("A", ["A"]) == ("A", None)
    assert assign("C", ["A", "B"]) == ("C", '["A","B"]')


class Owner(BaseModel):
    personal_id: str
    name: str


class Parcel(BaseModel):
    parcel_id: str
    owners: list[Owner]


class Query(BaseModel):
    parcel_id: str


def test_a_subject_path_the_output_does_not_have_is_refused_at_declaration():
    assert path_problem(Parcel, "owners.personal_id") is None
    assert path_problem(Parcel, "owners.personal") == "Owner has no field 'personal'"
    assert path_problem(Parcel, "parcel_id.x") == "'parcel_id' is not an object"
    with pytest.raises(TypeError, match=r"subject_from 'owner\.personal_id'"):

        class Broken(Adapter):
            name = "broken"
            version = "1"

            @operation(subject_from="owner.personal_id")
            async def parcel(self, request: Query, ctx: CallContext) -> Parcel:
                raise NotImplementedError
