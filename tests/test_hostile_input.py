"""Hostile input and hardening: JSON limits, XML entity tricks from upstream, errors that
tell nothing, secrets from files and never shown, and CORS off unless asked for."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from adapters.population import PopulationConfig, load_wsdl, soap_actions
from hub.adapter import CallContext, Health, operation
from hub.api.deps import check_json_complexity
from hub.app import create_app
from hub.core.config import ConfigurationError, Settings
from hub.core.registry import AdapterLoadError, discover
from hub.errors import JsonTooComplex
from hub.mapping.tools import SampleError, load_sample, upstream_names
from hub.soap import SoapResponse, declares_dtd, parse_response
from hub.testing.leaks import _answer_strings
from mocks.data import load_citizens
from tests.conftest import running_hub
from tests.test_pipeline import (  # noqa: F401
    PID,
    EchoAdapter,
    EchoIn,
    EchoOut,
    assert_problem,
    call,
    echo,
    upstream,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
R = "http://www.mic.gov.vn/dancu/1.0"


def nested(depth: int) -> Any:
    """A JSON value `depth` containers deep: [[…[]…]]."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


# -- JSON depth and size ------------------------------------------------------------------------


async def test_json_nested_deeper_than_the_limit_is_400_before_validation(echo, upstream):  # noqa: F811
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    key = echo.client()
    assert echo.settings.max_json_depth == 32
    # The body object is level 1, so `note` may hold 31 levels: it passes the limit and is
    # refused by the schema instead (a list is not a string).
    at_limit = await call(echo, key, {"personal_id": PID, "note": nested(31)})
    assert_problem(at_limit, 422, "VALIDATION_ERROR")
    too_deep = await call(echo, key, {"personal_id": PID, "note": nested(32)})
    body = assert_problem(too_deep, 400, "JSON_TOO_COMPLEX")
    assert "32" in body["detail"]
    assert not route.called
    row = echo.audit_rows()[-1]
    assert (row["status"], row["code"]) == (400, "JSON_TOO_COMPLEX")


async def test_json_with_too_many_elements_is_400(echo, upstream):  # noqa: F811
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    key = echo.client()
    assert echo.settings.max_json_items == 10_000
    # Two members in the object, then the list's elements: 2 + 9998 is the limit.
    at_limit = await call(echo, key, {"personal_id": PID, "note": [0] * 9998})
    assert_problem(at_limit, 422, "VALIDATION_ERROR")
    too_many = await call(echo, key, {"personal_id": PID, "note": [0] * 9999})
    assert_problem(too_many, 400, "JSON_TOO_COMPLEX")
    wide = await call(echo, key, {f"k{i}": i for i in range(10_001)})
    assert_problem(wide, 400, "JSON_TOO_COMPLEX")
    assert not route.called


async def test_the_limits_are_settings(settings, upstream):  # noqa: F811
    settings.max_json_depth, settings.max_json_items = 2, 3
    settings.adapters = {"echo": {"base_url": "http://echo.upstream"}}
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(settings, adapters=[EchoAdapter], transports=transports) as hub:
        key = hub.client()
        ok = await call(hub, key, {"personal_id": PID, "note": "x"})
        assert ok.status_code == 200, ok.text
        assert_problem(
            await call(hub, key, {"personal_id": PID, "note": [[]]}), 400, "JSON_TOO_COMPLEX"
        )
        four = {"personal_id": PID, "note": "x", "a": 1, "b": 2}
        assert_problem(await call(hub, key, four), 400, "JSON_TOO_COMPLEX")


