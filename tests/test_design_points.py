"""Design points of issue 18, finding 9: an admin's rotation of another client's key, who may
make `*` clients, and the shape of X-Officer-ID / X-Dossier-ID. (Certificates at rest:
tests/core/test_sealed.py.)"""

from __future__ import annotations

import uuid

import pytest

from tests.test_access_control import bearer, new_client
from tests.test_pipeline import PID, assert_problem, call, echo, upstream  # noqa: F401

# -- key rotation by an admin ------------------------------------------------------------------


async def test_an_admin_rotating_another_clients_key_revokes_the_old_one_at_once(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    old = new_client(echo, allow=["echo"], name="tax-office")
    admin = new_client(echo, allow=["admin:clients"])
    assert (await call(echo, old)).status_code == 200
    asked = await echo.http.post(
        "/admin/clients/tax-office/rotate-key", json={"grace_hours": 24}, headers=bearer(admin)
    )
    assert_problem(asked, 400, "BAD_REQUEST")  # a grace is the client's own choice
    assert (await call(echo, old)).status_code == 200  # nothing changed
    rotated = await echo.http.post("/admin/clients/tax-office/rotate-key", headers=bearer(admin))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["data"]["older_keys_expire_in_hours"] == 0
    assert_problem(await call(echo, old), 401, "UNAUTHENTICATED")  # the agency notices
    assert (await call(echo, rotated.json()["data"]["api_key"])).status_code == 200
    # Audited: who rotated, and the refusal before it too.
    rows = [r for r in echo.audit_rows() if r["operation"] == "rotate-key"]
    assert [(r["status"], r["code"]) for r in rows] == [(400, "BAD_REQUEST"), (200, "OK")]
    shown = await echo.http.get("/admin/clients/tax-office", headers=bearer(admin))
    by = {r["client_id"] for r in rows}
    assert len(by) == 1 and shown.json()["data"]["client_id"] not in by  # the admin did


async def test_a_client_rotating_its_own_key_keeps_the_grace(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    own = new_client(echo, allow=["admin:clients", "echo"], name="self-service")
    rotated = await echo.http.post("/admin/clients/self-service/rotate-key", headers=bearer(own))
    assert rotated.json()["data"]["older_keys_expire_in_hours"] == 24
    assert (await call(echo, own)).status_code == 200  # still works during the grace


# -- `*` clients -------------------------------------------------------------------------------


async def test_only_an_admin_holding_star_makes_or_manages_a_star_client(echo):  # noqa: F811
    admin = new_client(echo, allow=["admin:clients"])
    made = await echo.http.post(
        "/admin/clients",
        json={"name": "everything", "allow": ["*"], "purposes": ["any"]},
        headers=bearer(admin),
    )
    assert_problem(made, 403, "FORBIDDEN")
    new_client(echo, allow=["*"], name="broad")  # the operator's CLI may
    for action in ("rotate-key", "revoke"):
        taken = await echo.http.post(f"/admin/clients/broad/{action}", headers=bearer(admin))
        assert_problem(taken, 403, "FORBIDDEN")
    star_admin = new_client(echo, allow=["admin:clients", "*"])
    ok = await echo.http.post(
        "/admin/clients",
        json={"name": "everything", "allow": ["*"], "purposes": ["any"]},
        headers=bearer(star_admin),
    )
    assert ok.status_code == 201, ok.text


# -- X-Officer-ID and X-Dossier-ID -------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-officer-id", "x-dossier-id"])
@pytest.mark.parametrize(
    "value",
    ["Nguyễn Văn An".encode(), b"Nguyen Van An", b"-cb", b"cb 7", b"a\tb", b"<script>"],
    ids=["vietnamese-name", "ascii-name", "leading-dash", "space", "tab", "markup"],
)
async def test_officer_and_dossier_ids_that_are_not_codes_are_400(echo, upstream, header, value):  # noqa: F811
    route = upstream.get(f"/items/{PID}").respond(json={"value": 1})
    key = echo.client()
    response = await call(echo, key, **{header: value})
    problem = assert_problem(response, 400, "BAD_REQUEST")
    assert {"x-officer-id": "X-Officer-ID", "x-dossier-id": "X-Dossier-ID"}[header] in problem[
        "detail"
    ]
    assert value.decode("latin-1") not in response.text
    assert not route.called
    row = echo.audit_rows()[-1]
    assert row["code"] == "BAD_REQUEST"
    assert row["officer_id"] is None and row["dossier_id"] is None  # not kept either


@pytest.mark.parametrize(
    ("officer", "dossier"),
    [("CB-7", "000.00.01.H26-261201-0001"), ("cb_01", "HS:2026/0001"), ("can.bo@so.gov.vn", "1")],
)
async def test_codes_pass_and_are_audited(echo, upstream, officer, dossier):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    response = await call(echo, echo.client(), **{"x-officer-id": officer, "x-dossier-id": dossier})
    assert response.status_code == 200, response.text
    row = echo.audit_rows()[-1]
    assert (row["officer_id"], row["dossier_id"]) == (officer, dossier)


async def test_a_payments_dossier_id_is_a_code_too(hub):
    key = hub.client()
    order = {
        "amount": 1000,
        "description": "Lệ phí",
        "procedure_code": "1.0001",
        "dossier_id": "Nguyễn Văn An",
        "payer_name": "Nguyễn Văn An",
    }
    response = await hub.http.post(
        "/v1/payments",
        json=order,
        headers=hub.headers(key, **{"idempotency-key": uuid.uuid4().hex}),
    )
    assert_problem(response, 422, "VALIDATION_ERROR")
