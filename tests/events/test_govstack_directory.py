"""The GovStack IM directory services, from the catalogue and the caller's grants."""

from __future__ import annotations

from tests.conftest import RunningHub

BASE = "/r1/VN/GOV/LGSP"


async def test_list_clients_methods_allowed_methods_and_openapi(hub: RunningHub):
    narrow = hub.client(allow=["population:lookup", "civil-status"])
    headers = hub.headers(narrow)
    clients = (await hub.http.get("/listClients", headers=headers)).json()["member"]
    apps = {
        c["id"].get("applicationCode") for c in clients if c["id"]["objectType"] == "APPLICATION"
    }
    assert {"population", "civil-status", "payment"} <= apps
    assert (await hub.http.get("/listClients?instanceId=XX", headers=headers)).json() == {
        "member": []
    }

    listed = (await hub.http.get(f"{BASE}/population/listMethods", headers=headers)).json()
    codes = {m["serviceCode"] for m in listed["member"]}
    assert {"lookup", "verify"} <= codes
    lookup = next(m for m in listed["member"] if m["serviceCode"] == "lookup")
    assert {"method": "POST", "path": "/v1/services/population/lookup"} in lookup["endpointList"][
        "member"
    ]
    allowed = (await hub.http.get(f"{BASE}/population/allowedMethods", headers=headers)).json()
    assert [m["serviceCode"] for m in allowed["member"]] == ["lookup"]
    none = (await hub.http.get(f"{BASE}/payment/allowedMethods", headers=headers)).json()
    assert none == {"member": []}

    document = await hub.http.get(
        f"{BASE}/population/getOpenAPI", params={"serviceCode": "lookup"}, headers=headers
    )
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"] == "3.1.0" and "/v1/services/population/lookup" in spec["paths"]
    assert "personal_id" in spec["components"]["schemas"]["Input"]["properties"]

    for path, status in (
        (f"{BASE}/population/getOpenAPI", 400),
        (f"{BASE}/population/getOpenAPI?serviceCode=nope", 404),
        (f"{BASE}/nowhere/listMethods", 404),
        ("/r1/XX/GOV/LGSP/population/listMethods", 404),
    ):
        answer = await hub.http.get(path, headers=headers)
        assert answer.status_code == status, path
        assert answer.headers["content-type"] == "application/problem+json"
    assert (await hub.http.get(f"{BASE}/population/listMethods")).status_code == 401