async def test_json_deeper_than_any_parser_goes_is_a_clean_400(echo):  # noqa: F811
    key = echo.client()
    body = b"[" * 100_000 + b"]" * 100_000
    response = await echo.http.post(
        "/v1/services/echo/get", content=body, headers=echo.headers(key)
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("INVALID_JSON", "JSON_TOO_COMPLEX")


async def test_an_anonymous_caller_gets_401_not_the_json_verdict(echo):  # noqa: F811
    response = await echo.http.post("/v1/services/echo/get", json=nested(100))
    assert_problem(response, 401, "UNAUTHENTICATED")


async def test_every_json_route_applies_the_limits(hub):
    """The resource routes read bodies through the same reader as the generic one."""
    key = hub.client()
    deep = {"personal_id": "001085012345", "full_name": nested(40)}
    verify = await hub.http.post("/v1/citizens/verify", json=deep, headers=hub.headers(key))
    assert_problem(verify, 400, "JSON_TOO_COMPLEX")
    payment = await hub.http.post(
        "/v1/payments",
        json={"amount": nested(40)},
        headers=hub.headers(key, **{"idempotency-key": uuid.uuid4().hex}),
    )
    assert_problem(payment, 400, "JSON_TOO_COMPLEX")
    judicial = await hub.http.post(
        "/v1/judicial-records/requests", json={"applicant": nested(40)}, headers=hub.headers(key)
    )
    assert_problem(judicial, 400, "JSON_TOO_COMPLEX")


def test_the_walk_counts_members_and_elements_and_scalars_add_no_depth():
    check_json_complexity(12, 1, 1)
    check_json_complexity({"a": [1]}, 2, 2)
    check_json_complexity({}, 1, 0)
    with pytest.raises(JsonTooComplex):
        check_json_complexity({"a": [1]}, 1, 2)
    with pytest.raises(JsonTooComplex):
        check_json_complexity({"a": [1]}, 2, 1)
    with pytest.raises(JsonTooComplex):  # empty containers count as levels too
        check_json_complexity(nested(3), 2, 100)


def test_the_walk_stops_at_the_first_limit_passed():
    class Counted(list):  # type: ignore[type-arg]
        visited = 0

        def __iter__(self):  # type: ignore[no-untyped-def]
            for item in super().__iter__():
                Counted.visited += 1
                yield item

    # 1000 lists of 1000 elements: refused after the second list's length is added, having
    # walked no list's elements but the top one's.
    body = Counted(Counted([0] * 1000) for _ in range(1000))
    with pytest.raises(JsonTooComplex):
        check_json_complexity(body, 32, 1500)
    assert Counted.visited <= 1000 + 1000


# -- XML entity tricks from upstream, end to end --------------------------------------------------


@pytest.fixture
def canary(tmp_path: Path) -> tuple[str, Path]:
    """A file holding a unique string: it must never come back from anywhere."""
    text = f"CANARY-{uuid.uuid4().hex}"
    path = tmp_path / "canary.txt"
    path.write_text(text)
    return text, path


@pytest.fixture
def population_mock(canary: tuple[str, Path]) -> Any:
    """The population mock, its `xxe` fault reading the canary file."""
    from mocks.population.app import create_app as create_mock

    return create_mock(xxe_target=canary[1].as_uri())


@pytest.fixture(scope="module")
def citizen() -> Any:
    return next(c for c in load_citizens() if c.middle_name)


@pytest.mark.parametrize("fault", ["xxe", "billion-laughs"])
@pytest.mark.parametrize("operation", ["lookup", "verify"])
async def test_entity_tricks_from_upstream_are_refused_unexpanded(
    hub, population_mock, citizen, canary, caplog, fault, operation
):
    caplog.set_level(logging.DEBUG)
    text, _ = canary
    key = hub.client()
    headers = hub.headers(key, **{"x-request-id": f"rid-{fault}"})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=population_mock), base_url="http://m"
    ) as mock:
        assert (await mock.put("/_mock/faults", json={"fault": fault})).status_code == 200
        if operation == "lookup":
            response = await hub.http.get(f"/v1/citizens/{citizen.personal_id}", headers=headers)
        else:
            stated = {
                "personal_id": citizen.personal_id,
                "full_name": citizen.full_name,
                "date_of_birth": citizen.date_of_birth.isoformat(),
            }
            response = await hub.http.post("/v1/citizens/verify", json=stated, headers=headers)
        await mock.delete("/_mock/faults")
    body = assert_problem(response, 502, "UPSTREAM_BAD_RESPONSE")
    assert body["detail"] == "The upstream system answered badly"
    for leak in (text, "lollol", "ENTITY", "passwd", citizen.personal_id):
        assert leak not in response.text
    assert text not in caplog.text and "lolloll" not in caplog.text
    rows = hub.audit_rows()
    assert rows[-1]["code"] == "UPSTREAM_BAD_RESPONSE" and rows[-1]["request_id"] == f"rid-{fault}"
    assert text not in str(rows)
    # Refused, not retried: an off-contract answer is the same on every attempt.
    assert rows[-1]["status"] == 502


