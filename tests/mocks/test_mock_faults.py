"""Fault injection: the shared parser and state, and each fault through the population mock."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from lxml import etree

from mocks.data import Citizen
from mocks.faults import (
    FaultConfig,
    FaultConfigError,
    FaultState,
    parse_fault_body,
    parse_fault_header,
    parse_fault_options,
)

from .conftest import BASE_URL, answer_of, call, fault_of, lookup_body, make_app

# -- parsing ---------------------------------------------------------------------------------


def test_header_syntax() -> None:
    assert parse_fault_header("latency=200") == {"latency_ms": 200}
    assert parse_fault_header("error") == {"error_rate": 1.0}
    assert parse_fault_header(" error=0.25 , timeout ") == {"error_rate": 0.25, "timeout": True}
    assert parse_fault_header("soap-fault,http_503,xxe=false") == {
        "soap_fault": True,
        "http_503": True,
        "xxe": False,
    }
    assert parse_fault_header("malformed=0.3") == {"malformed": True, "fault_rate": 0.3}
    assert parse_fault_header("") == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode", "unknown fault kind 'explode'"),
        ("latency", "latency needs milliseconds"),
        ("latency=-5", "latency_ms"),
        ("latency=fast", "latency_ms"),
        ("error=1.5", "error_rate"),
        ("timeout=maybe", "takes true, false or a rate"),
        ("oversized=2", "takes true, false or a rate"),
    ],
)
def test_bad_header_specs_say_why(spec: str, message: str) -> None:
    with pytest.raises(FaultConfigError, match=message):
        parse_fault_header(spec)


def test_config_refuses_unknown_keys_and_bad_ranges() -> None:
    with pytest.raises(FaultConfigError, match="latency"):
        FaultConfig.build({"latency": 5})
    with pytest.raises(FaultConfigError, match="error_rate"):
        FaultConfig.build({"error_rate": -0.1})
    assert not FaultConfig().active
    assert FaultConfig(xxe=True).active


def test_startup_options() -> None:
    config = parse_fault_options(["latency=200", "error=0.1", "timeout,malformed=false"])
    assert config == FaultConfig(latency_ms=200, error_rate=0.1, timeout=True)
    assert parse_fault_options([]) == FaultConfig()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"fault": "error", "rate": 0.5}, FaultConfig(error_rate=0.5)),
        ({"fault": "error"}, FaultConfig(error_rate=1.0)),
        ({"fault": "latency", "ms": 200}, FaultConfig(latency_ms=200)),
        ({"fault": "http-503"}, FaultConfig(http_503=True)),
        ({"fault": "xxe"}, FaultConfig(xxe=True)),
        ({"fault": "billion-laughs"}, FaultConfig(billion_laughs=True)),
        ({"billion_laughs": True}, FaultConfig(billion_laughs=True)),
        ({"fault": "soap_fault", "rate": 0.2}, FaultConfig(soap_fault=True, fault_rate=0.2)),
        ({"fault": "none"}, FaultConfig()),
        ({"latency_ms": 10, "timeout": True}, FaultConfig(latency_ms=10, timeout=True)),
        ({}, FaultConfig()),
    ],
)
def test_put_body_forms(body: dict[str, Any], expected: FaultConfig) -> None:
    assert parse_fault_body(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"fault": 3},
        {"fault": "latency"},
        {"fault": "latency", "rate": 0.5, "ms": 3},
        {"fault": "timeout", "ms": 5},
        {"fault": "error", "rate": 2},
        {"fault": "error", "extra": 1},
        {"latency_ms": 10, "nonsense": True},
    ],
)
def test_bad_put_bodies(body: Any) -> None:
    with pytest.raises(FaultConfigError):
        parse_fault_body(body)


def test_layers_and_precedence() -> None:
    state = FaultState(FaultConfig(latency_ms=50, xxe=True), seed=1)
    assert state.effective(None) == FaultConfig(latency_ms=50, xxe=True)
    # The header overrides only what it names.
    assert state.effective("xxe=false,http-503") == FaultConfig(latency_ms=50, http_503=True)
    # The run-time layer replaces the start-up one until cleared.
    state.set_runtime(FaultConfig(malformed=True))
    assert state.effective("") == FaultConfig(malformed=True)
    state.clear_runtime()
    assert state.current == FaultConfig(latency_ms=50, xxe=True)
    everything = FaultConfig(timeout=True, http_503=True, error_rate=1, soap_fault=True)
    assert state.pick(everything) == "timeout"
    assert state.pick(everything.model_copy(update={"timeout": False})) == "http_503"
    assert state.pick(FaultConfig(soap_fault=True, error_rate=1)) == "error"
    assert state.pick(FaultConfig(latency_ms=5)) is None


def test_rates_are_seeded_and_roughly_right() -> None:
    config = FaultConfig(error_rate=0.3)
    first = [FaultState(seed=42).pick(config) for _ in range(1)]
    runs = []
    for _ in range(2):
        state = FaultState(seed=42)
        runs.append([state.pick(config) for _ in range(2000)])
    assert runs[0] == runs[1] and first[0] == runs[0][0]
    assert 500 < runs[0].count("error") < 700
    state = FaultState(seed=3)
    hits = [state.pick(FaultConfig(timeout=True, fault_rate=0.1)) for _ in range(2000)]
    assert 120 < hits.count("timeout") < 280


# -- through the population mock ---------------------------------------------------------------


async def test_no_fault_answers_normally(client: httpx.AsyncClient, citizen: Citizen) -> None:
    answer_of(await call(client, lookup_body(citizen.personal_id), fault="error=0"))


async def test_latency(client: httpx.AsyncClient, citizen: Citizen) -> None:
    started = time.perf_counter()
    response = await call(client, lookup_body(citizen.personal_id), fault="latency=200")
    assert time.perf_counter() - started >= 0.2
    answer_of(response)


@pytest.mark.parametrize(
    ("fault", "code"), [("error", "LOI_HE_THONG"), ("soap-fault", "LOI_HE_THONG")]
)
async def test_server_faults(
    client: httpx.AsyncClient, citizen: Citizen, fault: str, code: str
) -> None:
    response = await call(client, lookup_body(citizen.personal_id), fault=fault)
    assert response.status_code == 500
    details = fault_of(response)
    assert (details["faultcode"], details["MaLoi"]) == ("soap:Server", code)


async def test_reset_drops_the_connection_part_way(
    client: httpx.AsyncClient, citizen: Citizen
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await call(client, lookup_body(citizen.personal_id), fault="reset")
    assert parse_fault_header("reset=0.5") == {"reset": True, "fault_rate": 0.5}


@pytest.mark.parametrize(
    ("name", "method", "path"),
    [
        ("civil-status", "GET", "/api/v1/hotich/congdan/001085012345"),
        ("judicial-records", "POST", "/api/v1/lltp/hoso"),
        ("business-registration", "GET", "/apiDKKD/DoanhNghiep/chiTietDoanhNghiep"),
        ("payment", "POST", "/api/v1/thanhtoan"),
    ],
)
async def test_every_mock_can_reset(name: str, method: str, path: str) -> None:
    from mocks import create_mock_app

    app = create_mock_app(name)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.request(method, path, json={}, headers={"x-mock-fault": "reset"})


async def test_timeout_holds_the_request(client: httpx.AsyncClient, citizen: Citizen) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call(client, lookup_body(citizen.personal_id), fault="timeout"), 0.3)


async def test_malformed_is_unparsable_200(client: httpx.AsyncClient, citizen: Citizen) -> None:
    response = await call(client, lookup_body(citizen.personal_id), fault="malformed")
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


async def test_oversized_is_valid_but_huge(client: httpx.AsyncClient, citizen: Citizen) -> None:
    response = await call(client, lookup_body(citizen.personal_id), fault="oversized")
    assert response.status_code == 200
    assert len(response.content) > 5 * 1024 * 1024
    record = answer_of(response)  # still a well-formed, complete answer
    assert citizen.personal_id in etree.tostring(record).decode()


async def test_xxe_reply_reads_a_file_through_an_external_entity(
    citizen: Citizen, tmp_path: Any
) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("CANARY-7d1f")
    app = make_app(xxe_target=canary.as_uri())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        response = await call(c, lookup_body(citizen.personal_id), fault="xxe")
    assert response.status_code == 200
    assert f'<!ENTITY xxe SYSTEM "{canary.as_uri()}">'.encode() in response.content
    assert b"<r:Ten>&xxe;</r:Ten>" in response.content  # where the mapping reads a name
    assert b"CANARY" not in response.content  # the mock only points at the file
    # What the fault is for: a parser that resolves entities reads the file into the answer ...
    unsafe = etree.XMLParser(resolve_entities=True, no_network=True)
    assert "CANARY-7d1f" in etree.tostring(etree.fromstring(response.content, unsafe)).decode()
    # ... and a safe one does not.
    safe = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    assert "CANARY" not in etree.tostring(etree.fromstring(response.content, safe)).decode()


async def test_billion_laughs_reply_is_an_entity_bomb(
    client: httpx.AsyncClient, citizen: Citizen
) -> None:
    response = await call(client, lookup_body(citizen.personal_id), fault="billion-laughs")
    assert response.status_code == 200
    assert len(response.content) < 10_000
    assert b'<!ENTITY lol0 "lol">' in response.content
    assert b'<!ENTITY lol9 "' + b"&lol8;" * 10 + b'">' in response.content
    assert b"<r:Ten>&lol9;</r:Ten>" in response.content
    safe = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        tree = etree.fromstring(response.content, safe)
    except etree.XMLSyntaxError:
        return  # libxml2 >= 2.11 refuses the amplification outright
    assert len(etree.tostring(tree)) < 10_000  # or parses, expanding nothing


async def test_entity_faults_without_a_citizen_still_carry_the_reference(
    client: httpx.AsyncClient,
) -> None:
    response = await call(client, lookup_body("001099999999"), fault="xxe")
    assert b"<faultstring>&xxe;</faultstring>" in response.content
    response = await call(client, b"<not-soap/>", fault="billion_laughs")
    assert b"<faultstring>&lol9;</faultstring>" in response.content


async def test_http_503_has_an_empty_body(client: httpx.AsyncClient, citizen: Citizen) -> None:
    response = await call(client, lookup_body(citizen.personal_id), fault="http-503")
    assert (response.status_code, response.content) == (503, b"")


async def test_bad_fault_header_is_a_400(client: httpx.AsyncClient, citizen: Citizen) -> None:
    response = await call(client, lookup_body(citizen.personal_id), fault="meltdown")
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]


async def test_faults_apply_before_auth(client: httpx.AsyncClient, citizen: Citizen) -> None:
    response = await call(
        client, lookup_body(citizen.personal_id), headers={"X-Mock-Fault": "http-503"}
    )
    assert response.status_code == 503


async def test_runtime_faults_put_get_delete(client: httpx.AsyncClient, citizen: Citizen) -> None:
    body = lookup_body(citizen.personal_id)
    assert (await client.get("/_mock/faults")).json() == FaultConfig().model_dump()
    put = await client.put("/_mock/faults", json={"fault": "http-503"})
    assert put.status_code == 200 and put.json()["http_503"] is True
    assert (await client.get("/_mock/faults")).json()["http_503"] is True
    assert (await call(client, body)).status_code == 503
    # A request's own header still wins over the run-time layer.
    answer_of(await call(client, body, fault="http-503=false"))
    full = await client.put("/_mock/faults", json={"latency_ms": 1, "error_rate": 1.0})
    assert full.json()["http_503"] is False and full.json()["error_rate"] == 1.0
    assert fault_of(await call(client, body))["MaLoi"] == "LOI_HE_THONG"
    deleted = await client.delete("/_mock/faults")
    assert deleted.status_code == 200 and deleted.json() == FaultConfig().model_dump()
    answer_of(await call(client, body))


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"fault": "meltdown"}', b'{"latency_ms": -1}', b"[1]"]
)
async def test_bad_put_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.put("/_mock/faults", content=content)
    assert response.status_code == 400
    assert response.json()["error"]
    assert (await client.get("/_mock/faults")).json() == FaultConfig().model_dump()


async def test_startup_faults_survive_delete(citizen: Citizen) -> None:
    app = make_app(faults=FaultConfig(error_rate=1.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        body = lookup_body(citizen.personal_id)
        assert (await call(c, body)).status_code == 500
        await c.put("/_mock/faults", json={"fault": "none"})
        answer_of(await call(c, body))
        await c.delete("/_mock/faults")
        assert (await call(c, body)).status_code == 500


async def test_error_rate_mixes_answers(citizen: Citizen) -> None:
    app = make_app(faults=FaultConfig(error_rate=0.5), fault_seed=11)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        statuses = [
            (await call(c, lookup_body(citizen.personal_id))).status_code for _ in range(40)
        ]
    assert {200, 500} == set(statuses)
