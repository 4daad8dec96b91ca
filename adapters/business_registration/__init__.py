"""Adapter of the National Business Registration Database (DKKD), behind the LGSP gateway.

Upstream contract: docs/mock-business-registration.md. Field mapping:
`mapping.yaml` beside this file. Every API call carries the gateway's
`lgspaccesstoken` header (base64 JSON of AccessKey, SecretKey, AppName, PartnerCode) and a
bearer token from `POST /api/token`. The token is cached until shortly before it expires;
concurrent calls share one fetch, and a call answered 401 drops the token and is sent once
more with a new one: the only repeat this adapter makes itself (the core owns retries).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from adapters.business_registration.models import (
    Enterprise,
    EnterpriseList,
    EnterpriseLookup,
    EnterprisePage,
    EnterpriseSearch,
    EnterpriseStatusChanged,
    RepresentativeQuery,
)
from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.errors import HubError, NotFound, UpstreamBadResponse, UpstreamRejected
from hub.events import ChangePage, EventType, UpstreamEvent
from hub.upstream import raise_for_status, response_json
from hub.upstream_auth import GatewayToken


class BusinessRegistrationConfig(AdapterConfig):
    """Settings of the business-registration adapter (`HUB_BUSINESS_REGISTRATION_*`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_BUSINESS_REGISTRATION_", extra="forbid")

    base_url: str = Field("http://127.0.0.1:8104", description="Upstream (gateway) base URL")
    token_path: str = Field("/api/token", description="The gateway's token endpoint")
    api_path: str = Field("/apiDKKD/DoanhNghiep", description="Prefix of the DKKD API")
    access_key: str = Field("hub", description="Gateway AccessKey")
    secret_key: SecretStr = Field(
        SecretStr("business-registration-secret"), description="Gateway SecretKey"
    )
    app_name: str = Field("LGSP-HUB", description="Gateway AppName")
    partner_code: str = Field("LGSP-HUB", description="Gateway PartnerCode")
    token_renew_before_s: float = Field(
        30, ge=0, description="Renew the token this long before it expires"
    )


def _error_code(response: httpx.Response) -> str | None:
    """DKKD's `MaLoi` (a code, never personal data), when the body carries one."""
    try:
        code = response_json(response).get("MaLoi")
    except UpstreamBadResponse:  # an error page, or nothing: no code
        return None
    return code if isinstance(code, str) and len(code) <= 16 else None


def read_json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 200 answer; other answers become hub errors (every 4xx is our
    request or credentials refused: DKKD answers an unknown code with an empty list)."""
    if response.status_code != 200:
        raise_for_status(response, log_context={"upstream_code": _error_code(response)})
    return response_json(response)


class BusinessRegistrationAdapter(Adapter):
    """Look enterprises up, search them by name, list those a person represents."""

    name = "business-registration"
    version = "1.0.0"
    title = "National Business Registration Database"
    description = (
        "Enterprise registration records (Cơ sở dữ liệu quốc gia về đăng ký doanh nghiệp)."
    )
    mapping = "adapters.business_registration:mapping.yaml"
    upstream_schema = "adapters.business_registration:upstream.schema.json"
    Config = BusinessRegistrationConfig
    #: From the register's status-change feed (bienDong), polled by the core.
    event_types = (
        EventType(
            "status-changed",
            payload=EnterpriseStatusChanged,
            personal_data=False,
            province="province_code",
            mapping="status-changed",
        ),
    )

    config: BusinessRegistrationConfig

    async def startup(self) -> None:
        config = self.config
        credential = {
            "AccessKey": config.access_key,
            "SecretKey": config.secret_key.get_secret_value(),
            "AppName": config.app_name,
            "PartnerCode": config.partner_code,
        }
        # The gateway's exchange (hub.upstream_auth): the credential header on every request,
        # a bearer token from its token endpoint, cached, renewed once on a 401.
        self._auth = GatewayToken(
            config.token_path,
            credential_header="lgspaccesstoken",
            credential=credential,
            renew_before_s=config.token_renew_before_s,
        )
        self._lookup_map = self.compiled_mapping.operation("lookup")
        self._search_map = self.compiled_mapping.operation("search")
        self._by_representative_map = self.compiled_mapping.operation("by-representative")
        self._changed_map = self.compiled_mapping.operation("status-changed")

    async def changes(self, cursor: str | None, limit: int) -> ChangePage:
        """The status changes after sequence number `cursor`, from the change feed."""
        payload = await self._get("bienDong", {"tuSoThuTu": int(cursor or 0), "soLuong": limit})
        entries, last = payload.get("DanhSach"), payload.get("SoThuTuCuoi")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise UpstreamBadResponse(log_context={"cause": "DanhSach is not a list"})
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise UpstreamBadResponse(log_context={"cause": "SoThuTuCuoi is not a number"})
        events = []
        for entry in entries:
            changed = EnterpriseStatusChanged.model_validate(
                self._changed_map.apply({"DanhSach": [entry]})
            )
            # The register numbers its changes for ever: the sequence is the stable key.
            key = f"{entry.get('SoThuTu')}:{changed.enterprise_code}"
            when = entry.get("ThoiDiem")
            try:
                at = dt.datetime.fromisoformat(when) if isinstance(when, str) else None
            except ValueError:
                at = None
            events.append(UpstreamEvent("status-changed", key, changed, at))
        return ChangePage(events, cursor=str(last), more=payload.get("ConDuLieu") is True)

    @operation(
        personal_data=True,
        subject_from="legal_representatives.personal_id",  # the people the record names
        resource="GET /v1/enterprises/{enterprise_code}",
    )
    async def lookup(self, request: EnterpriseLookup, ctx: CallContext) -> Enterprise:
        """An enterprise's (or a branch's) registration record by enterprise code.

        Personal data: the record names the legal representatives with their personal IDs.
        """
        payload = await self._get("chiTietDoanhNghiep", {"msdn": request.enterprise_code})
        certificates = payload.get("GetEntCert")
        if not isinstance(certificates, list):
            raise UpstreamBadResponse(log_context={"cause": "no GetEntCert list"})
        if not certificates:  # DKKD answers an unknown code with an empty list
            raise NotFound()
        return Enterprise.model_validate(self._lookup_map.apply(payload))

    @operation(
        personal_data=False,
        resource="GET /v1/enterprises",
        resource_query={"name": "name_prefix"},
    )
    async def search(self, request: EnterpriseSearch, ctx: CallContext) -> EnterprisePage:
        """Enterprises whose name starts with a prefix (any word on; accents and case
        ignored), a page at a time."""
        params = {
            "ten": request.name_prefix,
            "trang": request.page,
            "soBanGhi": request.page_size,
        }
        payload = await self._get("timKiem", params)
        return EnterprisePage.model_validate(self._search_map.apply(payload))

    @operation(
        name="by-representative",
        personal_data=True,
        subject="personal_id",
        profile="enterprises",
    )
    async def by_representative(
        self, request: RepresentativeQuery, ctx: CallContext
    ) -> EnterpriseList:
        """The enterprises (head offices) a person is legal representative of; empty when
        none."""
        payload = await self._get("theoNguoiDaiDien", {"soGiayTo": request.personal_id})
        return EnterpriseList.model_validate(self._by_representative_map.apply(payload))

    async def health(self) -> Health:
        """Fetch a fresh gateway token: proves the gateway is up and takes our credentials."""
        started = time.perf_counter()
        try:
            await self._auth.renew(self.http)
        except HubError as exc:
            return Health(ok=False, detail=f"token endpoint: {exc.code}")
        return Health(
            ok=True, detail="token issued", latency_ms=(time.perf_counter() - started) * 1000
        )

    # -- protocol -------------------------------------------------------------------------

    async def _get(self, operation_path: str, params: dict[str, Any]) -> dict[str, Any]:
        path = f"{self.config.api_path}/{operation_path}"
        headers = {"accept": "application/json"}
        response = await self.http.get(path, params=params, headers=headers, auth=self._auth)
        if response.status_code == 401:  # refused again with a fresh token
            raise UpstreamRejected(log_context={"http_status": 401, "cause": "token refused"})
        return read_json(response)