async def test_the_canary_would_reach_the_answer_through_a_resolving_parser(
    hub, population_mock, citizen, canary, monkeypatch
):
    """The end-to-end test above is meaningful: with entity resolution on and the DTD checks
    gone, the mock's `xxe` reply puts the file into the citizen's name."""
    text, _ = canary
    unsafe = etree.XMLParser(resolve_entities=True, no_network=True, load_dtd=True)

    def resolving(content: bytes) -> SoapResponse:
        return SoapResponse(etree.fromstring(content, unsafe).find(f"{{{SOAP}}}Body")[0])

    monkeypatch.setattr("adapters.population.parse_response", resolving)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=population_mock), base_url="http://m"
    ) as mock:
        await mock.put("/_mock/faults", json={"fault": "xxe"})
        response = await hub.http.get(
            f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(hub.client())
        )
        await mock.delete("/_mock/faults")
    assert response.status_code == 200, response.text
    assert text in response.json()["data"]["full_name"]


# -- every place the hub parses XML --------------------------------------------------------------


def xxe_envelope(target: str, *, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>{prolog}<!DOCTYPE e [<!ENTITY x SYSTEM "{target}">]>'
        f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><r:A xmlns:r="{R}">&x;</r:A>'
        "</soap:Body></soap:Envelope>"
    ).encode()


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    + f']><soap:Envelope xmlns:soap="{SOAP}"><soap:Body><r:A xmlns:r="{R}">&l9;</r:A>'
    "</soap:Body></soap:Envelope>"
).encode()


def test_soap_answers_with_any_dtd_are_refused(canary):
    text, path = canary
    hostile = [
        xxe_envelope(path.as_uri()),
        xxe_envelope(path.as_uri(), prolog="<!-- a comment --><?pi x?>\n"),
        xxe_envelope("http://198.51.100.7/x"),
        BOMB,
        # Past the byte scan (UTF-16): the check after parsing refuses it.
        xxe_envelope(path.as_uri())
        .replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"')
        .decode()
        .encode("utf-16"),
    ]
    for content in hostile:
        with pytest.raises(etree.XMLSyntaxError) as refused:
            parse_response(content)
        assert text not in str(refused.value)


def test_the_dtd_scan_reads_the_prolog_only():
    assert declares_dtd(xxe_envelope("file:///x", prolog="<!-- c --><?p?>"))
    assert not declares_dtd(b"<a>no dtd</a>")
    quoted = (
        f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><r:A xmlns:r="{R}">'
        "<![CDATA[<!DOCTYPE html>]]></r:A></soap:Body></soap:Envelope>"
    ).encode()
    assert not declares_dtd(quoted)
    assert parse_response(quoted).payload.text == "<!DOCTYPE html>"
    assert not declares_dtd(b"<!-- <!DOCTYPE") and not declares_dtd(b"<?pi <!DOCTYPE")


def test_saved_samples_with_entities_are_not_read(canary, tmp_path):
    text, path = canary
    for name, content in {"x.xml": xxe_envelope(path.as_uri()), "b.xml": BOMB}.items():
        sample = tmp_path / name
        sample.write_bytes(content)
        with pytest.raises(SampleError) as refused:
            load_sample(sample)
        assert text not in str(refused.value)
    plain = tmp_path / "plain.xml"
    plain.write_bytes(
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "' + path.as_uri().encode() + b'">]><a>&x;</a>'
    )
    with pytest.raises(SampleError):
        load_sample(plain)


def test_schema_files_never_resolve_entities(canary, tmp_path):
    text, path = canary
    xsd = "http://www.w3.org/2001/XMLSchema"
    schema = tmp_path / "s.xsd"
    schema.write_text(
        f'<!DOCTYPE s [<!ENTITY x SYSTEM "{path.as_uri()}">]>'
        f'<xs:schema xmlns:xs="{xsd}"><xs:element name="A"><xs:annotation>'
        "<xs:documentation>&x;</xs:documentation></xs:annotation></xs:element></xs:schema>"
    )
    elements, attributes = upstream_names(schema)
    assert elements == {"A"} and text not in str(attributes)
    schema.write_text(
        f'<!DOCTYPE s [<!ENTITY x SYSTEM "{path.as_uri()}">]>'
        f'<xs:schema xmlns:xs="{xsd}"><xs:element name="&x;"/></xs:schema>'
    )
    with pytest.raises(etree.XMLSyntaxError) as refused:
        upstream_names(schema)
    assert text not in str(refused.value)


