"""The payment adapter against exact upstream answers (respx): the checksum both ways, each
MaLoi, transport failures, and the IPN callback's verification through the hub's API.

The checksum is recomputed here with hashlib from the contract (docs/mock-payment.md), not
with the adapter's own function, so a change of field order or format fails these tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from adapters.payment import PaymentAdapter
from hub.core.config import Settings
from hub.core.gateway import CallerHeaders
from hub.errors import HubError, InvalidSignature, SchemaViolation, StaleMessage
from hub.security.auth import Principal
from tests.conftest import RunningHub, running_hub
from tests.core.fakes import WebhookReceiver
from tests.payment_contract import REPLY_SIGNED, mac_of
from tests.test_pipeline import assert_problem

BASE = "http://payment.upstream"
API = f"{BASE}/api/v1/thanhtoan"
PARTNER, SECRET = "P-TEST", "s3cret"
VIETNAM = dt.timezone(dt.timedelta(hours=7))
ORDER = {
    "amount": 150000,
    "description": "Lệ phí cấp phiếu lý lịch tư pháp",
    "procedure_code": "1.001234",
    "dossier_id": "HS-2026-0001",
    "payer_name": "Trần Thị Bình",
    "payer_personal_id": "001185012345",
}


def sign(message: dict[str, Any], *fields: str, secret: str = SECRET) -> str:
    return mac_of(message, fields, secret)


def reply(kind: str, **fields: Any) -> dict[str, Any]:
    body = {"MaLoi": "00", "MoTaLoi": "Thành công", "MaDoiTac": PARTNER, **fields}
    signed = REPLY_SIGNED[kind] if body["MaLoi"] == "00" else ("MaLoi", "MaDoiTac")
    body["MaXacThuc"] = sign(body, *signed)
    return body


def error_reply(code: str) -> dict[str, Any]:
    """An error reply: signed over MaLoi and our partner code, which it does not repeat."""
    body = {"MaLoi": code, "MoTaLoi": "…"}
    body["MaXacThuc"] = sign({**body, "MaDoiTac": PARTNER}, "MaLoi", "MaDoiTac")
    return body


def now_vn() -> str:
    return dt.datetime.now(VIETNAM).strftime("%Y%m%d%H%M%S")


def ipn(
    reference: str, amount: int, *, code: str = "00", when: str | None = None, **change: Any
) -> dict[str, Any]:
    body = {
        "LoaiBanTin": "IPN",
        "MaLoi": code,
        "MaDoiTac": PARTNER,
        "MaThamChieu": reference,
        "SoTien": amount,
        "MaGiaoDich": "DVC2026120100000001",
        "ThoiGianGD": when or now_vn(),
    }
    body["MaXacThuc"] = sign(
        body, "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaGiaoDich", "ThoiGianGD"
    )
    body.update(change)
    return body


class Platform:
    """The upstream endpoint: records each message, answers with what the test chose."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], httpx.Response] = self.default

    def default(self, message: dict[str, Any]) -> httpx.Response:
        kind = message["LoaiBanTin"]
        if kind == "INIT":
            return httpx.Response(
                200,
                json=reply(
                    "INIT",
                    MaThamChieu=message["MaThamChieu"],
                    MaGiaoDich="DVC2026120100000001",
                    UrlThanhToan="http://pay.example/pay/DVC2026120100000001",
                ),
            )
        if kind == "QUERY":
            return httpx.Response(200, json=error_reply("04"))
        raise AssertionError(kind)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        message = json.loads(request.content)
        self.sent.append(message)
        return self.answer(message)


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def hub(
    settings: Settings, platform: Platform, receiver: WebhookReceiver
) -> AsyncIterator[RunningHub]:
    router = respx.MockRouter(assert_all_called=False)
    router.post(API).mock(side_effect=platform)
    settings.adapters = {
        "payment": {"base_url": BASE, "partner_code": PARTNER, "secret": SECRET, "timeout_s": 0.3}
    }
    async with running_hub(
        settings,
        adapters=[PaymentAdapter],
        transports={"payment": httpx.MockTransport(router.async_handler)},
        webhook_transport=httpx.ASGITransport(app=receiver.app()),
    ) as running:
        running.key = running.client()  # type: ignore[attr-defined]
        yield running


