"""The payment mock: the national public-service payment platform, as an ASGI app.

Implements docs/mock-payment.md: `POST /api/v1/thanhtoan` (INIT, QUERY, GET_BILL, DOI_SOAT,
each message signed with MaXacThuc both ways), the pay page `GET|POST /pay/{MaGiaoDich}`,
the signed IPN to the partner when a transaction settles (retried with back-off), and the
mock-only `POST /_mock/payments/{MaGiaoDich}/settle`, `GET /_mock/payments`,
`GET /_mock/records`, `GET /_mock/health`, `GET|PUT|DELETE /_mock/faults`. This module is the
HTTP side; the transactions and their operations are `mocks.payment.platform`'s (in memory);
IPN deliveries are background tasks, cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mocks._push import PushTarget
from mocks.faults import (
    ConnectionReset,
    FaultConfig,
    FaultConfigError,
    FaultState,
    fault_routes,
    hold_until_disconnect,
)
from mocks.payment import messages, pages
from mocks.payment.ipn import DEFAULT_IPN_URL, IpnSender
from mocks.payment.platform import (
    MESSAGES,
    STATUS_CODES,
    AlreadySettled,
    PaymentPlatform,
    Status,
    Transaction,
)
from mocks.payment.procedures import MAX_RECORDS, sample_records

__all__ = ["API_PATH", "MESSAGES", "STATUS_CODES", "PaymentPlatform", "Transaction", "create_app"]

API_PATH: Final = "/api/v1/thanhtoan"
MAX_REQUEST_BYTES: Final = 100_000
MAX_FORM_BYTES: Final = 10_000
OVERSIZED_BYTES: Final = 5 * 1024 * 1024 + 1024
JSON_TYPE: Final = "application/json; charset=utf-8"
log = logging.getLogger("mocks.payment")


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