def test_the_conformance_kit_reads_answers_without_entities(canary):
    text, path = canary
    found = _answer_strings(xxe_envelope(path.as_uri()))
    assert not any(text in value for value in found)
    assert not any("lollol" in value for value in _answer_strings(BOMB))


WSDL_NS = 'xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" targetNamespace="urn:x"'


def test_zeep_reads_the_wsdl_with_every_xml_guard_on(canary, tmp_path):
    import zeep.exceptions

    _, path = canary
    with_dtd = tmp_path / "dtd.wsdl"
    with_dtd.write_text(
        f'<!DOCTYPE d [<!ENTITY x SYSTEM "{path.as_uri()}">]><wsdl:definitions {WSDL_NS}>'
        "<wsdl:documentation>&x;</wsdl:documentation></wsdl:definitions>"
    )
    with pytest.raises(zeep.exceptions.DTDForbidden):
        load_wsdl(str(with_dtd))
    remote_import = tmp_path / "import.wsdl"
    remote_import.write_text(
        f'<wsdl:definitions {WSDL_NS} xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<wsdl:types><xs:schema targetNamespace="urn:x"><xs:import namespace="urn:y" '
        'schemaLocation="http://198.51.100.7/evil.xsd"/></xs:schema></wsdl:types>'
        "</wsdl:definitions>"
    )
    with pytest.raises(zeep.exceptions.ExternalReferenceForbidden):
        load_wsdl(str(remote_import))
    with pytest.raises(ValueError, match="only local files"):  # not even the document itself
        load_wsdl("http://198.51.100.7/population.wsdl")
    assert set(soap_actions()) == {"TraCuuThongTinCongDan", "XacThucThongTinCongDan"}


# -- errors tell nothing --------------------------------------------------------------------------

LEAKY = f"upstream said: Nguyễn Văn A ({PID}) not in /srv/app/db.py"


class LeakyAdapter(EchoAdapter):
    name = "leaky"

    @operation(subject="personal_id")
    async def get(self, request: EchoIn, ctx: CallContext) -> EchoOut:
        raise RuntimeError(LEAKY)

    async def health(self) -> Health:
        return Health(ok=True)


async def test_an_adapter_bug_is_a_plain_500(settings, caplog):
    caplog.set_level("DEBUG")
    settings.adapters = {"leaky": {"base_url": "http://leaky.upstream"}}
    async with running_hub(settings, adapters=[LeakyAdapter]) as hub:
        response = await hub.http.post(
            "/v1/services/leaky/get", json={"personal_id": PID}, headers=hub.headers(hub.client())
        )
        body = assert_problem(response, 500, "ADAPTER_ERROR")
        assert body["detail"] == "The hub's adapter of this service failed"
        for leak in (PID, "Nguyễn", "upstream said", "db.py", "RuntimeError", "Traceback"):
            assert leak not in response.text
        row = hub.audit_rows()[-1]
        assert (row["status"], row["code"]) == (500, "ADAPTER_ERROR")
        assert "upstream said" not in str(row)
    # the log has the exception's type and stack, for the developer, but not its message
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "RuntimeError" in logged and "test_hostile_input.py" in logged
    for leak in (PID, "Nguyễn", "upstream said"):
        assert leak not in logged


async def test_upstream_fault_text_with_personal_data_is_not_passed_on(hub, caplog):
    """The mock's "not found" fault quotes the ID in its faultstring, as upstream does."""
    caplog.set_level(logging.DEBUG)
    unknown = "001085999999"
    response = await hub.http.get(f"/v1/citizens/{unknown}", headers=hub.headers(hub.client()))
    body = assert_problem(response, 404, "NOT_FOUND")
    assert body["detail"] == "Not found"
    assert unknown not in response.text and "Không tìm thấy" not in response.text
    assert "Không tìm thấy" not in caplog.text and unknown not in caplog.text