async def op(hub: RunningHub, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """Call an operation as the hub itself does (the generic route refuses these)."""
    caller = CallerHeaders(request_id="test-op", authorization=None)
    principal = Principal("cl_test", "test", frozenset(), frozenset())
    result = await hub.hub.gateway.call(
        caller, "payment", operation, body, principal=principal, authorize=False
    )
    return result.data


async def op_error(hub: RunningHub, operation: str, body: dict[str, Any]) -> HubError:
    with pytest.raises(HubError) as info:
        await op(hub, operation, body)
    return info.value


async def open_payment(hub: RunningHub, **extra: Any) -> dict[str, Any]:
    headers = hub.headers(hub.key, **{"idempotency-key": "k-1"})  # type: ignore[attr-defined]
    response = await hub.http.post("/v1/payments", json={**ORDER, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


# -- INIT --------------------------------------------------------------------------------


async def test_init_message_is_signed_in_the_documented_order(hub, platform):
    payment = await open_payment(hub, return_url="https://portal.example/back")
    (message,) = platform.sent
    assert message["LoaiBanTin"] == "INIT" and message["PhienBan"] == "1.0.6"
    assert (message["MaDoiTac"], message["MaThamChieu"]) == (PARTNER, payment["id"])
    assert (message["SoTien"], message["MaTienTe"]) == (150000, "VND")
    assert message["ThongTinGiaoDich"] == ORDER["description"]
    assert message["UrlTraVe"] == "https://portal.example/back"
    assert message["ThongTinBienLai"] == {
        "MaTTHC": "1.001234",
        "MaHoSo": "HS-2026-0001",
        "HoTenNguoiNop": "Trần Thị Bình",
        "SoDinhDanhNguoiNop": "001185012345",
    }
    # ThoiGianGD is the payment's creation time, in Vietnam time.
    created = dt.datetime.fromisoformat(payment["created_at"])
    assert message["ThoiGianGD"] == created.astimezone(VIETNAM).strftime("%Y%m%d%H%M%S")
    assert message["MaXacThuc"] == sign(
        message,
        "LoaiBanTin",
        "PhienBan",
        "MaDoiTac",
        "MaThamChieu",
        "SoTien",
        "MaTienTe",
        "ThongTinGiaoDich",
        "ThoiGianGD",
        "UrlTraVe",
    )
    assert payment["status"] == "pending"
    assert payment["transaction_id"] == "DVC2026120100000001"
    assert payment["pay_url"] == "http://pay.example/pay/DVC2026120100000001"


async def test_init_without_optional_fields_signs_them_empty(hub, platform):
    order = {k: v for k, v in ORDER.items() if k != "payer_personal_id"}
    headers = hub.headers(hub.key, **{"idempotency-key": "k-2"})
    assert (await hub.http.post("/v1/payments", json=order, headers=headers)).status_code == 201
    (message,) = platform.sent
    assert "SoDinhDanhNguoiNop" not in message["ThongTinBienLai"]
    assert message["UrlTraVe"] is None
    text = "|".join(
        [
            *(
                str(message[f])
                for f in (
                    "LoaiBanTin",
                    "PhienBan",
                    "MaDoiTac",
                    "MaThamChieu",
                    "SoTien",
                    "MaTienTe",
                    "ThongTinGiaoDich",
                    "ThoiGianGD",
                )
            ),
            "",
            SECRET,
        ]
    )
    assert message["MaXacThuc"] == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (
            lambda r: r.update(MaXacThuc="0" * 64),
            "UPSTREAM_BAD_RESPONSE",
        ),  # not signed by our secret
        (
            lambda r: r.update(UrlThanhToan="http://evil.example/"),
            "UPSTREAM_BAD_RESPONSE",
        ),  # altered after signing
        (lambda r: r.pop("MaXacThuc"), "UPSTREAM_BAD_RESPONSE"),
    ],
)
async def test_an_init_reply_that_does_not_verify_is_refused(hub, platform, tamper, code):
    def answer(message):
        body = platform.default(message).json()
        tamper(body)
        return httpx.Response(200, json=body)

    platform.answer = answer
    headers = hub.headers(hub.key, **{"idempotency-key": "k-1"})
    assert_problem(await hub.http.post("/v1/payments", json=ORDER, headers=headers), 502, code)
    # The payment stays `initiating`: the same key retries INIT with the same reference.
    platform.answer = platform.default
    retried = await hub.http.post("/v1/payments", json=ORDER, headers=headers)
    assert retried.status_code == 201, retried.text
    assert platform.sent[0]["MaThamChieu"] == platform.sent[-1]["MaThamChieu"]


async def test_a_reply_for_another_reference_or_partner_is_refused(hub, platform):
    platform.answer = lambda m: httpx.Response(
        200,
        json=reply(
            "INIT", MaThamChieu="pay_other", MaGiaoDich="DVC1", UrlThanhToan="http://pay.example/x"
        ),
    )
    headers = hub.headers(hub.key, **{"idempotency-key": "k-1"})
    assert_problem(
        await hub.http.post("/v1/payments", json=ORDER, headers=headers),
        502,
        "UPSTREAM_BAD_RESPONSE",
    )

    def other_partner(message):
        body = {
            "MaLoi": "00",
            "MaDoiTac": "SOMEONE",
            "MaThamChieu": message["MaThamChieu"],
            "MaGiaoDich": "DVC1",
            "UrlThanhToan": "http://pay.example/x",
        }
        body["MaXacThuc"] = sign(body, *REPLY_SIGNED["INIT"])
        return httpx.Response(200, json=body)

    platform.answer = other_partner
    assert_problem(
        await hub.http.post("/v1/payments", json=ORDER, headers=headers),
        502,
        "UPSTREAM_BAD_RESPONSE",
    )


# -- MaLoi and transport failures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "problem"),
    [
        ("01", 502, "UPSTREAM_REJECTED"),
        ("02", 502, "UPSTREAM_REJECTED"),
        ("03", 502, "UPSTREAM_REJECTED"),
        ("04", 404, "NOT_FOUND"),
        ("99", 503, "UPSTREAM_UNAVAILABLE"),
    ],
)
async def test_each_error_code_of_a_query(hub, platform, code, status, problem):
    platform.answer = lambda m: httpx.Response(200, json=error_reply(code))
    error = await op_error(hub, "query", {"reference": "pay_x"})
    assert (error.status, error.code) == (status, problem)
    assert "…" not in str(error.detail)  # upstream's MoTaLoi is never passed on
    # Only "system error" is worth repeating: a query is idempotent, so the core retries it.
    expected_attempts = hub.settings.retry_attempts if code == "99" else 1
    assert len(platform.sent) == expected_attempts


