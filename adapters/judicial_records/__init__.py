"""Adapter of the judicial-records system (criminal-record certificates, LLTP; async REST/JSON).

Upstream contract: docs/mock-judicial-records.md. Field mapping:
`mapping.yaml` beside this file. An application is submitted (`submit`), processed upstream
over hours or days, and its result pushed back to the hub, signed; `status` polls as the
fallback. The hub core tracks each application as a job (hub.capabilities.jobs) and calls
`parse_push` from its public push endpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from adapters.judicial_records.models import (
    FINAL_STATUSES,
    CertificateApplication,
    CertificateStatus,
    CertificateStatusQuery,
    CertificateSubmission,
)
from hub.adapter import AdapterConfig, AsyncAdapter, CallContext, Health, operation
from hub.errors import (
    InvalidJson,
    InvalidSignature,
    NotFound,
    SchemaViolation,
    StaleMessage,
    UpstreamBadResponse,
    UpstreamRejected,
    UpstreamUnavailable,
)
from hub.events import EventType, RequestEnded
from hub.mapping import MappingValueError
from hub.provinces import PROVINCES
from hub.upstream import raise_for_status, response_json
from hub.upstream_auth import ApiKey

__all__ = ["JudicialRecordsAdapter", "JudicialRecordsConfig"]

APPLICATIONS_PATH = "/api/v1/lltp/hoso"
TIMESTAMP_HEADER = "x-lltp-timestamp"
SIGNATURE_HEADER = "x-lltp-signature"
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
_GENDER_CODES = {"male": "1", "female": "2"}
#: A reference no application has: its 404 shows upstream is up and takes our key.
_HEALTH_REFERENCE = "HEALTHCHECK"


class JudicialRecordsConfig(AdapterConfig):
    """Settings of the judicial-records adapter (`HUB_JUDICIAL_RECORDS_*`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_JUDICIAL_RECORDS_", extra="forbid")

    base_url: str = Field("http://127.0.0.1:8103", description="Upstream base URL")
    auth_key: SecretStr = Field(
        SecretStr("judicial-key"), description="Upstream authKey (sent as a Bearer token)"
    )
    province_code: str = Field(
        "001",
        pattern=r"^[0-9]{3}$",
        description="maTinh: the submitting province's 3-digit code (001 Hà Nội)",
    )
    push_secret: SecretStr = Field(
        SecretStr("judicial-push-secret"), description="Key of the pushed results' HMAC"
    )
    push_max_age_s: float = Field(
        300, gt=0, description="Oldest accepted push timestamp (and furthest in the future)"
    )

    @field_validator("province_code")
    @classmethod
    def _known_province(cls, value: str) -> str:
        if value not in PROVINCES:
            raise ValueError("not one of the 63 province codes")
        return value


class JudicialRecordsAdapter(AsyncAdapter):
    """Apply for criminal-record certificates and follow them to their issue."""

    name = "judicial-records"
    version = "1.0.0"
    title = "Judicial-records system"
    description = (
        "Criminal-record certificates (phiếu lý lịch tư pháp): asynchronous application, "
        "result pushed back, status poll as the fallback."
    )
    mapping = "adapters.judicial_records:mapping.yaml"
    upstream_schema = "adapters.judicial_records:upstream.schema.json"
    Config = JudicialRecordsConfig
    final_statuses: ClassVar[frozenset[str]] = FINAL_STATUSES
    push_route = "/v1/judicial-records/results"
    #: Told to the applying agency when a certificate is issued (hub.events).
    final_events: ClassVar[Mapping[str, str]] = {"issued": "certificate-issued"}
    event_types = (
        EventType(
            "certificate-issued",
            payload=RequestEnded,
            summary="A criminal-record certificate was issued (to the agency that applied)",
            subjects=("personal_id",),
            source="push",
        ),
    )

    config: JudicialRecordsConfig

    async def startup(self) -> None:
        # the authKey as a static bearer token (hub.upstream_auth)
        self._auth = ApiKey("authorization", f"Bearer {self.config.auth_key.get_secret_value()}")
        self._submit_map = self.compiled_mapping.operation("submit")
        self._status_map = self.compiled_mapping.operation("status")

    @operation(idempotent=False, subject="personal_id", route="POST /v1/judicial-records/requests")
    async def submit(
        self, request: CertificateApplication, ctx: CallContext
    ) -> CertificateSubmission:
        """Apply for a certificate; answers upstream's reference (the result comes later).

        The portal's dossier code (`maHoSoMCDT`) is the hub's job id when the hub follows the
        application (upstream echoes it in every result, so a result can be matched to its
        job even if this call's answer was lost), else the caller's `X-Dossier-ID`, else
        the hub's request id.
        """
        body = {
            "maTinh": self.config.province_code,
            "maHoSoMCDT": ctx.correlation_id or ctx.dossier_id or ctx.request_id,
            "ngayTiepNhan": dt.datetime.now(VIETNAM).strftime("%Y%m%d%H%M%S"),
            "toKhai": _form(request),
        }
        response = await self.http.post(APPLICATIONS_PATH, json=body, auth=self._auth)
        data = _read(response, "submit")
        return CertificateSubmission.model_validate(self._submit_map.apply(data))

    @operation(route="GET /v1/judicial-records/requests/{id}")
    async def status(self, request: CertificateStatusQuery, ctx: CallContext) -> CertificateStatus:
        """Where an application stands, with the certificate once issued."""
        response = await self.http.get(_status_path(request.reference), auth=self._auth)
        data = _read(response, "status")
        return CertificateStatus.model_validate(self._status_map.apply(data))

    def parse_push(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> CertificateStatus:
        """Verify and read a result upstream pushed to the hub.

        Raises InvalidSignature (missing or wrong signature or timestamp), StaleMessage
        (timestamp further than `push_max_age_s` from now) or SchemaViolation (a body that
        is not a result). Replays are the core's business: the update is idempotent.
        """
        timestamp = self._verified_timestamp(body, headers)
        current = time.time() if now is None else now
        if abs(current - timestamp) > self.config.push_max_age_s:
            raise StaleMessage(log_context={"age_s": round(current - timestamp)})
        try:
            payload = orjson.loads(body)  # nesting past its depth limit is an error too
        except orjson.JSONDecodeError:
            raise InvalidJson("the pushed result is not JSON") from None
        if not isinstance(payload, dict):
            raise SchemaViolation("the pushed result does not have the expected shape")
        try:
            return CertificateStatus.model_validate(self._status_map.apply(payload))
        except (ValidationError, MappingValueError) as exc:
            raise SchemaViolation(
                "the pushed result does not have the expected shape",
                log_context={"cause": type(exc).__name__},
            ) from None

    async def health(self) -> Health:
        response = await self.http.get(_status_path(_HEALTH_REFERENCE), auth=self._auth)
        try:
            code = response_json(response).get("statusCode")
        except UpstreamBadResponse:  # not a JSON object: not our upstream
            code = None
        # "Not found" from upstream itself: it is up and takes our key.
        ok = response.status_code in (200, 404) and code in ("00", "01")
        return Health(ok=ok, detail=f"HTTP {response.status_code}")

    # -- protocol -------------------------------------------------------------------------

    def _verified_timestamp(self, body: bytes, headers: Mapping[str, str]) -> int:
        lowered = {key.lower(): value for key, value in headers.items()}
        stamp = lowered.get(TIMESTAMP_HEADER, "")
        given = lowered.get(SIGNATURE_HEADER, "")
        # At most 12 digits: int() of a huge string is slow.
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not given:
            raise InvalidSignature(log_context={"cause": "missing or malformed headers"})
        key = self.config.push_secret.get_secret_value().encode()
        expected = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise InvalidSignature()
        return int(stamp)


def _status_path(reference: str) -> str:
    """The poll URL path; the reference is one path segment, never `.`/`..` or a `/`."""
    return f"{APPLICATIONS_PATH}/{quote(reference, safe='').replace('.', '%2E')}"


def _form(request: CertificateApplication) -> dict[str, Any]:
    """The upstream application form (`toKhai`)."""
    residence = [] if request.current_address is None else [{"noiCuTru": request.current_address}]
    return {
        "loaiPhieu": request.certificate_type,
        "maMucDich": request.purpose_code,
        "nycHoTen": request.full_name,
        "nycGioiTinh": _GENDER_CODES[request.gender],
        "nycNgaySinh": request.date_of_birth.strftime("%Y%m%d"),
        "nycSoGiayTo": request.personal_id,
        "nycThuongTru": request.permanent_address,
        "nycCuTru": residence,
    }


def _read(response: httpx.Response, operation_name: str) -> dict[str, Any]:
    """The reply's `data`, or the hub error its HTTP status or `statusCode` means.

    Upstream answers its refusals as JSON with a `statusCode` on a 4xx too (401 with "01"
    for our key); a 404 on `status` is an unknown reference. Upstream's `message` may quote
    the applicant: only codes go into the log context.
    """
    status = response.status_code
    context: dict[str, Any] = {"http_status": status, "operation": operation_name}
    if status == 404 and operation_name == "status":
        raise NotFound("no application with that reference", log_context=context)
    raise_for_status(response, replies=range(400, 500), log_context=context)
    try:
        payload = response_json(response)
    except UpstreamBadResponse as exc:
        raise_for_status(response, log_context=context)  # an error page: the status decides
        raise type(exc)(log_context={**context, **exc.log_context}) from None
    code = payload.get("statusCode")
    context["upstream_code"] = code if isinstance(code, str) else None
    if code == "03":
        raise UpstreamUnavailable(log_context=context)
    if code == "01":
        raise UpstreamRejected(log_context=context)
    data = payload.get("data") if code == "00" else None
    if status != 200 or not isinstance(data, dict):
        raise_for_status(response, log_context=context)
        raise UpstreamBadResponse(log_context=context)
    return data