async def test_upstream_system_fault_text_is_not_passed_on(hub, population_mock):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=population_mock), base_url="http://m"
    ) as mock:
        await mock.put("/_mock/faults", json={"fault": "soap-fault"})
        response = await hub.http.get(
            "/v1/citizens/001085012345", headers=hub.headers(hub.client())
        )
        await mock.delete("/_mock/faults")
    body = assert_problem(response, 502, "UPSTREAM_ERROR")
    assert body["detail"] == "The upstream system failed"
    assert "LOI_HE_THONG" not in response.text and "Máy chủ" not in response.text


# -- secrets --------------------------------------------------------------------------------------

PRODUCTION_KEY = "k" * 40


@pytest.fixture
def secrets(tmp_path, monkeypatch) -> Path:
    """An empty secrets directory, named by HUB_SECRETS_DIR."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    monkeypatch.setenv("HUB_SECRETS_DIR", str(directory))
    for name in list(os.environ):  # secrets from the environment would win over files
        if name.startswith("HUB_") and name != "HUB_SECRETS_DIR":
            monkeypatch.delenv(name)
    return directory


def secret_settings() -> dict[str, list[str]]:
    """Each installed adapter's secret variables (its SecretStr settings)."""
    found = {}
    for name, cls in discover().items():
        prefix = cls.Config.model_config.get("env_prefix", "")
        found[name] = [
            f"{prefix}{field}".upper()
            for field, info in cls.Config.model_fields.items()
            if "SecretStr" in str(info.annotation)
        ]
    return found


def test_the_server_secret_comes_from_a_file_and_the_environment_wins(secrets, monkeypatch):
    (secrets / "HUB_SECRET_KEY").write_text("from-the-file-0123456789-0123456789\n")
    assert Settings().secret_key.get_secret_value() == "from-the-file-0123456789-0123456789"
    monkeypatch.setenv("HUB_SECRET_KEY", "from-the-environment")
    assert Settings().secret_key.get_secret_value() == "from-the-environment"


def test_adapter_credentials_come_from_the_same_directory(secrets):
    (secrets / "HUB_POPULATION_SECRET").write_text("s3cret-population\n")
    (secrets / "HUB_POPULATION_USER").write_text("hub-prod")
    config = PopulationConfig()
    assert config.secret.get_secret_value() == "s3cret-population" and config.user == "hub-prod"
    assert config.default_secrets() == []
    assert PopulationConfig(secret="population-secret").default_secrets() == [
        "HUB_POPULATION_SECRET"
    ]


def test_a_secrets_dir_that_is_not_a_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="HUB_SECRETS_DIR"):
        Settings().check()


def test_production_refuses_each_default_upstream_credential(secrets, tmp_path):
    every = secret_settings()
    assert set(every) == {
        "population",
        "civil-status",
        "judicial-records",
        "business-registration",
        "payment",
    }
    assert all(every.values())
    for name in every.values():
        for variable in name:
            (secrets / variable).write_text(f"prod-{uuid.uuid4().hex}")
    settings = Settings(
        environment="production",
        secret_key=PRODUCTION_KEY,
        database_url=f"sqlite:///{tmp_path}/p.db",
    )
    create_app(settings)  # every secret set: it starts
    defaults = {
        variable: str(info.default.get_secret_value())
        for adapter, cls in discover().items()
        for field, info in cls.Config.model_fields.items()
        if (variable := f"{cls.Config.model_config['env_prefix']}{field}".upper()) in every[adapter]
    }
    for variable, default in defaults.items():
        kept = secrets / variable
        saved = kept.read_text()
        kept.unlink()  # back to the mock's well-known default
        with pytest.raises(AdapterLoadError) as refused:
            create_app(settings)
        assert variable in str(refused.value) and default not in str(refused.value)
        kept.write_text(saved)
    development = Settings(secret_key=PRODUCTION_KEY, database_url=f"sqlite:///{tmp_path}/d.db")
    (secrets / "HUB_PAYMENT_SECRET").unlink()
    create_app(development)  # the mocks' defaults are fine outside production