async def test_query_maps_state_amount_and_vietnam_time(hub, platform):
    platform.answer = lambda m: httpx.Response(
        200,
        json=reply(
            "QUERY",
            MaThamChieu=m["MaThamChieu"],
            MaGiaoDich="DVC9",
            SoTien=150000,
            TrangThaiGD="1",
            ThoiGianThanhToan="20261201091812",
        ),
    )
    assert await op(hub, "query", {"reference": "pay_x"}) == {
        "reference": "pay_x",
        "transaction_id": "DVC9",
        "status": "paid",
        "amount": 150000,
        "paid_at": "2026-12-01T09:18:12+07:00",
    }
    (message,) = platform.sent
    assert message["MaXacThuc"] == sign(
        message, "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"
    )


async def test_an_unknown_state_code_is_off_contract(hub, platform):
    platform.answer = lambda m: httpx.Response(
        200,
        json=reply(
            "QUERY",
            MaThamChieu="pay_x",
            MaGiaoDich="DVC9",
            SoTien=1,
            TrangThaiGD="7",
            ThoiGianThanhToan="",
        ),
    )
    assert (await op_error(hub, "query", {"reference": "pay_x"})).code == "UPSTREAM_BAD_RESPONSE"


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (httpx.Response(200, json={"MaLoi": "42", "MaDoiTac": PARTNER}), "UPSTREAM_BAD_RESPONSE"),
        (httpx.Response(200, json=["not", "an", "object"]), "UPSTREAM_BAD_RESPONSE"),
        (httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000), "UPSTREAM_BAD_RESPONSE"),
        (httpx.Response(400, text="<html>Bad Request</html>"), "UPSTREAM_REJECTED"),
    ],
)
async def test_off_contract_and_refused_replies_are_502_and_not_retried(
    hub, platform, response, code
):
    """Timeouts, 5xx and a cut answer are the conformance battery's (tests/test_conformance.py);
    these are the platform's own: an unknown MaLoi, a reply that is not an object, hostile
    nesting, an error page on a 4xx."""
    platform.answer = lambda m: response
    error = await op_error(hub, "query", {"reference": "pay_x"})
    assert (error.status, error.code) == (502, code)
    assert len(platform.sent) == 1


