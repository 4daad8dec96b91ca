"""Adapter of the provincial land registry (land-registry): the worked personal-data example.

Upstream (as the mock in `mock.py` speaks it, docs in its docstring): REST/JSON behind an
API key in the `X-API-Key` header, Vietnamese field names; one parcel by its id, and a
person's parcels, page by page. Field mapping: `mapping.yaml`; the registry's answers as a
JSON Schema, which `hub mappings check` and the conformance battery hold the mapping and
the mock to: `upstream.schema.json` (both beside this file).

What it shows, for LGSP work: personal data declared (`personal_data=True`, the default,
so every call needs `X-Purpose`), the audit subjects taken from the *output* too
(`subject_from`: a parcel looked up by its id discloses its owner, whose access report then
lists the call), the hub's own authenticator (`hub.upstream_auth.ApiKey`) and paginator
(`hub.upstream_paging.numbered_pages`), a mapping object reused as an operation's whole
field set, and the mock's fault switch (`mocks.faults`). The hub's core does the rest:
authentication, grants and purpose, validation, timeout, retries, error translation, audit.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.upstream import raise_for_status, response_json
from hub.upstream_auth import ApiKey
from hub.upstream_paging import Page, numbered_pages
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from land_registry.models import OwnerQuery, Parcel, ParcelList, ParcelQuery

__all__ = [
    "LandRegistryAdapter",
    "LandRegistryConfig",
]

API = "/api/v1"


class LandRegistryConfig(AdapterConfig):
    """Settings of the adapter, read from `HUB_LAND_REGISTRY_*`."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_LAND_REGISTRY_",
        extra="forbid",
    )

    base_url: str = Field("http://127.0.0.1:8198", description="Upstream base URL")
    api_key: SecretStr = Field(
        SecretStr("land-registry-key"),
        description="Sent as X-API-Key",
    )
    page_size: int = Field(20, ge=1, le=50, description="Parcels asked for per page")


class LandRegistryAdapter(Adapter):
    """Provincial land registry."""

    name = "land-registry"
    version = "0.1.0"
    title = "Provincial land registry"
    description = "Land parcels and their users (Hệ thống thông tin đất đai cấp tỉnh)."
    mapping = "land_registry:mapping.yaml"
    upstream_schema = "land_registry:upstream.schema.json"
    Config = LandRegistryConfig

    config: LandRegistryConfig

    async def startup(self) -> None:
        self._auth = ApiKey("X-API-Key", self.config.api_key.get_secret_value())
        self._parcel = self.compiled_mapping.operation("lookup-parcel")
        self._of_owner = self.compiled_mapping.operation("parcels-of-owner")

    # The answer names the parcel's user by personal ID: they are the record's subject.
    @operation(subject_from="owner.personal_id")
    async def lookup_parcel(self, request: ParcelQuery, ctx: CallContext) -> Parcel:
        """One parcel by its id, with the land user named on its certificate."""
        response = await self.http.get(
            f"{API}/thua-dat/{quote(request.parcel_id, safe='')}", auth=self._auth
        )
        return Parcel.model_validate(self._parcel.apply(read_json(response)))

    @operation(subject="personal_id", subject_from="items.owner.personal_id")
    async def parcels_of_owner(self, request: OwnerQuery, ctx: CallContext) -> ParcelList:
        """Every parcel a person uses (all the registry's pages); empty when none."""
        size = self.config.page_size
        path = f"{API}/chu-su-dung/{request.personal_id}/thua-dat"

        async def page(number: int) -> Page:
            params = {"trang": number, "soBanGhi": size}
            body = read_json(await self.http.get(path, params=params, auth=self._auth))
            items = body.get("DanhSach")
            return Page(items if isinstance(items, list) else [], total=body.get("TongSo"))

        parcels = [parcel async for parcel in numbered_pages(page, size=size, max_items=2000)]
        whole = {"SoDinhDanh": request.personal_id, "DanhSach": parcels}
        return ParcelList.model_validate(self._of_owner.apply(whole))

    async def health(self) -> Health:
        """The registry's health URL: up, and it takes our key."""
        started = time.perf_counter()
        try:
            response = await self.http.get(f"{API}/suc-khoe", auth=self._auth)
        except httpx.HTTPError as exc:
            return Health(ok=False, detail=type(exc).__name__)
        latency_ms = (time.perf_counter() - started) * 1000
        ok, detail = response.status_code == 200, f"HTTP {response.status_code}"
        return Health(ok=ok, detail=detail, latency_ms=latency_ms)


def read_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object of a 200, or the hub error its status means (404: no such
    parcel). Upstream's text is never passed on: it may quote personal data."""
    raise_for_status(response, not_found=(404,))
    return response_json(response)
