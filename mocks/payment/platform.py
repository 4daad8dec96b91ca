"""The payment platform's state: one partner's transactions, its four operations, settlement.

`PaymentPlatform` answers a request body of `POST /api/v1/thanhtoan` (INIT, QUERY, GET_BILL,
DOI_SOAT, each reply signed with MaXacThuc), settles a transaction as its payer would and
sends the IPN through an `IpnSender`. Plain Python, no HTTP: `mocks.payment.app` wraps it in
routes. Transactions live in memory, the oldest dropped past `MAX_TRANSACTIONS`.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from mocks._push import TaskSet
from mocks.judicial_records.pdf import certificate_pdf
from mocks.payment import checksum, messages
from mocks.payment.ipn import IpnSender, vietnam_time

__all__ = [
    "MESSAGES",
    "STATUS_CODES",
    "AlreadySettled",
    "Outcome",
    "PaymentPlatform",
    "Status",
    "Transaction",
]

MAX_TRANSACTIONS: Final = 100_000  # kept in memory; the oldest go first
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