async def test_init_is_retried_on_a_transient_failure_and_keeps_its_reference(hub, platform):
    answers = [httpx.Response(503), None]

    def flaky(message):
        first = answers.pop(0)
        return first if first is not None else platform.default(message)

    platform.answer = flaky
    payment = await open_payment(hub)
    assert payment["status"] == "pending"
    assert [m["MaThamChieu"] for m in platform.sent] == [payment["id"]] * 2


async def test_receipt_and_reconciliation(hub, platform):
    def answer(message):
        if message["LoaiBanTin"] == "GET_BILL":
            return httpx.Response(
                200,
                json=reply(
                    "GET_BILL", MaThamChieu="pay_x", SoBienLai="BL-20260000001", BienLai="JVBERi0="
                ),
            )
        assert message["NgayDoiSoat"] == "20261201"
        assert message["MaXacThuc"] == sign(
            message, "LoaiBanTin", "PhienBan", "MaDoiTac", "NgayDoiSoat", "ThoiGianGD"
        )
        entries = [
            {
                "MaThamChieu": "pay_a",
                "MaGiaoDich": "DVC1",
                "SoTien": 5000,
                "TrangThaiGD": "1",
                "ThoiGianThanhToan": "20261201100000",
            },
            {
                "MaThamChieu": "pay_b",
                "MaGiaoDich": "DVC2",
                "SoTien": 7000,
                "TrangThaiGD": "3",
                "ThoiGianThanhToan": "",
            },
        ]
        return httpx.Response(
            200,
            json=reply(
                "DOI_SOAT", NgayDoiSoat="20261201", SoLuong=len(entries), DanhSachGiaoDich=entries
            ),
        )

    platform.answer = answer
    assert await op(hub, "receipt", {"reference": "pay_x"}) == {
        "reference": "pay_x",
        "number": "BL-20260000001",
        "pdf_base64": "JVBERi0=",
    }
    listing = await op(hub, "reconciliation", {"date": "2026-12-01"})
    assert listing["entries"] == [
        {
            "reference": "pay_a",
            "transaction_id": "DVC1",
            "amount": 5000,
            "status": "paid",
            "settled_at": "2026-12-01T10:00:00+07:00",
        },
        {
            "reference": "pay_b",
            "transaction_id": "DVC2",
            "amount": 7000,
            "status": "pending",
            "settled_at": None,
        },
    ]


async def test_a_reconciliation_list_whose_count_disagrees_is_refused(hub, platform):
    platform.answer = lambda m: httpx.Response(
        200, json=reply("DOI_SOAT", NgayDoiSoat="20261201", SoLuong=3, DanhSachGiaoDich=[])
    )
    error = await op_error(hub, "reconciliation", {"date": "2026-12-01"})
    assert error.code == "UPSTREAM_BAD_RESPONSE"


async def test_health_is_a_query_of_a_reference_nobody_has(hub, platform):
    ready = (await hub.http.get("/ready")).json()
    assert ready["services"]["payment"]["ok"] is True
    assert platform.sent[-1]["LoaiBanTin"] == "QUERY"
    platform.answer = lambda m: httpx.Response(200, json=error_reply("02"))  # our secret refused
    ready = (await hub.http.get("/ready")).json()
    assert ready["services"]["payment"] == {
        **ready["services"]["payment"],
        "ok": False,
        "detail": "UPSTREAM_REJECTED",
    }


# -- the IPN callback, through the hub's API ------------------------------------------------


async def post_ipn(hub: RunningHub, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await hub.http.post(
        "/v1/payments/ipn", content=content, headers={"content-type": "application/json"}
    )


async def read(hub: RunningHub, payment_id: str) -> dict[str, Any]:
    return (await hub.http.get(f"/v1/payments/{payment_id}", headers=hub.headers(hub.key))).json()[
        "data"
    ]  # type: ignore[no-any-return]


async def test_a_verified_ipn_settles_the_payment_and_notifies_the_agency(hub, platform, receiver):
    payment = await open_payment(hub, callback_url="http://agency.test/hook")
    accepted = await post_ipn(hub, ipn(payment["id"], 150000))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"] == {"id": payment["id"], "status": "paid", "applied": True}
    state = await read(hub, payment["id"])
    assert state["status"] == "paid" and state["paid_at"] is not None
    await hub.hub.worker.run_once()
    ((_, body),) = receiver.received
    assert json.loads(body)["event"] == "payment.paid"


async def test_a_failed_payment_ipn(hub, platform):
    payment = await open_payment(hub)
    assert (await post_ipn(hub, ipn(payment["id"], 150000, code="01"))).status_code == 200
    assert (await read(hub, payment["id"]))["status"] == "failed"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"MaXacThuc": "0" * 64}, 401, "INVALID_SIGNATURE"),  # forged
        ({"SoTien": 1}, 401, "INVALID_SIGNATURE"),  # altered after signing
        ({"MaDoiTac": "SOMEONE"}, 401, "INVALID_SIGNATURE"),  # another partner's
        ({"MaXacThuc": None}, 401, "INVALID_SIGNATURE"),
        ({"LoaiBanTin": "INIT"}, 422, "VALIDATION_ERROR"),  # not an IPN
    ],
)
async def test_forged_ipns_change_nothing(hub, platform, change, status, code):
    payment = await open_payment(hub)
    assert_problem(await post_ipn(hub, ipn(payment["id"], 150000, **change)), status, code)
    assert (await read(hub, payment["id"]))["status"] == "pending"


