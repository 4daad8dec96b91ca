"""The judicial-records adapter: end to end against its mock, the push check, upstream edges."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from adapters.judicial_records import JudicialRecordsAdapter, JudicialRecordsConfig
from hub.core.registry import resolve_mapping
from hub.errors import InvalidJson, InvalidSignature, SchemaViolation, StaleMessage
from mocks.data import load_citizens
from mocks.judicial_records import outcome
from mocks.judicial_records.app import create_app as create_mock
from tests.conftest import RunningHub, call_operation, running_hub
from tests.mocks.test_mock_judicial_records import NOW, FakeClock, eventually
from tests.test_pipeline import assert_problem

BASE = "http://judicial.mock"
SUBMIT_URL = f"{BASE}/api/v1/lltp/hoso"
SECRET = b"judicial-push-secret"
REFERENCE = "LLTP-0a1b2c3d-000007"
PID = "001085012345"


@pytest.fixture(scope="module")
def applicants() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for applicant in outcome.sample_applicants(load_citizens(), 3):
        found.setdefault(applicant["expected"], applicant)
    return found


def application(applicant: dict[str, str], certificate_type: int = 1) -> dict[str, Any]:
    """The canonical `submit` input for a /_mock/records applicant."""
    return {
        "certificate_type": certificate_type,
        "purpose_code": "01",
        "personal_id": applicant["personal_id"],
        "full_name": applicant["full_name"],
        "gender": applicant["gender"],
        "date_of_birth": applicant["date_of_birth"],
        "permanent_address": applicant["permanent_address"],
        "current_address": applicant["current_address"],
    }


# -- end to end, through the hub's generic route, against the in-process mock --------------


@pytest.fixture
async def stack(settings: Any) -> AsyncIterator[tuple[RunningHub, Any, FakeClock]]:
    clock = FakeClock()
    mock = create_mock(clock=clock, sleep=clock.sleep, push_url=None)
    settings.adapters = {"judicial-records": {"base_url": BASE}}
    async with (
        mock.router.lifespan_context(mock),
        running_hub(
            settings,
            adapters=[JudicialRecordsAdapter],
            transports={"judicial-records": httpx.ASGITransport(app=mock)},
        ) as hub,
    ):
        hub.key = hub.client()  # type: ignore[attr-defined]
        yield hub, mock, clock


async def call(hub: RunningHub, operation: str, body: dict[str, Any], **headers: str) -> Any:
    """One operation through the pipeline; the generic route refuses these two (the hub's
    job routes serve them), so the adapter is tested one message at a time this way."""
    headers = hub.headers(hub.key, **headers)  # type: ignore[attr-defined]
    return await call_operation(hub, "judicial-records", operation, body, headers)


async def test_submit_then_poll_until_issued(stack, applicants) -> None:
    hub, mock, clock = stack
    applicant = applicants["convictions"]
    submitted = await call(
        hub, "submit", application(applicant), **{"x-dossier-id": "000.00.01.H26-0001"}
    )
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert body["meta"]["service"] == "judicial-records" and body["meta"]["operation"] == "submit"
    reference = body["data"]["reference"]
    assert body["data"] == {"reference": reference, "status": "received"}
    statuses = []
    for _ in range(3):
        polled = await call(hub, "status", {"reference": reference})
        assert polled.status_code == 200, polled.text
        statuses.append(polled.json()["data"]["status"])
        clock.advance(1.5)
    assert statuses == ["received", "processing", "issued"]
    data = polled.json()["data"]
    certificate = data["certificate"]
    assert re.fullmatch(r"25HN2001/\d{5}", certificate["number"])
    assert certificate["issued_on"] == "2025-06-15" and certificate["certificate_type"] == 1
    assert certificate["has_criminal_record"] is True
    conviction = certificate["convictions"][0]
    assert set(conviction) == {"court", "judgment_number", "judgment_date", "offence", "sentence"}
    dt.date.fromisoformat(conviction["judgment_date"])
    assert base64.b64decode(certificate["pdf_base64"]).startswith(b"%PDF")
    assert data["rejection_reason"] is None
    [sent] = mock.state.judicial.applications.values()
    assert sent.form.maHoSoMCDT == "000.00.01.H26-0001"
    assert sent.form.maTinh == "001"


async def test_a_clean_record_and_a_rejection(stack, applicants) -> None:
    hub, _, clock = stack
    clean = (await call(hub, "submit", application(applicants["clean"], 2))).json()["data"]
    rejected = (await call(hub, "submit", application(applicants["rejected"]))).json()["data"]
    clock.advance(3)
    issued = (await call(hub, "status", {"reference": clean["reference"]})).json()["data"]
    assert issued["status"] == "issued"
    assert issued["certificate"]["has_criminal_record"] is False
    assert issued["certificate"]["convictions"] == []
    assert issued["certificate"]["certificate_type"] == 2
    refused = (await call(hub, "status", {"reference": rejected["reference"]})).json()["data"]
    assert refused["status"] == "rejected" and refused["certificate"] is None
    assert "không khớp" in refused["rejection_reason"]


async def test_without_a_dossier_id_the_request_id_is_the_dossier_code(stack, applicants) -> None:
    hub, mock, _ = stack
    response = await call(
        hub, "submit", application(applicants["clean"]), **{"x-request-id": "rq-77"}
    )
    assert response.status_code == 200
    [sent] = mock.state.judicial.applications.values()
    assert sent.form.maHoSoMCDT == "rq-77"


async def test_an_unknown_reference_is_404(stack) -> None:
    hub, _, _ = stack
    assert_problem(
        await call(hub, "status", {"reference": "LLTP-00000000-000001"}), 404, "NOT_FOUND"
    )
    # A reference that would climb out of the path never reaches another resource.
    assert_problem(await call(hub, "status", {"reference": "../../_mock/health"}), 404, "NOT_FOUND")


async def test_busy_upstream_is_503_and_submit_is_not_retried(stack, applicants) -> None:
    hub, mock, _ = stack
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mock), base_url=BASE) as http:
        await http.put("/_mock/faults", json={"fault": "error"})
    response = await call(hub, "submit", application(applicants["clean"]))
    assert_problem(response, 503, "UPSTREAM_UNAVAILABLE")
    assert mock.state.judicial.applications == {}


async def test_health_probe(stack) -> None:
    hub, _, _ = stack
    health = await hub.hub.registry.get("judicial-records").instance.health()
    assert health.ok, health.detail


async def test_the_catalogue_lists_the_service_up(stack) -> None:
    hub, _, _ = stack
    response = await hub.http.get("/v1/services", headers=hub.headers(hub.key))
    [service] = response.json()["data"]
    assert service["name"] == "judicial-records" and service["status"] == "up"
    ops = {op["name"]: op for op in service["operations"]}
    assert set(ops) == {"submit", "status"}
    assert (ops["submit"]["idempotent"], ops["submit"]["personal_data"]) == (False, True)
    assert (ops["status"]["idempotent"], ops["status"]["personal_data"]) == (True, True)
    assert JudicialRecordsAdapter.operations["submit"].subject == "personal_id"


async def test_the_mock_pushes_the_result_into_the_hub_job(settings, applicants) -> None:
    clock = FakeClock(start=time.time())  # the hub checks the push's age on its own clock
    mock = create_mock(clock=clock, sleep=clock.sleep)
    settings.adapters = {"judicial-records": {"base_url": BASE}}
    async with (
        mock.router.lifespan_context(mock),
        running_hub(
            settings,
            adapters=[JudicialRecordsAdapter],
            transports={"judicial-records": httpx.ASGITransport(app=mock)},
        ) as hub,
    ):
        mock.state.push.url = "http://hub.test/v1/judicial-records/results"
        mock.state.push.transport = httpx.ASGITransport(app=hub.app)
        key = hub.client()
        created = await hub.http.post(
            "/v1/judicial-records/requests",
            json=application(applicants["convictions"]),
            headers=hub.headers(key),
        )
        assert created.status_code == 202, created.text
        url = created.headers["location"]
        clock.advance(3)
        await eventually(lambda: mock.state.judicial.pending_pushes == 0, "the push to the hub")
        [sent] = mock.state.judicial.applications.values()
        assert (sent.push_state, sent.push_attempts) == ("delivered", 1)
        job = (await hub.http.get(url, headers=hub.headers(key))).json()["data"]
        assert job["status"] == "issued" and job["final"] is True
        assert job["certificate"]["has_criminal_record"] is True


# -- parse_push ------------------------------------------------------------------------------


@pytest.fixture
async def adapter() -> JudicialRecordsAdapter:
    instance = JudicialRecordsAdapter(
        config=JudicialRecordsConfig(),
        http=None,  # type: ignore[arg-type]  # parse_push makes no call
        mapping=resolve_mapping(JudicialRecordsAdapter),
    )
    await instance.startup()
    return instance


PUSHED = {
    "maHoSoLLTP": REFERENCE,
    "maHoSoMCDT": "000.00.01.H26-0001",
    "trangThaiXuLy": "3",
    "ketQuaXuLy": {
        "soPhieuLLTP": "25HN2001/00007",
        "ngayCapPhieu": "20250615",
        "loaiPhieu": 2,
        "tinhTrangAnTich": "Đã được xoá án tích",
        "thongTinAn": [
            {
                "toaAnXetXu": "Tòa án nhân dân thành phố Hà Nội",
                "soBanAn": "54/2012/HS-ST",
                "ngayBanAn": "20120307",
                "toiDanh": "Trộm cắp tài sản",
                "hinhPhat": "09 tháng tù",
                "daXoaAnTich": True,
            }
        ],
        "phieuLLTP": "JVBERi0xLjQK",
    },
}


def signed(body: bytes, timestamp: float = NOW, key: bytes = SECRET) -> dict[str, str]:
    stamp = str(int(timestamp))
    signature = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-LLTP-Timestamp": stamp, "X-LLTP-Signature": signature}


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def test_a_signed_push_is_read(adapter) -> None:
    body = encode(PUSHED)
    state = adapter.parse_push(body, signed(body), now=NOW + 10)
    assert state.reference == REFERENCE and state.status == "issued"
    assert state.certificate is not None
    assert state.certificate.has_criminal_record is False  # expunged only
    assert state.certificate.convictions[0].judgment_date == dt.date(2012, 3, 7)
    assert state.certificate.number == "25HN2001/00007"


def test_a_pushed_rejection_is_read(adapter) -> None:
    body = encode({"maHoSoLLTP": REFERENCE, "trangThaiXuLy": "4", "lyDoTuChoi": "Sai thông tin"})
    state = adapter.parse_push(body, signed(body), now=NOW)
    assert (state.status, state.rejection_reason, state.certificate) == (
        "rejected",
        "Sai thông tin",
        None,
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: ({**h, "X-LLTP-Signature": "0" * 64}, b),
        lambda h, b: (h, b.replace(b'"3"', b'"4"')),
        lambda h, b: ({**h, "X-LLTP-Timestamp": str(int(NOW) + 1)}, b),
        lambda h, b: (signed(b, key=b"another-secret"), b),
        lambda h, b: ({k: v for k, v in h.items() if k != "X-LLTP-Signature"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "X-LLTP-Timestamp"}, b),
        lambda h, b: ({**h, "X-LLTP-Timestamp": "1" * 40}, b),
        lambda h, b: ({}, b),
    ],
    ids=[
        "bad-signature",
        "body-changed",
        "timestamp-changed",
        "other-key",
        "no-signature",
        "no-timestamp",
        "huge-timestamp",
        "no-headers",
    ],
)
def test_a_push_that_does_not_verify_is_refused(adapter, tamper) -> None:
    body = encode(PUSHED)
    headers, sent = tamper(signed(body), body)
    with pytest.raises(InvalidSignature):
        adapter.parse_push(sent, headers, now=NOW)


def test_header_names_are_case_insensitive(adapter) -> None:
    body = encode(PUSHED)
    headers = {k.lower(): v for k, v in signed(body).items()}
    assert adapter.parse_push(body, headers, now=NOW).status == "issued"


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_a_stale_push_is_refused(adapter, age: int) -> None:
    body = encode(PUSHED)
    with pytest.raises(StaleMessage):
        adapter.parse_push(body, signed(body, NOW - age), now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2]",
        encode({**PUSHED, "trangThaiXuLy": "9"}),
        encode({k: v for k, v in PUSHED.items() if k != "maHoSoLLTP"}),
        encode({**PUSHED, "ketQuaXuLy": {**PUSHED["ketQuaXuLy"], "ngayCapPhieu": "15/06/2025"}}),
        encode({**PUSHED, "ketQuaXuLy": {**PUSHED["ketQuaXuLy"], "loaiPhieu": 3}}),
    ],
    ids=["not-an-object", "unknown-status", "no-reference", "bad-date", "bad-type"],
)
def test_a_malformed_push_is_a_schema_violation_without_its_values(adapter, payload) -> None:
    with pytest.raises(SchemaViolation) as caught:
        adapter.parse_push(payload, signed(payload), now=NOW)
    assert "15/06/2025" not in caught.value.detail and "25HN" not in caught.value.detail


def test_a_push_that_is_not_json_is_invalid_json(adapter) -> None:
    with pytest.raises(InvalidJson):
        adapter.parse_push(b"{not json", signed(b"{not json"), now=NOW)
    deep = b"[" * 100_000 + b"]" * 100_000  # no RecursionError, even signed
    with pytest.raises(InvalidJson):
        adapter.parse_push(deep, signed(deep), now=NOW)
    with pytest.raises(SchemaViolation):
        adapter.parse_push(b"[1, 2]", signed(b"[1, 2]"), now=NOW)


async def test_the_hub_push_endpoint_refuses_a_forged_push(stack) -> None:
    hub, _, _ = stack
    body = encode(PUSHED)
    response = await hub.http.post(
        "/v1/judicial-records/results",
        content=body,
        headers={**signed(body, key=b"forged"), "content-type": "application/json"},
    )
    assert_problem(response, 401, "INVALID_SIGNATURE")


# -- upstream edge cases (respx) ---------------------------------------------------------


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
async def hub(settings, upstream) -> AsyncIterator[RunningHub]:
    settings.adapters = {
        "judicial-records": {"base_url": BASE, "auth_key": "k3y", "province_code": "079"}
    }
    transports = {"judicial-records": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(
        settings, adapters=[JudicialRecordsAdapter], transports=transports
    ) as running:
        running.key = running.client()  # type: ignore[attr-defined]
        yield running


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": "00", "message": "Thành công", "data": data}


BUSY = {"statusCode": "03", "message": "Hệ thống đang bận"}
RECEIVED = {"maHoSoLLTP": REFERENCE, "trangThaiXuLy": "1"}
STATUS_URL = f"{SUBMIT_URL}/{REFERENCE}"
APPLICATION = {
    "certificate_type": 1,
    "purpose_code": "01",
    "personal_id": PID,
    "full_name": "Nguyễn Văn An",
    "gender": "male",
    "date_of_birth": "1985-03-04",
    "permanent_address": "Số 12, phố Huế, Hà Nội",
}


async def submit(hub: RunningHub, body: dict[str, Any] = APPLICATION, **headers: str) -> Any:
    return await call(hub, "submit", body, **headers)


async def status(hub: RunningHub, reference: str = REFERENCE) -> Any:
    return await call(hub, "status", {"reference": reference})


async def test_sends_the_upstream_form_and_auth_key(hub, upstream) -> None:
    route = upstream.post(SUBMIT_URL).respond(200, json=ok(RECEIVED))
    response = await submit(hub, **{"x-dossier-id": "HS-9"})
    assert response.json()["data"] == {"reference": REFERENCE, "status": "received"}
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer k3y"
    sent = json.loads(request.content)
    assert sent["maTinh"] == "079" and sent["maHoSoMCDT"] == "HS-9"
    assert re.fullmatch(r"\d{14}", sent["ngayTiepNhan"])
    assert sent["toKhai"] == {
        "loaiPhieu": 1,
        "maMucDich": "01",
        "nycHoTen": "Nguyễn Văn An",
        "nycGioiTinh": "1",
        "nycNgaySinh": "19850304",
        "nycSoGiayTo": PID,
        "nycThuongTru": "Số 12, phố Huế, Hà Nội",
        "nycCuTru": [],
    }


async def test_03_on_status_is_retried_then_succeeds(hub, upstream) -> None:
    route = upstream.get(STATUS_URL).mock(
        side_effect=[httpx.Response(200, json=BUSY), httpx.Response(200, json=ok(RECEIVED))]
    )
    response = await status(hub)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "received"
    assert route.call_count == 2


async def test_03_on_every_status_attempt_is_503(hub, upstream) -> None:
    route = upstream.get(STATUS_URL).respond(200, json=BUSY)
    response = await status(hub)
    assert_problem(response, 503, "UPSTREAM_UNAVAILABLE")
    assert "retry-after" in response.headers
    assert route.call_count == hub.settings.retry_attempts


async def test_03_on_submit_is_not_retried(hub, upstream) -> None:
    route = upstream.post(SUBMIT_URL).respond(200, json=BUSY)
    assert_problem(await submit(hub), 503, "UPSTREAM_UNAVAILABLE")
    assert route.call_count == 1


async def test_01_is_upstream_rejected_without_upstream_text(hub, upstream) -> None:
    message = f"Dữ liệu không hợp lệ: Nguyễn Văn An {PID}"
    route = upstream.post(SUBMIT_URL).respond(200, json={"statusCode": "01", "message": message})
    response = await submit(hub)
    assert_problem(response, 502, "UPSTREAM_REJECTED")
    assert PID not in response.text and "Nguyễn" not in response.text
    assert route.call_count == 1


async def test_upstream_refusing_our_key_is_502_rejected(hub, upstream) -> None:
    route = upstream.get(STATUS_URL).respond(401, json={"statusCode": "01", "message": "authKey"})
    assert_problem(await status(hub), 502, "UPSTREAM_REJECTED")
    assert route.call_count == 1


async def test_unknown_reference_is_404(hub, upstream) -> None:
    upstream.get(STATUS_URL).respond(404, json={"statusCode": "01", "message": "Không tìm thấy"})
    assert_problem(await status(hub), 404, "NOT_FOUND")


async def test_json_nested_100_000_deep_is_502_and_not_retried(hub, upstream) -> None:
    route = upstream.get(STATUS_URL).respond(200, content=b'{"a":' * 100_000 + b"}" * 100_000)
    assert_problem(await status(hub), 502, "UPSTREAM_BAD_RESPONSE")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "reply",
    [
        {"statusCode": "00"},
        {"statusCode": "00", "data": []},
        {"statusCode": "99", "message": "?"},
        [1, 2],
        ok({**RECEIVED, "trangThaiXuLy": "7"}),
        ok({"trangThaiXuLy": "1"}),
    ],
    ids=["no-data", "data-not-object", "unknown-code", "not-an-object", "bad-status", "no-ref"],
)
async def test_off_contract_replies_are_502(hub, upstream, reply) -> None:
    upstream.get(STATUS_URL).respond(200, json=reply)
    assert_problem(await status(hub), 502, "UPSTREAM_BAD_RESPONSE")


async def test_a_reference_is_validated_before_any_call(hub, upstream) -> None:
    route = upstream.get(url__startswith=SUBMIT_URL).respond(200, json=ok(RECEIVED))
    response = await status(hub, "LLTP 1; DROP")
    assert response.status_code in (400, 422)
    assert route.call_count == 0


def test_config_refuses_an_unknown_province() -> None:
    with pytest.raises(ValueError, match="province"):
        JudicialRecordsConfig(province_code="999")


@pytest.mark.parametrize(
    ("reply", "healthy"),
    [
        (httpx.Response(404, json={"statusCode": "01", "message": "Không tìm thấy hồ sơ"}), True),
        (httpx.Response(404, text="Not Found"), False),
        (httpx.Response(401, json={"statusCode": "01", "message": "authKey"}), False),
        (httpx.Response(503), False),
    ],
    ids=["upstream-404", "foreign-404", "bad-key", "down"],
)
async def test_health_probe_needs_upstream_itself_to_answer(hub, upstream, reply, healthy) -> None:
    upstream.get(f"{SUBMIT_URL}/HEALTHCHECK").mock(return_value=reply)
    health = await hub.hub.registry.get("judicial-records").instance.health()
    assert health.ok is healthy


@pytest.mark.parametrize("operation", ["submit", "status"])
async def test_the_generic_route_refuses_what_the_job_routes_serve(stack, applicants, operation):
    """By upstream reference, `status` would hand any client anyone's certificate, and a
    `submit` there would start an application the hub does not follow."""
    hub, _, _ = stack
    body = (
        {"reference": "LLTP-00000000-000001"}
        if operation == "status"
        else application(applicants["clean"])
    )
    response = await hub.http.post(
        f"/v1/services/judicial-records/{operation}", json=body, headers=hub.headers(hub.key)
    )
    problem = assert_problem(response, 403, "FORBIDDEN")
    assert "/v1/judicial-records/requests" in problem["detail"]
