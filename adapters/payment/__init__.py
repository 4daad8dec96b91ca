"""Adapter of the national public-service payment platform (National Public Service Portal).

Upstream contract: docs/mock-payment.md. Field mapping: `mapping.yaml` beside this file;
the messages, their checksum and the IPN's reading: `messages.py`. Every message goes to one
endpoint, told apart by `LoaiBanTin` (INIT, QUERY, GET_BILL, DOI_SOAT), and every message in
both directions carries `MaXacThuc`: the SHA-256 of its signed fields in a fixed order,
joined by `|`, with the shared secret last. The adapter signs what it sends and verifies
what comes back, so a reply altered on the way, or from something that is not the
platform, is refused as off-contract.

The hub core owns each payment's life (hub.capabilities.payments): it assigns the reference
(`MaThamChieu`), calls `init`, receives the platform's IPN through `parse_notification`,
falls back to `query`, and reconciles with `reconciliation`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from adapters.payment.messages import (
    ERROR_REPLY_SIGNED,
    INIT_SIGNED,
    QUERY_SIGNED,
    RECONCILIATION_SIGNED,
    REPLY_ERRORS,
    REPLY_SIGNED,
    TIME_FORMAT,
    VIETNAM,
    checksum,
    read_ipn,
    reply_json,
    verified_checksum,
    vietnam_time,
)
from hub.adapter import AdapterConfig, CallContext, Health, PaymentProvider, operation
from hub.capabilities.payments.models import (
    PaymentInitiated,
    PaymentNotification,
    PaymentOrder,
    PaymentStatus,
    PaymentStatusQuery,
    Receipt,
    ReceiptQuery,
    ReconciliationList,
    ReconciliationQuery,
)
from hub.errors import (
    HubError,
    NotFound,
    UpstreamBadResponse,
    UpstreamUnreadable,
)
from hub.upstream import raise_for_status

__all__ = ["PaymentAdapter", "PaymentConfig", "checksum"]

#: A reference no payment has: "no such transaction" shows the platform is up and takes
#: our partner code and checksum.
_HEALTH_REFERENCE = "HEALTHCHECK"


class PaymentConfig(AdapterConfig):
    """Settings of the payment adapter (`HUB_PAYMENT_*`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_PAYMENT_", extra="forbid")

    base_url: str = Field("http://127.0.0.1:8105", description="Upstream base URL")
    api_path: str = Field("/api/v1/thanhtoan", description="The platform's message endpoint")
    protocol_version: str = Field("1.0.6", description="PhienBan sent in every message")
    partner_code: str = Field("LGSPHUB", min_length=1, description="MaDoiTac")
    secret: SecretStr = Field(
        SecretStr("payment-secret"), description="The shared secret of MaXacThuc"
    )
    ipn_max_age_s: float = Field(
        900, gt=0, description="Oldest accepted IPN time (and furthest in the future)"
    )


class PaymentAdapter(PaymentProvider):
    """Open payments, read their state and receipt, list a day's transactions."""

    name = "payment"
    version = "1.0.0"
    title = "National public-service payment platform"
    description = (
        "Fees and charges of public services (Nền tảng thanh toán of the National Public "
        "Service Portal): redirect to a pay page, signed callback, status query, receipt, "
        "daily reconciliation."
    )
    mapping = "adapters.payment:mapping.yaml"
    upstream_schema = "adapters.payment:upstream.schema.json"
    Config = PaymentConfig

    config: PaymentConfig

    async def startup(self) -> None:
        self._secret = self.config.secret.get_secret_value()
        self._maps = {
            name: self.compiled_mapping.operation(name)
            for name in ("init", "query", "receipt", "reconciliation")
        }

    @operation(subject="payer_personal_id", route="POST /v1/payments")
    async def init(self, request: PaymentOrder, ctx: CallContext) -> PaymentInitiated:
        """Open a payment (INIT); the payer is sent to `pay_url`.

        Idempotent: the platform answers an INIT with a reference it has seen, and the same
        amount, with the same transaction, so the core may repeat it after a transient
        failure. Personal data: the receipt names the payer.
        """
        receipt: dict[str, Any] = {
            "MaTTHC": request.procedure_code,
            "MaHoSo": request.dossier_id,
            "HoTenNguoiNop": request.payer_name,
        }
        if request.payer_personal_id is not None:
            receipt["SoDinhDanhNguoiNop"] = request.payer_personal_id
        message = {
            "MaThamChieu": request.reference,
            "SoTien": request.amount,
            "MaTienTe": request.currency,
            "ThongTinGiaoDich": request.description,
            "ThoiGianGD": vietnam_time(request.created_at),
            "UrlTraVe": request.return_url,
            "ThongTinBienLai": receipt,
        }
        reply = await self._send("INIT", message, INIT_SIGNED)
        if reply.get("MaThamChieu") != request.reference:
            raise UpstreamBadResponse(log_context={"cause": "INIT answered another reference"})
        return PaymentInitiated.model_validate(self._maps["init"].apply(reply))

    @operation(personal_data=False, route="GET /v1/payments/{id}")
    async def query(self, request: PaymentStatusQuery, ctx: CallContext) -> PaymentStatus:
        """A payment's state at the platform (QUERY): pending, paid or failed."""
        reply = await self._send("QUERY", {"MaThamChieu": request.reference}, QUERY_SIGNED)
        return PaymentStatus.model_validate(self._maps["query"].apply(reply))

    @operation(route="GET /v1/payments/{id}/receipt")
    async def receipt(self, request: ReceiptQuery, ctx: CallContext) -> Receipt:
        """The receipt (biên lai) of a paid payment, as a PDF (GET_BILL); 404 until paid.

        Personal data: the receipt names the payer.
        """
        reply = await self._send("GET_BILL", {"MaThamChieu": request.reference}, QUERY_SIGNED)
        return Receipt.model_validate(self._maps["receipt"].apply(reply))

    @operation(personal_data=False, route="`hub payments reconcile`")
    async def reconciliation(
        self, request: ReconciliationQuery, ctx: CallContext
    ) -> ReconciliationList:
        """Every transaction the platform holds for one day (DOI_SOAT), by INIT time in
        Vietnam."""
        message = {"NgayDoiSoat": request.date.strftime("%Y%m%d")}
        reply = await self._send("DOI_SOAT", message, RECONCILIATION_SIGNED)
        entries = reply.get("DanhSachGiaoDich")
        if not isinstance(entries, list) or len(entries) != reply.get("SoLuong"):
            raise UpstreamBadResponse(log_context={"cause": "DanhSachGiaoDich and SoLuong"})
        return ReconciliationList.model_validate(self._maps["reconciliation"].apply(reply))

    def parse_notification(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> PaymentNotification:
        """Verify and read the platform's IPN callback.

        Raises SchemaViolation (not an IPN), InvalidSignature (another partner, or a
        checksum that does not verify) or StaleMessage (`ThoiGianGD` further than
        `ipn_max_age_s` from now). Replays and the match with the payment are the core's.
        """
        return read_ipn(
            body,
            secret=self._secret,
            partner_code=self.config.partner_code,
            max_age_s=self.config.ipn_max_age_s,
            now=now,
        )

    async def health(self) -> Health:
        """QUERY a reference no payment has: "no such transaction" (MaLoi 04) proves the
        platform is up and accepts our partner code and checksum."""
        started = time.perf_counter()
        try:
            await self._send("QUERY", {"MaThamChieu": _HEALTH_REFERENCE}, QUERY_SIGNED)
        except NotFound:
            latency_ms = (time.perf_counter() - started) * 1000
            return Health(ok=True, detail="platform answers", latency_ms=latency_ms)
        except HubError as exc:
            return Health(ok=False, detail=exc.code)
        return Health(ok=False, detail="a query of a health-check reference found a payment")

    # -- protocol -------------------------------------------------------------------------

    async def _send(
        self, kind: str, fields: dict[str, Any], signed: Sequence[str]
    ) -> dict[str, Any]:
        """Sign and send one message; the verified reply of MaLoi "00", or its hub error."""
        message: dict[str, Any] = {
            "LoaiBanTin": kind,
            "PhienBan": self.config.protocol_version,
            "MaDoiTac": self.config.partner_code,
            "ThoiGianGD": dt.datetime.now(VIETNAM).strftime(TIME_FORMAT),
            **fields,
        }
        message["MaXacThuc"] = checksum(message, signed, self._secret)
        response = await self.http.post(self.config.api_path, json=message)
        status = response.status_code
        context: dict[str, Any] = {"http_status": status, "message": kind}
        # The platform answers a refusal with a signed reply (its MaLoi) on a 4xx too.
        raise_for_status(response, replies=range(400, 500), log_context={"message": kind})
        reply = reply_json(response)
        code = reply.get("MaLoi") if reply is not None else None
        context["upstream_code"] = code if isinstance(code, str) and len(code) <= 8 else None
        if reply is None or not isinstance(code, str):
            raise_for_status(response, log_context=context)  # an error page: its status says
            # Not JSON at all is garbage (counted by the circuit); JSON without MaLoi is off
            # the contract.
            error = UpstreamUnreadable if reply is None else UpstreamBadResponse
            raise error(log_context={**context, "cause": "not a platform reply"})
        if code != "00" and code not in REPLY_ERRORS:
            raise UpstreamBadResponse(log_context={**context, "cause": "unknown MaLoi"})
        if code == "00":
            self._verify_reply(reply, REPLY_SIGNED[kind])
        else:  # signed over the partner code as we sent it; the reply need not repeat it
            self._verify_reply({**reply, "MaDoiTac": self.config.partner_code}, ERROR_REPLY_SIGNED)
        if code != "00":
            raise REPLY_ERRORS[code](log_context=context)
        if status != 200 or reply.get("MaDoiTac") != self.config.partner_code:
            raise UpstreamBadResponse(log_context={**context, "cause": "not our reply"})
        return reply

    def _verify_reply(self, reply: Mapping[str, Any], signed: Sequence[str]) -> None:
        if not verified_checksum(reply, signed, self._secret):
            raise UpstreamBadResponse(log_context={"cause": "reply checksum does not verify"})