async def test_stale_future_and_replayed_ipns_and_amount_mismatch(hub, platform):
    payment = await open_payment(hub)
    old = (dt.datetime.now(VIETNAM) - dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    future = (dt.datetime.now(VIETNAM) + dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    assert_problem(await post_ipn(hub, ipn(payment["id"], 150000, when=old)), 400, "STALE_MESSAGE")
    assert_problem(
        await post_ipn(hub, ipn(payment["id"], 150000, when=future)), 400, "STALE_MESSAGE"
    )
    assert_problem(await post_ipn(hub, ipn(payment["id"], 15000)), 409, "PAYMENT_MISMATCH")
    assert (await read(hub, payment["id"]))["status"] == "pending"
    good = ipn(payment["id"], 150000)
    assert (await post_ipn(hub, good)).status_code == 200
    assert_problem(await post_ipn(hub, good), 409, "REPLAYED_MESSAGE")
    contradicting = ipn(payment["id"], 150000, code="01")
    assert_problem(await post_ipn(hub, contradicting), 409, "PAYMENT_MISMATCH")
    assert (await read(hub, payment["id"]))["status"] == "paid"


async def test_a_replay_is_recognised_however_its_json_is_rewritten(hub, platform):
    payment = await open_payment(hub)
    message = ipn(payment["id"], 150000)
    assert (await post_ipn(hub, message)).status_code == 200
    rewritten = json.dumps(dict(reversed(list(message.items()))), indent=1).encode()
    assert_problem(await post_ipn(hub, rewritten), 409, "REPLAYED_MESSAGE")


async def test_garbage_ipn_bodies(hub):
    assert_problem(await post_ipn(hub, b"not json"), 400, "INVALID_JSON")
    assert_problem(await post_ipn(hub, b"[" * 100_000 + b"]" * 100_000), 400, "INVALID_JSON")
    assert_problem(await post_ipn(hub, b"[1, 2]"), 422, "VALIDATION_ERROR")
    body = ipn("pay_x", 150000)
    body.pop("MaThamChieu")
    body["MaXacThuc"] = sign(
        body, "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaGiaoDich", "ThoiGianGD"
    )
    assert_problem(await post_ipn(hub, body), 422, "VALIDATION_ERROR")


# -- parse_notification alone ---------------------------------------------------------------


def adapter() -> PaymentAdapter:
    instance = PaymentAdapter.__new__(PaymentAdapter)
    instance.config = PaymentAdapter.Config(partner_code=PARTNER, secret=SECRET)  # type: ignore[call-arg]
    instance._secret = SECRET
    return instance


def test_parse_notification_bounds_the_age_both_ways():
    when = dt.datetime(2026, 12, 1, 9, 0, 0, tzinfo=VIETNAM)
    body = json.dumps(ipn("pay_x", 5, when=when.strftime("%Y%m%d%H%M%S"))).encode()
    note = adapter().parse_notification(body, {}, now=when.timestamp() + 899)
    assert (note.reference, note.amount, note.status, note.occurred_at) == (
        "pay_x",
        5,
        "paid",
        when,
    )
    adapter().parse_notification(body, {}, now=when.timestamp() - 899)
    for skew in (901, -901):
        with pytest.raises(StaleMessage):
            adapter().parse_notification(body, {}, now=when.timestamp() + skew)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"SoTien": "5"}, SchemaViolation),  # signed as text "5", but SoTien must be a number
        ({"ThoiGianGD": "2026-12-01"}, SchemaViolation),
        ({"MaLoi": True}, InvalidSignature),  # no boolean is ever signed
    ],
)
def test_parse_notification_refuses_wrong_types_even_if_signed_over_them(change, error):
    body = ipn("pay_x", 5)
    body.update(change)
    body["MaXacThuc"] = sign(
        body, "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaGiaoDich", "ThoiGianGD"
    )
    with pytest.raises(error):
        adapter().parse_notification(json.dumps(body).encode(), {})


