"""Access control around the national systems: officer and dossier made mandatory per
client, the admin API (clients and keys; the audit trail for auditors) behind explicit admin
grants, and the access report a citizen asks for: who looked at my data, when and why."""

from __future__ import annotations

import uuid

from hub.security.auth import create_client
from tests.test_pipeline import PID, assert_problem, call, echo, upstream  # noqa: F401

OTHER = "001085054321"


def new_client(echo, *, allow, purposes=("test",), agency=None, name=None, **extra) -> str:  # noqa: F811
    return create_client(
        echo.hub.engine,
        echo.settings.secret_key.get_secret_value().encode(),
        name=name or f"client-{uuid.uuid4().hex[:8]}",
        allow=allow,
        purposes=purposes,
        agency=agency,
        **extra,
    ).api_key


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **extra}


# -- officer and dossier ----------------------------------------------------------------------


async def test_officer_and_dossier_can_be_required_per_client(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    strict = echo.client(require_officer=True, require_dossier=True)
    assert_problem(await call(echo, strict), 400, "OFFICER_REQUIRED")
    assert_problem(await call(echo, strict, **{"X-Officer-ID": "cb-1"}), 400, "DOSSIER_REQUIRED")
    answer = await call(echo, strict, **{"X-Officer-ID": "cb-1", "X-Dossier-ID": "hs-9"})
    assert answer.status_code == 200
    # a call that is not about personal data does not need them
    upstream.post("/charges").respond(json={"value": 2})
    charge = await call(echo, strict, {"amount": 1}, path="/v1/services/echo/charge")
    assert charge.status_code == 200
    # a client not so created is unaffected
    assert (await call(echo, echo.client())).status_code == 200
    codes = [r["code"] for r in echo.audit_rows()]
    assert codes == ["OFFICER_REQUIRED", "DOSSIER_REQUIRED", "OK", "OK", "OK"]
    row = echo.audit_rows()[2]
    assert (row["officer_id"], row["dossier_id"], row["purpose"]) == ("cb-1", "hs-9", "test")


# -- the admin API ----------------------------------------------------------------------------


async def test_star_never_grants_the_admin_api(echo):  # noqa: F811
    everything = echo.client(allow=["*"])
    answer = await echo.http.get("/admin/clients", headers=bearer(everything))
    assert_problem(answer, 403, "FORBIDDEN")
    assert_problem(await echo.http.get("/admin/clients"), 401, "UNAUTHENTICATED")
    [row] = echo.audit_rows()
    assert (row["service"], row["operation"], row["code"]) == ("admin", "list-clients", "FORBIDDEN")


async def test_admin_manages_clients_and_keys_end_to_end(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    admin = new_client(echo, allow=["admin:clients"])
    spec = {
        "name": "tax-office",
        "agency": "Cục Thuế",
        "allow": ["echo:get"],
        "purposes": ["test"],
        "fields": {"echo": ["value"]},
        "rate_per_minute": 100,
        "require_officer": True,
        "expires_in_days": 30,
    }
    created = await echo.http.post("/admin/clients", json=spec, headers=bearer(admin))
    assert created.status_code == 201, created.text
    audited = [r for r in echo.audit_rows() if r["operation"] == "create-client"]
    assert [r["status"] for r in audited] == [201]  # what the answer was (finding 6)
    key = created.json()["data"]["api_key"]
    assert key.startswith("hub_")
    answer = await call(echo, key, **{"X-Officer-ID": "cb-7"})
    assert answer.json()["data"] == {"value": 1}  # its field grant applies

    shown = await echo.http.get("/admin/clients/tax-office", headers=bearer(admin))
    client = shown.json()["data"]
    assert client["agency"] == "Cục Thuế" and client["require_officer"] is True
    assert [k["state"] for k in client["keys"]] == ["live"]
    assert client["keys"][0]["expires_at"] > client["created_at"]
    listed = await echo.http.get("/admin/clients", headers=bearer(admin))
    assert "tax-office" in [c["name"] for c in listed.json()["data"]["clients"]]
    assert key not in shown.text + listed.text

    rotated = await echo.http.post(
        "/admin/clients/tax-office/rotate-key", json={"grace_hours": 0}, headers=bearer(admin)
    )
    new_key = rotated.json()["data"]["api_key"]
    assert (await call(echo, new_key, **{"X-Officer-ID": "cb-7"})).status_code == 200
    assert_problem(await call(echo, key, **{"X-Officer-ID": "cb-7"}), 401, "UNAUTHENTICATED")

    revoked = await echo.http.post("/admin/clients/tax-office/revoke", headers=bearer(admin))
    assert revoked.json()["data"] == {"revoked_keys": 2, "client_revoked": True}
    assert_problem(await call(echo, new_key, **{"X-Officer-ID": "cb-7"}), 401, "UNAUTHENTICATED")

    admin_rows = [r for r in echo.audit_rows() if r["service"] == "admin"]
    assert [r["operation"] for r in admin_rows] == [
        "create-client",
        "show-client",
        "list-clients",
        "rotate-key",
        "revoke",
    ]
    # the keys the admin API answered with are not in its audit records
    assert all(key not in str(r) and new_key not in str(r) for r in admin_rows)


async def test_admin_refusals_are_clear(echo):  # noqa: F811
    admin = new_client(echo, allow=["admin:clients"])
    headers = bearer(admin)
    good = {"name": "a", "allow": ["echo"]}
    assert (await echo.http.post("/admin/clients", json=good, headers=headers)).status_code == 201
    again = await echo.http.post("/admin/clients", json=good, headers=headers)
    assert_problem(again, 409, "CONFLICT")
    bad = await echo.http.post(
        "/admin/clients", json={"name": "b", "allow": [], "extra": 1}, headers=headers
    )
    problem = assert_problem(bad, 422, "VALIDATION_ERROR")
    assert {"allow", "extra"} <= {e["field"] for e in problem["errors"]}
    grants = await echo.http.post(
        "/admin/clients",
        json={"name": "c", "allow": ["echo"], "fields": {"echo": ["nope"]}},
        headers=headers,
    )
    assert_problem(grants, 400, "BAD_REQUEST")
    missing = await echo.http.get("/admin/clients/nobody", headers=headers)
    assert_problem(missing, 404, "NOT_FOUND")
    broken = await echo.http.post("/admin/clients/a/revoke", content=b"{nope", headers=headers)
    assert_problem(broken, 400, "INVALID_JSON")
    # an admin of clients is not an auditor
    audit = await echo.http.get("/admin/audit", headers={**headers, "x-purpose": "test"})
    assert_problem(audit, 403, "FORBIDDEN")


async def test_auditors_search_the_trail(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    upstream.get(f"/items/{OTHER}").respond(json={"value": 2})
    first, second = echo.client(), echo.client()
    await call(echo, first)
    await call(echo, second, {"personal_id": OTHER})
    await call(echo, second)
    auditor = new_client(echo, allow=["admin:audit"], purposes=["audit"])
    assert_problem(
        await echo.http.get("/admin/audit", headers=bearer(auditor)), 400, "PURPOSE_REQUIRED"
    )
    headers = bearer(auditor, **{"x-purpose": "audit"})

    async def search(**params):
        answer = await echo.http.get("/admin/audit", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    by_subject = await search(subject_id=PID)
    assert [r["subject_id"] for r in by_subject["records"]] == [PID, PID]
    second_id = by_subject["records"][1]["client_id"]
    by_client = await search(client_id=second_id)
    assert [r["subject_id"] for r in by_client["records"]] == [OTHER, PID]
    assert by_client["records"][0]["fields"] == ["personal_id", "value"]
    page = await search(service="echo", limit="2")
    assert len(page["records"]) == 2 and page["next_after"] == page["records"][1]["id"]
    rest = await search(service="echo", after=str(page["next_after"]))
    assert len(rest["records"]) == 1 and rest["next_after"] is None
    assert (await search(since="2999-01-01"))["records"] == []
    bad = await echo.http.get("/admin/audit", params={"since": "yesterday"}, headers=headers)
    assert "since" in assert_problem(bad, 400, "BAD_REQUEST")["detail"]
    odd = await echo.http.get("/admin/audit", params={"who": "x"}, headers=headers)
    assert_problem(odd, 400, "BAD_REQUEST")
    verified = await echo.http.get("/admin/audit/verify", headers=headers)
    assert verified.json()["data"]["intact"] is True
    # the auditors' own reads are in the trail; a search for a person is recorded about them
    reads = [r for r in echo.audit_rows() if r["operation"] == "audit-search"]
    assert len(reads) == 8 and reads[0]["code"] == "PURPOSE_REQUIRED"
    assert [r["subject_id"] for r in reads if r["subject_id"]] == [PID]


# -- the citizen's access report --------------------------------------------------------------


async def test_a_citizen_learns_who_accessed_their_data(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    upstream.get(f"/items/{OTHER}").respond(json={"value": 2})
    police = new_client(echo, allow=["echo"], agency="Công an tỉnh")
    tax = new_client(echo, allow=["echo"], agency="Cục Thuế", fields={"echo": ["value"]})
    portal = new_client(echo, allow=["audit:access-log"], purposes=["self-service"])
    await call(echo, police, **{"X-Officer-ID": "cb-1", "X-Dossier-ID": "HS-001"})
    await call(echo, tax, {"personal_id": OTHER})
    await call(echo, tax)
    answer = await echo.http.get(
        f"/v1/citizens/{PID}/access-log", headers=bearer(portal, **{"x-purpose": "self-service"})
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()["data"]
    assert report["personal_id"] == PID
    entries = report["entries"]
    assert [(e["agency"], e["purpose"], e["outcome"]) for e in entries] == [
        ("Công an tỉnh", "test", "disclosed"),
        ("Cục Thuế", "test", "disclosed"),
    ]
    assert entries[0]["dossier_id"] == "HS-001" and entries[1]["fields"] == ["value"]
    assert "cb-1" not in answer.text  # the civil servant's own identifier stays out
    assert OTHER not in answer.text
    # reading the report is itself recorded about the person
    again = await echo.http.get(
        f"/v1/citizens/{PID}/access-log", headers=bearer(portal, **{"x-purpose": "self-service"})
    )
    last = again.json()["data"]["entries"][-1]
    assert (last["service"], last["operation"]) == ("audit", "access-log")


async def test_the_access_report_is_refused_without_its_grant_or_a_valid_id(echo):  # noqa: F811
    portal = new_client(echo, allow=["audit:access-log"], purposes=["self-service"])
    headers = bearer(portal, **{"x-purpose": "self-service"})
    bad = await echo.http.get("/v1/citizens/123/access-log", headers=headers)
    assert_problem(bad, 400, "INVALID_PERSONAL_ID")
    odd = await echo.http.get(f"/v1/citizens/{PID}/access-log?x=1", headers=headers)
    assert_problem(odd, 400, "BAD_REQUEST")
    other = new_client(echo, allow=["echo"])
    refused = await echo.http.get(
        f"/v1/citizens/{PID}/access-log", headers=bearer(other, **{"x-purpose": "test"})
    )
    assert_problem(refused, 403, "FORBIDDEN")
    no_purpose = await echo.http.get(f"/v1/citizens/{PID}/access-log", headers=bearer(portal))
    assert_problem(no_purpose, 400, "PURPOSE_REQUIRED")


# -- the hub's own grants are never implied -----------------------------------------------------


async def test_star_grants_neither_the_admin_api_nor_the_access_report(echo):  # noqa: F811
    everything = echo.client(allow=["*"])
    report = await echo.http.get(f"/v1/citizens/{PID}/access-log", headers=echo.headers(everything))
    assert_problem(report, 403, "FORBIDDEN")


async def test_an_admin_of_clients_cannot_make_or_take_over_an_auditor(echo):  # noqa: F811
    new_client(echo, allow=["admin:audit"], purposes=["audit"], name="inspectorate")
    admin = new_client(echo, allow=["admin:clients"])
    for allow in (["admin:audit"], ["admin"], ["audit:access-log"], ["echo", "admin:audit"]):
        made = await echo.http.post(
            "/admin/clients",
            json={"name": f"x-{len(allow)}", "allow": allow},
            headers=bearer(admin),
        )
        assert_problem(made, 403, "FORBIDDEN")
    for action in ("rotate-key", "revoke"):
        taken = await echo.http.post(f"/admin/clients/inspectorate/{action}", headers=bearer(admin))
        assert_problem(taken, 403, "FORBIDDEN")
    # ordinary clients and its own kind it manages
    ok = await echo.http.post(
        "/admin/clients", json={"name": "helper", "allow": ["admin:clients", "echo"]},
        headers=bearer(admin),
    )  # fmt: skip
    assert ok.status_code == 201
    rotated = await echo.http.post("/admin/clients/helper/rotate-key", headers=bearer(admin))
    assert rotated.status_code == 200
    # an admin holding both may
    both = new_client(echo, allow=["admin:clients", "admin:audit"])
    again = await echo.http.post("/admin/clients/inspectorate/rotate-key", headers=bearer(both))
    assert again.status_code == 200


async def test_query_values_are_checked_before_any_query(echo):  # noqa: F811
    auditor = new_client(echo, allow=["admin:audit"], purposes=["audit"])
    headers = bearer(auditor, **{"x-purpose": "audit"})
    for params in ({"after": "²"}, {"limit": "٣"}, {"since": "0001-01-01T00:00:00+01:00"},
                   {"subject_id": "9" * 65}, {"client_id": "c" * 41}):  # fmt: skip
        answer = await echo.http.get("/admin/audit", params=params, headers=headers)
        assert_problem(answer, 400, "BAD_REQUEST")
    portal = new_client(echo, allow=["audit:access-log"], purposes=["p"])
    extreme = await echo.http.get(
        f"/v1/citizens/{PID}/access-log",
        params={"until": "9999-12-31T23:59:59-01:00"},
        headers=bearer(portal, **{"x-purpose": "p"}),
    )
    assert_problem(extreme, 400, "BAD_REQUEST")
    assert all(len(r["subject_id"] or "") <= 64 for r in echo.audit_rows())
