"""Adapter of the Ministry of Justice's electronic civil-status registry (REST/JSON, OAuth2).

Upstream contract: docs/mock-civil-status.md. Beside this file: the field mapping
(`mapping.yaml`), the canonical models (`models.py`), the registry's replies read
(`records.py`) and its change feed as events (`changes.py`).

The registry sits behind an OAuth2 client-credentials token endpoint. The adapter fetches a
token, keeps it until shortly before it expires, and shares one fetch between concurrent
calls. When the API refuses a token (HTTP 401: revoked, or expired early) the adapter drops
it and repeats that one call once with a fresh token; that is the only repetition it makes
by itself (everything else is the core's retry policy).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from adapters.civil_status.changes import EVENT_TYPES, read_changes
from adapters.civil_status.models import (
    KIND_PREFIX,
    CivilStatusQuery,
    CivilStatusRecord,
    CivilStatusRecords,
    MaritalStatusConfirmation,
    RecordLookup,
)
from adapters.civil_status.records import (
    marital_summary,
    persons_of,
    read_reply,
    record_list,
    with_persons,
)
from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.errors import NotFound, UpstreamBadResponse, UpstreamRejected
from hub.events import ChangePage
from hub.upstream_auth import OAuth2ClientCredentials

__all__ = ["CivilStatusAdapter", "CivilStatusConfig", "marital_summary"]

API_PREFIX = "/api/v1/hotich"
#: Vietnam keeps UTC+7 all year: the date a confirmation is given on.
VIETNAM = dt.timezone(dt.timedelta(hours=7))


class CivilStatusConfig(AdapterConfig):
    """Settings of the civil-status adapter (`HUB_CIVIL_STATUS_*`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_CIVIL_STATUS_", extra="forbid")

    base_url: str = Field("http://127.0.0.1:8102", description="Upstream base URL")
    client_id: str = Field("hub", description="OAuth2 client ID")
    client_secret: SecretStr = Field(
        SecretStr("civil-status-secret"), description="OAuth2 client secret"
    )
    token_path: str = Field("/oauth2/token", description="OAuth2 token endpoint path")
    token_renew_margin_s: float = Field(
        30, ge=0, description="Renew the token this long before it expires"
    )


class CivilStatusAdapter(Adapter):
    """Birth, marriage and death records, and marital-status confirmations."""

    name = "civil-status"
    version = "1.0.0"
    title = "Electronic civil-status registry"
    description = "Birth, marriage and death records (Cơ sở dữ liệu hộ tịch điện tử, Bộ Tư pháp)."
    mapping = "adapters.civil_status:mapping.yaml"
    Config = CivilStatusConfig
    #: From the registry's change feed (changes.py), polled by the core.
    event_types = EVENT_TYPES

    config: CivilStatusConfig

    async def startup(self) -> None:
        config = self.config
        self._auth = OAuth2ClientCredentials(
            config.token_path,
            config.client_id,
            config.client_secret.get_secret_value(),
            renew_before_s=config.token_renew_margin_s,
        )
        self._records_map = self.compiled_mapping.operation("records")
        self._record_map = self.compiled_mapping.operation("record")
        self._status_map = self.compiled_mapping.operation("marital-status")

    @operation(
        subject="personal_id",
        subject_from="records.persons.personal_id",  # parents, spouses named in the records
        resource="GET /v1/civil-status/records",
        profile="civil_status",
    )
    async def records(self, request: CivilStatusQuery, ctx: CallContext) -> CivilStatusRecords:
        """Every birth, marriage and death record naming a citizen, in any role.

        A personal ID the registry holds no record for gives an empty list: the registry
        knows records, not people.
        """
        data = await self._get(f"{API_PREFIX}/congdan/{request.personal_id}", ctx)
        return CivilStatusRecords.model_validate(self._records_map.apply(with_persons(data)))

    @operation(
        subject_from="persons.personal_id",  # everyone the record names: both spouses, …
        resource="GET /v1/civil-status/records/{kind}/{number}",
    )
    async def record(self, request: RecordLookup, ctx: CallContext) -> CivilStatusRecord:
        """One record by kind and number (its key, e.g. KS-2005-01-000123)."""
        path = f"{API_PREFIX}/{KIND_PREFIX[request.kind]}/{request.number}"
        data = await self._get(path, ctx)
        if not isinstance(data, dict):
            raise UpstreamBadResponse(log_context={"cause": "data is not an object"})
        return self._canonical_record(data)

    @operation(
        name="marital-status", subject="personal_id", resource="GET /v1/civil-status/marital-status"
    )
    async def marital_status(
        self, request: CivilStatusQuery, ctx: CallContext
    ) -> MaritalStatusConfirmation:
        """A citizen's marital status, derived from their marriage and death records.

        The latest marriage decides: with a divorce note, divorced; with the spouse's death
        registered, widowed; otherwise married; no marriage at all, single. A personal ID
        with no record at all (not even a birth) is NOT_FOUND: nothing to confirm from.
        """
        data = await self._get(f"{API_PREFIX}/congdan/{request.personal_id}", ctx)
        records = record_list(data)
        if not records:
            raise NotFound(log_context={"cause": "no civil-status record"})
        today = dt.datetime.now(VIETNAM).date()
        summary = marital_summary(request.personal_id, records, today)
        return MaritalStatusConfirmation.model_validate(self._status_map.apply(summary))

    async def changes(self, cursor: str | None, limit: int) -> ChangePage:
        """The registrations after sequence number `cursor`, from the change feed."""
        ctx = CallContext(request_id=f"feed-{time.monotonic_ns()}", client_id="hub")
        params = f"?tuSoThuTu={int(cursor or 0)}&soLuong={limit}"
        data = await self._get(f"{API_PREFIX}/biendong{params}", ctx)
        return read_changes(data, self._canonical_record)

    async def health(self) -> Health:
        """Fetch a fresh token: the token endpoint answers and accepts our credentials."""
        started = time.monotonic()
        await self._auth.renew(self.http)
        latency = (time.monotonic() - started) * 1000
        return Health(ok=True, detail="token endpoint OK", latency_ms=latency)

    # -- the API --------------------------------------------------------------------------

    async def _get(self, path: str, ctx: CallContext) -> Any:
        """GET an API path with the bearer token (hub.upstream_auth: cached, shared, renewed
        once on a 401); a token refused twice is a rejection."""
        response = await self.http.get(
            path,
            headers={"accept": "application/json", "x-request-id": ctx.request_id},
            auth=self._auth,
        )
        if response.status_code == 401:
            raise UpstreamRejected(log_context={"http_status": 401, "cause": "token refused twice"})
        return read_reply(response)

    def _canonical_record(self, record: dict[str, Any]) -> CivilStatusRecord:
        """A registry record through the mapping (`record`'s): the canonical record."""
        return CivilStatusRecord.model_validate(self._record_map.apply(persons_of(record)))