# -- operations the hub serves through its own routes ------------------------------------


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        (
            "init",
            {
                "reference": "pay_someone_else",
                "amount": 150000,
                "description": "x",
                "procedure_code": "1",
                "dossier_id": "1",
                "payer_name": "x",
                "created_at": "2026-12-01T00:00:00Z",
            },
        ),
        ("query", {"reference": "pay_someone_else"}),
        ("receipt", {"reference": "pay_someone_else"}),
        ("reconciliation", {"date": "2026-12-01"}),
    ],
)
async def test_the_generic_route_refuses_what_the_hub_owns(hub, platform, operation, body):
    """A client reaching these by upstream reference could read another client's payment
    or receipt, or open one the hub does not follow: they are served by /v1/payments."""
    response = await hub.http.post(
        f"/v1/services/payment/{operation}", json=body, headers=hub.headers(hub.key)
    )
    problem = assert_problem(response, 403, "FORBIDDEN")
    assert "/v1/payments" in problem["detail"] or "reconcile" in problem["detail"]
    assert platform.sent == []
    row = hub.audit_rows()[-1]
    assert (row["service"], row["operation"], row["code"]) == ("payment", operation, "FORBIDDEN")
    catalogue = (await hub.http.get("/v1/services", headers=hub.headers(hub.key))).json()
    (entry,) = [s for s in catalogue["data"] if s["name"] == "payment"]
    assert all(op["route"] for op in entry["operations"])


async def test_receipt_route_is_for_the_owner_of_a_paid_payment(hub, platform):
    def answer(message):
        if message["LoaiBanTin"] == "GET_BILL":
            return httpx.Response(
                200,
                json=reply(
                    "GET_BILL",
                    MaThamChieu=message["MaThamChieu"],
                    SoBienLai="BL-20260000001",
                    BienLai="JVBERi0=",
                ),
            )
        return platform.default(message)

    platform.answer = answer
    payment = await open_payment(hub)
    url = f"/v1/payments/{payment['id']}/receipt"
    assert_problem(
        await hub.http.get(url, headers=hub.headers(hub.key)), 404, "NOT_FOUND"
    )  # not paid
    assert (await post_ipn(hub, ipn(payment["id"], 150000))).status_code == 200
    other = hub.client()
    assert_problem(await hub.http.get(url, headers=hub.headers(other)), 404, "NOT_FOUND")
    assert_problem(
        await hub.http.get(url, headers=hub.headers(hub.key, purpose=None)), 400, "PURPOSE_REQUIRED"
    )
    assert_problem(await hub.http.get(url), 401, "UNAUTHENTICATED")
    assert [m["LoaiBanTin"] for m in platform.sent] == ["INIT"]  # no refusal reached upstream
    response = await hub.http.get(url, headers=hub.headers(hub.key))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "reference": payment["id"],
        "number": "BL-20260000001",
        "pdf_base64": "JVBERi0=",
    }
    assert response.json()["meta"]["operation"] == "receipt"


async def test_the_payment_routes_take_the_catalogues_grant_names(hub, platform):
    """`payment:init` opens payments, `payment:query` reads them, `payment:receipt` gets
    the receipt: the names the catalogue lists."""
    opener = hub.client(allow=["payment:init", "payment:query"])
    reader_only = hub.client(allow=["payment:query"])
    headers = hub.headers(opener, **{"idempotency-key": "g-1"})
    opened = await hub.http.post("/v1/payments", json=ORDER, headers=headers)
    assert opened.status_code == 201, opened.text
    url = f"/v1/payments/{opened.json()['data']['id']}"
    assert (await hub.http.get(url, headers=hub.headers(opener))).status_code == 200
    refused = await hub.http.post(
        "/v1/payments", json=ORDER, headers=hub.headers(reader_only, **{"idempotency-key": "g-2"})
    )
    assert_problem(refused, 403, "FORBIDDEN")
    assert_problem(
        await hub.http.get(f"{url}/receipt", headers=hub.headers(opener)), 403, "FORBIDDEN"
    )
    assert [m["LoaiBanTin"] for m in platform.sent] == ["INIT"]
