"""The payment mock: the national public-service payment platform, as an ASGI app.

Implements docs/mock-payment.md: `POST /api/v1/thanhtoan` (INIT, QUERY, GET_BILL, DOI_SOAT,
each message signed with MaXacThuc both ways), the pay page `GET|POST /pay/{MaGiaoDich}`,
the signed IPN to the partner when a transaction settles (retried with back-off), and the
mock-only `POST /_mock/payments/{MaGiaoDich}/settle`, `GET /_mock/payments`,
`GET /_mock/records`, `GET /_mock/health`, `GET|PUT|DELETE /_mock/faults`. Transactions live
in memory; IPN deliveries are background tasks, cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mocks._push import PushTarget, TaskSet
from mocks.faults import (
    ConnectionReset,
    FaultConfig,
    FaultConfigError,
    FaultState,
    fault_routes,
    hold_until_disconnect,
)
from mocks.judicial_records.pdf import certificate_pdf
from mocks.payment import checksum, messages, pages
from mocks.payment.ipn import DEFAULT_IPN_URL, IpnSender, vietnam_time
from mocks.payment.procedures import MAX_RECORDS, sample_records

__all__ = ["API_PATH", "MESSAGES", "STATUS_CODES", "PaymentPlatform", "Transaction", "create_app"]

API_PATH: Final = "/api/v1/thanhtoan"
MAX_REQUEST_BYTES: Final = 100_000
MAX_FORM_BYTES: Final = 10_000
MAX_TRANSACTIONS: Final = 100_000  # kept in memory; the oldest go first
OVERSIZED_BYTES: Final = 5 * 1024 * 1024 + 1024
JSON_TYPE: Final = "application/json; charset=utf-8"
#: TrangThaiGD of each status.
STATUS_CODES: Final = {"paid": "1", "pending": "3", "failed": "4"}
#: MoTaLoi of each MaLoi.
MESSAGES: Final = {
    "00": "Thành công",
    "01": "Thông điệp không hợp lệ",
    "02": "Mã xác thực (MaXacThuc) không đúng",
    "03": "Mã đối tác (MaDoiTac) không tồn tại",
    "04": "Không tìm thấy giao dịch có mã tham chiếu này",
    "05": "Mã tham chiếu đã được sử dụng với số tiền khác",
    "06": "Giao dịch chưa được thanh toán, chưa có biên lai",
    "99": "Lỗi hệ thống, vui lòng thử lại sau",
}
log = logging.getLogger("mocks.payment")

Status = Literal["pending", "paid", "failed"]
Outcome = Literal["success", "failed"]


@dataclass
class Transaction:
    """One transaction the partner opened, and where its IPN stands."""

    reference: str
    transaction_id: str
    amount: int
    description: str
    init_time: str  # the INIT's ThoiGianGD (Vietnam time): DOI_SOAT goes by its day
    return_url: str | None
    receipt: messages.Receipt = field(repr=False)
    pay_url: str
    created_at: float
    status: Status = "pending"
    settled_at: float | None = None
    receipt_number: str | None = None
    receipt_pdf: str | None = field(default=None, repr=False)
    ipn_state: str = "pending"
    ipn_attempts: int = 0

    def count_ipn_attempt(self) -> None:
        self.ipn_attempts += 1


class AlreadySettled(Exception):
    """A transaction can settle only once."""


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


class PaymentPlatform:
    """The platform's four operations over one partner's transactions, and settlement."""

    def __init__(
        self,
        *,
        partner_code: str,
        secret: str,
        public_url: str,
        clock: Callable[[], float],
        sender: IpnSender,
    ) -> None:
        self.partner_code, self.secret = partner_code, secret
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.sender = sender
        self.transactions: dict[str, Transaction] = {}  # by MaThamChieu
        self.by_id: dict[str, Transaction] = {}  # by MaGiaoDich
        self._sequence = 0
        self._receipts = 0
        self._tasks = TaskSet()

    # -- replies --------------------------------------------------------------------------

    def error(self, code: str, partner: str, fields: list[str] | None = None) -> dict[str, Any]:
        """An error reply, signed over `MaLoi|MaDoiTac` (MaDoiTac as the request sent it)."""
        text = MESSAGES[code] + (f": {', '.join(fields)}" if fields else "")
        return {
            "MaLoi": code,
            "MoTaLoi": text,
            "MaXacThuc": checksum.checksum([code, partner], self.secret),
        }

    def _done(self, fields: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
        body = {"MaLoi": "00", "MoTaLoi": MESSAGES["00"], "MaDoiTac": self.partner_code, **fields}
        body["MaXacThuc"] = checksum.sign(body, order, self.secret)
        return body

    # -- the endpoint ---------------------------------------------------------------------

    def answer(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """HTTP status and reply for one request body."""
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return 400, self.error("01", "", ["(body)"])
        partner = messages.partner_of(message)
        try:
            request = messages.read(message)
        except messages.Invalid as exc:
            return 200, self.error("01", partner, exc.fields)
        if request.partner != self.partner_code:
            return 200, self.error("03", partner)
        expected = checksum.checksum(request.expected_fields, self.secret)
        if not checksum.verify(request.given_checksum, expected):
            return 200, self.error("02", partner)
        operation = {
            "INIT": self.init,
            "QUERY": self.query,
            "GET_BILL": self.get_bill,
            "DOI_SOAT": self.reconcile,
        }[request.operation]
        return 200, operation(request)

    def init(self, request: messages.Request) -> dict[str, Any]:
        """Open a transaction; the same reference and amount again answer the same one."""
        transaction = self.transactions.get(request.reference)
        if transaction is None:
            transaction = self._open(request)
        elif transaction.amount != request.amount:
            return self.error("05", request.partner)
        return self._done(
            {
                "MaThamChieu": transaction.reference,
                "MaGiaoDich": transaction.transaction_id,
                "UrlThanhToan": transaction.pay_url,
            },
            checksum.INIT_REPLY,
        )

    def _open(self, request: messages.Request) -> Transaction:
        now = self.clock()
        self._sequence += 1
        transaction_id = f"DVC{vietnam_time(now, '%Y%m%d')}{self._sequence % 100_000_000:08d}"
        assert request.receipt is not None
        transaction = Transaction(
            reference=request.reference,
            transaction_id=transaction_id,
            amount=request.amount,
            description=request.description,
            init_time=request.time,
            return_url=request.return_url,
            receipt=request.receipt,
            pay_url=f"{self.public_url}/pay/{transaction_id}",
            created_at=now,
        )
        if len(self.transactions) >= MAX_TRANSACTIONS:
            oldest = self.transactions.pop(next(iter(self.transactions)))
            self.by_id.pop(oldest.transaction_id, None)
        self.transactions[transaction.reference] = transaction
        self.by_id[transaction_id] = transaction
        return transaction

    def query(self, request: messages.Request) -> dict[str, Any]:
        """A transaction's state."""
        transaction = self.transactions.get(request.reference)
        if transaction is None:
            return self.error("04", request.partner)
        return self._done(
            {
                "MaThamChieu": transaction.reference,
                "MaGiaoDich": transaction.transaction_id,
                "SoTien": transaction.amount,
                "TrangThaiGD": STATUS_CODES[transaction.status],
                "ThoiGianThanhToan": self._settled_time(transaction),
            },
            checksum.QUERY_REPLY,
        )

    def get_bill(self, request: messages.Request) -> dict[str, Any]:
        """The receipt of a paid transaction, its PDF in base64."""
        transaction = self.transactions.get(request.reference)
        if transaction is None:
            return self.error("04", request.partner)
        if transaction.status != "paid" or transaction.receipt_number is None:
            return self.error("06", request.partner)
        if transaction.receipt_pdf is None:
            transaction.receipt_pdf = base64.b64encode(self._receipt_pdf(transaction)).decode()
        return self._done(
            {
                "MaThamChieu": transaction.reference,
                "SoBienLai": transaction.receipt_number,
                "BienLai": transaction.receipt_pdf,
            },
            checksum.GET_BILL_REPLY,
        )

    def reconcile(self, request: messages.Request) -> dict[str, Any]:
        """DOI_SOAT: every transaction whose INIT ThoiGianGD falls on the day asked."""
        found = [t for t in self.transactions.values() if t.init_time[:8] == request.day]
        return self._done(
            {
                "NgayDoiSoat": request.day,
                "SoLuong": len(found),
                "DanhSachGiaoDich": [
                    {
                        "MaThamChieu": t.reference,
                        "MaGiaoDich": t.transaction_id,
                        "SoTien": t.amount,
                        "TrangThaiGD": STATUS_CODES[t.status],
                        "ThoiGianThanhToan": self._settled_time(t),
                    }
                    for t in found
                ],
            },
            checksum.DOI_SOAT_REPLY,
        )

    @staticmethod
    def _settled_time(transaction: Transaction) -> str:
        settled = transaction.settled_at
        return "" if settled is None else vietnam_time(settled)

    def _receipt_pdf(self, transaction: Transaction) -> bytes:
        assert transaction.settled_at is not None
        receipt = transaction.receipt
        paid_at = dt.datetime.strptime(vietnam_time(transaction.settled_at), "%Y%m%d%H%M%S")
        lines = [
            f"So bien lai: {transaction.receipt_number}    Ngay thu: {paid_at:%d/%m/%Y %H:%M}",
            f"Ma giao dich: {transaction.transaction_id}",
            f"Ma tham chieu: {transaction.reference}",
            f"Thu tuc: {receipt.procedure_code}    Ho so: {receipt.dossier_id}",
            f"Nguoi nop: {receipt.payer_name}",
        ]
        if receipt.payer_personal_id:
            lines.append(f"So dinh danh: {receipt.payer_personal_id}")
        lines += [
            f"Noi dung: {transaction.description}",
            f"So tien: {transaction.amount:,} VND".replace(",", "."),
        ]
        return certificate_pdf("BIEN LAI THU PHI, LE PHI", lines)

    # -- settlement and the IPN -----------------------------------------------------------

    def settle(self, transaction: Transaction, outcome: Outcome, *, notify: bool = True) -> None:
        """Settle a pending transaction as its payer would, then send the IPN (`notify`)."""
        if transaction.status != "pending":
            raise AlreadySettled(transaction.transaction_id)
        now = self.clock()
        transaction.settled_at = now
        if outcome == "success":
            transaction.status = "paid"
            self._receipts += 1
            year = vietnam_time(now, "%Y")
            transaction.receipt_number = f"BL-{year}{self._receipts % 10_000_000:07d}"
        else:
            transaction.status = "failed"
        if not notify or self.sender.target.url is None:
            transaction.ipn_state = "off"
            return
        transaction.ipn_state = "sending"
        self._tasks.spawn(self._notify(transaction))

    async def _notify(self, transaction: Transaction) -> None:
        transaction.ipn_state = await self.sender.deliver(
            paid=transaction.status == "paid",
            reference=transaction.reference,
            amount=transaction.amount,
            transaction_id=transaction.transaction_id,
            on_attempt=transaction.count_ipn_attempt,
        )

    @property
    def pending_ipns(self) -> int:
        """IPN deliveries not finished (being sent, or waiting to be retried)."""
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel every IPN delivery still running (at shutdown)."""
        await self._tasks.aclose()

    def summary(self, transaction: Transaction) -> dict[str, Any]:
        """A line of `GET /_mock/payments` (no personal data)."""
        return {
            "reference": transaction.reference,
            "transaction_id": transaction.transaction_id,
            "amount": transaction.amount,
            "status": transaction.status,
            "init_time": transaction.init_time,
            "created_at": _iso(transaction.created_at),
            "settled_at": _iso(transaction.settled_at),
            "pay_url": transaction.pay_url,
            "ipn": {"state": transaction.ipn_state, "attempts": transaction.ipn_attempts},
        }


# -- HTTP -----------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=JSON_TYPE)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _partner_in(raw: bytes) -> str:
    """MaDoiTac of a request body, best effort (for signing a fault's error reply)."""
    try:
        return messages.partner_of(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return ""


def _oversized(body: bytes) -> bytes:
    """The same JSON object with a filler field past 5 MB (MaXacThuc still verifies)."""
    return body.rstrip()[:-1] + b',"DuLieuDem":"' + b"x" * OVERSIZED_BYTES + b'"}'


def _return_url(url: str, reference: str, status: Status) -> str:
    """UrlTraVe with `MaThamChieu` and `TrangThaiGD` appended to its query."""
    parts = urlsplit(url)
    extra = urlencode({"MaThamChieu": reference, "TrangThaiGD": STATUS_CODES[status]})
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers={"cache-control": "no-store"})


def _not_found_page() -> HTMLResponse:
    return _html(pages.message_page("Không tìm thấy", "Không có giao dịch này."), 404)


def _unexpected(exc: Exception) -> None:
    """Log an unexpected error by type and place only: its message may hold request data."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = "?" if frame is None else f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}"
    log.error("payment mock: unexpected %s at %s", type(exc).__name__, where)


def create_app(
    *,
    partner_code: str = "LGSPHUB",
    secret: str = "payment-secret",
    public_url: str = "http://127.0.0.1:8105",
    ipn_url: str | None = DEFAULT_IPN_URL,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ipn_attempts: int = 5,
    ipn_backoff_s: float = 1.0,
    faults: FaultConfig | None = None,
    fault_seed: int | None = None,
) -> Starlette:
    """Build the mock.

    `partner_code` and `secret` are the one partner it knows; `public_url` is where the pay
    page is reached (`UrlThanhToan`); `ipn_url` receives the IPN (`None`: no IPN).
    `app.state.push` (a PushTarget: `url`, `transport`) may be changed at run time. `clock`
    and `sleep` are injectable so tests control time (transaction and IPN times, the IPN's
    back-off); `fault_seed` makes fault rates reproducible.
    """
    target = PushTarget(ipn_url, None)
    sender = IpnSender(
        target,
        partner_code=partner_code,
        secret=secret,
        clock=clock,
        sleep=sleep,
        attempts=ipn_attempts,
        backoff_s=ipn_backoff_s,
    )
    platform = PaymentPlatform(
        partner_code=partner_code, secret=secret, public_url=public_url, clock=clock, sender=sender
    )
    state = FaultState(faults, seed=fault_seed)

    async def api(request: Request) -> Response:
        try:
            config = state.effective(request.headers.get("x-mock-fault"))
        except FaultConfigError as exc:
            return JSONResponse({"error": f"X-Mock-Fault: {exc}"}, status_code=400)
        raw = await _read_body(request, MAX_REQUEST_BYTES)
        kind = None
        if config.active:
            if config.latency_ms:
                await asyncio.sleep(config.latency_ms / 1000)
            kind = state.pick(config)
            if kind == "timeout":
                await hold_until_disconnect(request.receive)  # then answer, too late
            elif kind == "reset":
                return ConnectionReset()
            elif kind == "http_503":
                return Response(b"", status_code=503)
            elif kind in ("error", "soap_fault", "xxe", "billion_laughs"):
                return _json(platform.error("99", _partner_in(raw or b"")))
        if raw is None:
            status, reply = 400, platform.error("01", "", ["(body)"])
        else:
            try:
                status, reply = platform.answer(raw)
            except Exception as exc:  # never a traceback on the wire
                _unexpected(exc)
                status, reply = 200, platform.error("99", _partner_in(raw))
        body = orjson.dumps(reply)
        if kind == "malformed":
            body = body[: max(1, len(body) // 2)]
        elif kind == "oversized":
            body = _oversized(body)
        return Response(body, status, media_type=JSON_TYPE)

    async def pay(request: Request) -> Response:
        transaction = platform.by_id.get(request.path_params["transaction_id"])
        if transaction is None:
            return _not_found_page()
        if request.method == "GET":
            if transaction.status == "pending":
                page = pages.pay_page(
                    transaction.transaction_id, transaction.amount, transaction.description
                )
            else:
                page = pages.outcome_page(
                    transaction.transaction_id,
                    transaction.amount,
                    transaction.description,
                    transaction.status == "paid",
                )
            return _html(page)
        raw = await _read_body(request, MAX_FORM_BYTES)
        form = parse_qs((raw or b"").decode("latin-1"))
        chosen = form.get("outcome", [""])[0]
        if chosen not in ("success", "failed"):
            page = pages.message_page("Yêu cầu không hợp lệ", "outcome: success hoặc failed")
            return _html(page, 400)
        if transaction.status == "pending":  # settled already (a second click): as it is
            platform.settle(transaction, "success" if chosen == "success" else "failed")
        if transaction.return_url is None:
            page = pages.outcome_page(
                transaction.transaction_id,
                transaction.amount,
                transaction.description,
                transaction.status == "paid",
            )
            return _html(page)
        target_url = _return_url(transaction.return_url, transaction.reference, transaction.status)
        return RedirectResponse(target_url, status_code=303)

    async def settle(request: Request) -> Response:
        transaction = platform.by_id.get(request.path_params["transaction_id"])
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, 404)
        raw = await _read_body(request, MAX_FORM_BYTES)
        try:
            body = orjson.loads(raw) if raw and raw.strip() else {}
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or set(body) - {"outcome", "notify"}:
            message = 'the body is a JSON object {"outcome": "success"|"failed", "notify": bool}'
            return JSONResponse({"error": message}, 400)
        outcome, notify = body.get("outcome", "success"), body.get("notify", True)
        if outcome not in ("success", "failed") or not isinstance(notify, bool):
            message = 'outcome is "success" or "failed", notify true or false'
            return JSONResponse({"error": message}, 400)
        try:
            platform.settle(transaction, outcome, notify=notify)
        except AlreadySettled:
            return JSONResponse({"error": "the transaction is already settled"}, 409)
        return _json(platform.summary(transaction))

    async def transactions(request: Request) -> Response:
        found = [platform.summary(t) for t in platform.transactions.values()]
        return _json({"payments": found, "total": len(found)})

    async def records(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_RECORDS:
            return JSONResponse({"error": f"limit must be 1..{MAX_RECORDS}"}, 400)
        return _json({"records": sample_records(limit)})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await platform.aclose()

    app = Starlette(
        routes=[
            Route(API_PATH, api, methods=["POST"]),
            Route("/pay/{transaction_id}", pay, methods=["GET", "POST"]),
            Route("/_mock/payments/{transaction_id}/settle", settle, methods=["POST"]),
            Route("/_mock/payments", transactions, methods=["GET"]),
            Route("/_mock/records", records, methods=["GET"]),
            Route("/_mock/health", health, methods=["GET"]),
            *fault_routes(state),
        ],
        lifespan=lifespan,
    )
    app.state.payment = platform
    app.state.push = target
    app.state.faults = state
    return app
