"""Resource routes and profile sections are declared by adapters, a third party's too.

A throwaway land-registry adapter declares a GET route with a path parameter, a GET route
with a renamed query parameter, a POST route and a citizen-profile section; the core serves
each through the same pipeline (grant, purpose, audit) with no route of its own.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from hub.adapter import Adapter, CallContext, Health, operation
from hub.app import create_app
from hub.canonical import PersonalIdStr
from hub.core.registry import AdapterLoadError
from tests.conftest import running_hub

PID = "001085012345"


class Parcel(BaseModel):
    parcel_id: str


class Owner(BaseModel):
    personal_id: PersonalIdStr
    page: int = 1


class ParcelOut(BaseModel):
    parcel_id: str
    owner_personal_id: str | None = None
    page: int | None = None


class LandRegistry(Adapter):
    name, version = "land-registry", "1"

    @operation(resource="GET /v1/parcels/{parcel_id}", personal_data=False)
    async def lookup_parcel(self, request: Parcel, ctx: CallContext) -> ParcelOut:
        """A parcel."""
        return ParcelOut(parcel_id=request.parcel_id)

    @operation(
        subject="personal_id",
        resource="GET /v1/parcels",
        resource_query={"owner": "personal_id"},
        profile="parcels",
    )
    async def parcels_of_owner(self, request: Owner, ctx: CallContext) -> ParcelOut:
        """A person's parcels."""
        return ParcelOut(parcel_id="P-1", owner_personal_id=request.personal_id, page=request.page)

    @operation(subject="personal_id", resource="POST /v1/parcels/search")
    async def search(self, request: Owner, ctx: CallContext) -> ParcelOut:
        """Search by owner."""
        return ParcelOut(parcel_id="P-2", owner_personal_id=request.personal_id)

    async def health(self) -> Health:
        return Health(ok=True)


async def test_declared_routes_are_served_through_the_pipeline(settings) -> None:
    settings.adapters = {"land-registry": {"base_url": "http://unused.test"}}
    async with running_hub(settings, adapters=[LandRegistry]) as hub:
        key = hub.client()
        parcel = await hub.http.get("/v1/parcels/P-9", headers=hub.headers(key, purpose=None))
        assert parcel.status_code == 200, parcel.text
        assert parcel.json()["data"]["parcel_id"] == "P-9"
        assert parcel.json()["meta"]["operation"] == "lookup-parcel"

        owned = await hub.http.get(
            "/v1/parcels", params={"owner": PID, "page": "2"}, headers=hub.headers(key)
        )
        assert owned.json()["data"] == {"parcel_id": "P-1", "owner_personal_id": PID, "page": 2}
        # The purpose check, input validation and grants are the pipeline's, as for any call.
        no_purpose = await hub.http.get(
            "/v1/parcels", params={"owner": PID}, headers=hub.headers(key, purpose=None)
        )
        assert no_purpose.json()["code"] == "PURPOSE_REQUIRED"
        bad = await hub.http.get("/v1/parcels", params={"owner": "123"}, headers=hub.headers(key))
        assert bad.status_code == 400 and "123" not in bad.text
        limited = hub.client(allow=["land-registry:lookup-parcel"])
        refused = await hub.http.get(
            "/v1/parcels", params={"owner": PID}, headers=hub.headers(limited)
        )
        assert refused.status_code == 403

        searched = await hub.http.post(
            "/v1/parcels/search", json={"personal_id": PID}, headers=hub.headers(key)
        )
        assert searched.json()["data"]["parcel_id"] == "P-2"

        profile = await hub.http.get(f"/v1/citizens/{PID}/profile", headers=hub.headers(key))
        assert profile.json()["data"]["parcels"]["status"] == "ok"
        assert profile.json()["data"]["parcels"]["data"]["owner_personal_id"] == PID

        subjects = [
            (r["operation"], r["subject_id"])
            for r in hub.audit_rows()
            if r["service"] == "land-registry" and r["status"] == 200
        ]
        assert ("parcels-of-owner", PID) in subjects and ("search", PID) in subjects
        paths = (await hub.http.get("/openapi.json")).json()["paths"]
        assert {"/v1/parcels/{parcel_id}", "/v1/parcels", "/v1/parcels/search"} <= set(paths)


def test_two_adapters_declaring_one_route_are_refused(settings) -> None:
    class Twin(LandRegistry):
        name = "land-registry-twin"

    settings.adapters = {
        "land-registry": {"base_url": "http://u.test"},
        "land-registry-twin": {"base_url": "http://u.test"},
    }
    with pytest.raises(AdapterLoadError, match="is declared by land-registry:"):
        create_app(settings, adapters=[LandRegistry, Twin])


def test_bad_declarations_fail_at_class_creation() -> None:
    with pytest.raises(ValueError, match="must be 'GET /v1/"):
        operation(resource="DELETE /v1/parcels")
    with pytest.raises(ValueError, match="takes its input as the body"):
        operation(resource="POST /v1/parcels/{parcel_id}")
    with pytest.raises(TypeError, match="renames no field"):

        class Renamed(Adapter):
            name, version = "renamed", "1"

            @operation(resource="GET /v1/x", resource_query={"q": "nowhere"})
            async def find(self, request: Parcel, ctx: CallContext) -> ParcelOut:
                """Find."""
                raise NotImplementedError