def test_hub_serve_refuses_default_credentials_in_production(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
        "HUB_ENVIRONMENT": "production",
        "HUB_SECRET_KEY": PRODUCTION_KEY,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        "HUB_ENABLED_ADAPTERS": '["population"]',
        "HUB_SECRETS_DIR": str(tmp_path),
    }
    refused = subprocess.run(
        [sys.executable, "-m", "hub.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "HUB_POPULATION_SECRET" in refused.stderr
    assert "population-secret" not in refused.stderr and "Traceback" not in refused.stderr


async def test_secrets_never_reach_logs_or_reprs(secrets, tmp_path, caplog):
    from mocks.population.app import create_app as create_mock

    caplog.set_level(logging.DEBUG)
    server_secret = f"server-{uuid.uuid4().hex}"
    upstream_secret = f"upstream-{uuid.uuid4().hex}"
    db_password = f"pw-{uuid.uuid4().hex}"
    (secrets / "HUB_SECRET_KEY").write_text(server_secret)
    (secrets / "HUB_POPULATION_SECRET").write_text(upstream_secret)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/hub.db",
        adapters={"population": {"base_url": "http://population.mock"}},
        enabled_adapters=["population"],
        background_tasks=False,
    )
    assert settings.secret_key.get_secret_value() == server_secret
    mock = create_mock(secret=upstream_secret)
    citizen = load_citizens()[0]
    transports = {"population": httpx.ASGITransport(app=mock)}
    async with running_hub(settings, transports=transports) as hub:
        response = await hub.http.get(
            f"/v1/citizens/{citizen.personal_id}", headers=hub.headers(hub.client())
        )
        assert response.status_code == 200, response.text  # the upstream secret was used
        config = hub.hub.registry.get("population").instance.config
        shown = [repr(settings), str(settings), repr(config), str(config), caplog.text]
        shown.append(
            json.dumps(
                (await hub.http.get("/v1/services", headers=hub.headers(hub.client()))).json()
            )
        )
    for text in shown:
        assert server_secret not in text and upstream_secret not in text
    with_password = Settings(database_url=f"postgresql://hub:{db_password}@db/hub")
    assert db_password not in repr(with_password) and db_password not in str(with_password)


# -- CORS -----------------------------------------------------------------------------------------

PREFLIGHT = {
    "origin": "https://portal.example",
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type, x-purpose",
}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_cors_is_off_by_default(echo):  # noqa: F811
    assert echo.settings.cors_origins == []
    preflight = await echo.http.options("/v1/services/echo/get", headers=PREFLIGHT)
    assert cors_headers(preflight) == {}
    assert preflight.status_code != 200  # no route answers OPTIONS
    get = await echo.http.get("/health", headers={"origin": "https://portal.example"})
    assert get.status_code == 200 and cors_headers(get) == {}


async def test_cors_origins_are_opt_in(settings):
    settings.cors_origins = ["https://portal.example"]
    settings.adapters = {"echo": {"base_url": "http://echo.upstream"}}
    async with running_hub(settings, adapters=[EchoAdapter]) as hub:
        preflight = await hub.http.options("/v1/services/echo/get", headers=PREFLIGHT)
        assert preflight.status_code == 200
        allowed = cors_headers(preflight)
        assert allowed["access-control-allow-origin"] == "https://portal.example"
        assert {"authorization", "x-purpose"} <= set(
            allowed["access-control-allow-headers"].lower().replace(" ", "").split(",")
        )
        assert "access-control-allow-credentials" not in allowed
        assert preflight.headers["x-content-type-options"] == "nosniff"  # still hardened
        get = await hub.http.get("/health", headers={"origin": "https://portal.example"})
        assert get.headers["access-control-allow-origin"] == "https://portal.example"
        # a page's script can read why it was refused, and the request id to quote
        anonymous = await hub.http.post(
            "/v1/services/echo/get", headers={"origin": "https://portal.example"}
        )
        assert anonymous.status_code == 401
        exposed = anonymous.headers["access-control-expose-headers"].lower()
        assert {"www-authenticate", "x-request-id", "retry-after"} <= set(
            exposed.replace(" ", "").split(",")
        )
        other = {**PREFLIGHT, "origin": "https://evil.example"}
        refused = await hub.http.options("/v1/services/echo/get", headers=other)
        assert "access-control-allow-origin" not in refused.headers
        get = await hub.http.get("/health", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in get.headers


def test_cors_origins_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("HUB_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
