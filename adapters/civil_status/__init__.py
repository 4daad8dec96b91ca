"""Adapter of the Ministry of Justice's electronic civil-status registry (REST/JSON, OAuth2).

Upstream contract: docs/mock-civil-status.md. Field mapping: `mapping.yaml` beside this file.

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

import httpx
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from adapters.civil_status.models import (
    KIND_PREFIX,
    BirthRegistered,
    CivilStatusQuery,
    CivilStatusRecord,
    CivilStatusRecords,
    DeathRegistered,
    MaritalStatusConfirmation,
    MarriageRegistered,
    RecordLookup,
)
from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.errors import HubError, NotFound, UpstreamBadResponse, UpstreamError, UpstreamRejected
from hub.events import ChangePage, EventType, UpstreamEvent
from hub.upstream import raise_for_status, response_json
from hub.upstream_auth import OAuth2ClientCredentials

API_PREFIX = "/api/v1/hotich"
#: Vietnam keeps UTC+7 all year: the date a confirmation is given on.
VIETNAM = dt.timezone(dt.timedelta(hours=7))

#: Upstream error codes (`errorCode` of a `status: "0"` reply) and what they mean to the hub.
_ERRORS: dict[str, type[HubError]] = {
    "KHONG_TIM_THAY": NotFound,
    "YEU_CAU_KHONG_HOP_LE": UpstreamRejected,
    "XAC_THUC_THAT_BAI": UpstreamRejected,
    "LOI_HE_THONG": UpstreamError,
}
#: Prefixes of the flat person fields of a record (nksHoTen, chaSoDinhDanh, …).
_PERSON_PREFIXES = ("nks", "cha", "me", "chong", "vo", "nkt", "nyc")
#: The change feed's kinds of change and the event types they publish.
_CHANGES = {
    "DANG_KY_KHAI_SINH": "birth-registered",
    "DANG_KY_KHAI_TU": "death-registered",
    "DANG_KY_KET_HON": "marriage-registered",
}
_MARITAL_CODES = {"single": "1", "married": "2", "divorced": "3", "widowed": "4"}


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
    #: From the registry's change feed (biến động hộ tịch), polled by the core.
    event_types = (
        EventType(
            "birth-registered",
            payload=BirthRegistered,
            subjects=("personal_id", "mother_personal_id", "father_personal_id"),
            province="province_code",
        ),
        EventType(
            "death-registered",
            payload=DeathRegistered,
            subjects=("personal_id",),
            province="province_code",
        ),
        EventType(
            "marriage-registered",
            payload=MarriageRegistered,
            subjects=("husband_personal_id", "wife_personal_id"),
            province="province_code",
        ),
    )

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
        return CivilStatusRecords.model_validate(self._records_map.apply(_with_persons(data)))

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
        return CivilStatusRecord.model_validate(self._record_map.apply(_persons_of(data)))

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
        records = _record_list(data)
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
        if not isinstance(data, dict) or not isinstance(data.get("danhSach"), list):
            raise UpstreamBadResponse(log_context={"cause": "danhSach is not a list"})
        events = [self._event(entry) for entry in data["danhSach"]]
        last = data.get("soThuTuCuoi")
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise UpstreamBadResponse(log_context={"cause": "soThuTuCuoi is not a number"})
        return ChangePage(
            events=[e for e in events if e is not None],
            cursor=str(last),
            more=data.get("conDuLieu") is True,
        )

    def _event(self, entry: Any) -> UpstreamEvent | None:
        """One feed entry as an event (None for a kind of change no event type covers)."""
        if not isinstance(entry, dict) or not isinstance(entry.get("hoTich"), dict):
            raise UpstreamBadResponse(log_context={"cause": "a feed entry is not a record"})
        record, change = entry["hoTich"], entry.get("loaiBienDong")
        kind = _CHANGES.get(change) if isinstance(change, str) else None
        if kind is None:
            return None
        canonical = CivilStatusRecord.model_validate(self._record_map.apply(_persons_of(record)))
        authority = record.get("noiDangKy")
        province = authority.get("maTinh") if isinstance(authority, dict) else None
        common: dict[str, Any] = {"province_code": province, "record": canonical}
        payload: BaseModel
        if kind == "death-registered":
            payload = DeathRegistered(personal_id=record.get("nktSoDinhDanh"), **common)
        elif kind == "birth-registered":
            payload = BirthRegistered(
                personal_id=record.get("nksSoDinhDanh"),
                mother_personal_id=record.get("meSoDinhDanh"),
                father_personal_id=record.get("chaSoDinhDanh"),
                **common,
            )
        else:
            payload = MarriageRegistered(
                husband_personal_id=record.get("chongSoDinhDanh"),
                wife_personal_id=record.get("voSoDinhDanh"),
                **common,
            )
        occurred = entry.get("thoiDiem")
        try:
            when = dt.datetime.fromisoformat(occurred) if isinstance(occurred, str) else None
        except ValueError:
            when = None
        # The record number is the registration's own, for ever: the event's stable key.
        return UpstreamEvent(kind, f"{change}:{canonical.number}", payload, when)

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
        return _read(response)


def _read(response: httpx.Response) -> Any:
    """The `data` of a `status: "1"` reply; an error of the hub's tree otherwise.

    The registry answers its errors as `status: "0"` replies on a 4xx or a 5xx, whose
    `errorCode` says more than the HTTP status; any other answer is judged by its status."""
    raise_for_status(response, replies=range(400, 600))
    status = response.status_code
    body = _reply(response)
    if body.get("status") == "0":
        code = body.get("errorCode")
        code = code if isinstance(code, str) else None
        fallback = UpstreamError if status >= 500 else UpstreamRejected
        # errorDescription may quote what was asked for: only codes go to the log context.
        context = {"http_status": status, "upstream_code": code}
        raise _ERRORS.get(code or "", fallback)(log_context=context)
    raise_for_status(response)  # an error status without the registry's error reply
    if body.get("status") != "1":
        raise UpstreamBadResponse(log_context={"http_status": status, "cause": "status"})
    return body.get("data")


def _reply(response: httpx.Response) -> dict[str, Any]:
    """The reply's JSON object; an error page's status, or UpstreamBadResponse, otherwise."""
    try:
        return response_json(response)
    except UpstreamBadResponse:
        raise_for_status(response)
        raise


def _record_list(data: Any) -> list[dict[str, Any]]:
    records = data.get("danhSach") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise UpstreamBadResponse(log_context={"cause": "danhSach is not a list of records"})
    return records


def _persons_of(record: dict[str, Any]) -> dict[str, Any]:
    """The record with `nguoi`: its people regrouped from the flat prefixed fields."""
    people = [
        {
            "vaiTro": prefix,
            "hoTen": record.get(f"{prefix}HoTen"),
            "soDinhDanh": record.get(f"{prefix}SoDinhDanh"),
            "ngaySinh": record.get(f"{prefix}NgaySinh"),
        }
        for prefix in _PERSON_PREFIXES
        if record.get(f"{prefix}HoTen")
    ]
    return {**record, "nguoi": people}


def _with_persons(data: Any) -> dict[str, Any]:
    records = _record_list(data)
    return {**data, "danhSach": [_persons_of(r) for r in records]}


def marital_summary(
    personal_id: str, records: list[dict[str, Any]], today: dt.date
) -> dict[str, Any]:
    """The marital status the records show, in the registry's vocabulary (for the mapping).

    Registration dates are yyyyMMdd strings, so they order as text.
    """
    marriages = [
        r
        for r in records
        if r.get("loaiHoTich") == "KH"
        and personal_id in (r.get("chongSoDinhDanh"), r.get("voSoDinhDanh"))
    ]
    deaths = {
        r["nktSoDinhDanh"]: r
        for r in records
        if r.get("loaiHoTich") == "KT" and r.get("nktSoDinhDanh")
    }
    status, evidence = "single", []
    if marriages:
        latest = max(marriages, key=lambda r: str(r.get("ngayDangKy")))
        husband = latest.get("chongSoDinhDanh") == personal_id
        spouse = latest.get("voSoDinhDanh") if husband else latest.get("chongSoDinhDanh")
        evidence = [latest]
        if latest.get("ghiChuLyHon"):
            status = "divorced"
        elif spouse and spouse in deaths:
            status = "widowed"
            evidence.append(deaths[spouse])
        else:
            status = "married"
    return {
        "soDinhDanh": personal_id,
        "tinhTrangHonNhan": _MARITAL_CODES[status],
        "ngayXacNhan": today.strftime("%Y%m%d"),
        "canCu": [
            {k: r.get(k) for k in ("loaiHoTich", "maHoTich", "ngayDangKy")} for r in evidence
        ],
    }
