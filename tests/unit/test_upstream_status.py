"""hub.upstream's one classification of upstream answers: `raise_for_status` over the status
table, `response_json` over hostile JSON, and the translation of zeep's errors beside
httpx's and lxml's (hub.resilience.retry)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import zeep.exceptions
from lxml import etree
from pydantic import TypeAdapter, ValidationError

from hub.errors import (
    HubError,
    NotFound,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamUnreadable,
)
from hub.mapping import MappingValueError
from hub.resilience.retry import is_upstream_exception, translate_upstream_errors
from hub.upstream import raise_for_status, response_json, status_error

PAGE = b"<html>Internal Server Error: 001085012345</html>"
ERROR_REPLY = b'{"status": "0", "errorCode": "LOI_HE_THONG"}'


@pytest.mark.parametrize(
    ("status", "content", "options", "expected"),
    [
        (200, b"{}", {}, None),
        (200, b"", {}, None),
        (201, b"{}", {}, UpstreamBadResponse),
        (201, b"{}", {"ok": (200, 201)}, None),
        (204, b"", {}, UpstreamBadResponse),
        (302, b"", {}, UpstreamBadResponse),
        (404, b"", {}, UpstreamRejected),
        (404, b"", {"not_found": (404,)}, NotFound),
        (400, b"", {}, UpstreamRejected),
        (401, PAGE, {}, UpstreamRejected),
        (403, b"", {}, UpstreamRejected),
        (429, b"", {}, UpstreamRejected),
        (500, PAGE, {}, UpstreamError),
        (500, b"", {}, UpstreamUnavailable),
        (502, PAGE, {}, UpstreamError),
        (503, b"", {}, UpstreamUnavailable),
        (503, PAGE, {}, UpstreamUnavailable),
        (504, b"", {}, UpstreamUnavailable),
        # upstream's own error replies, left to the adapter to read
        (500, ERROR_REPLY, {"replies": range(400, 600)}, None),
        (400, ERROR_REPLY, {"replies": range(400, 500)}, None),
        (500, ERROR_REPLY, {"replies": range(400, 500)}, UpstreamError),
        (400, b"", {"replies": range(400, 500)}, UpstreamRejected),  # no body: no reply
        (500, b"", {"replies": range(400, 600)}, UpstreamUnavailable),
        (503, ERROR_REPLY, {"replies": range(400, 600)}, UpstreamUnavailable),
        (302, ERROR_REPLY, {"replies": range(400, 600)}, UpstreamBadResponse),
    ],
)
def test_the_status_table(
    status: int, content: bytes, options: dict[str, Any], expected: type[HubError] | None
) -> None:
    response = httpx.Response(status, content=content)
    if expected is None:
        raise_for_status(response, **options)
        return
    with pytest.raises(HubError) as raised:
        raise_for_status(response, **options)
    assert type(raised.value) is expected
    assert raised.value.log_context["http_status"] == status
    assert raised.value.detail == expected.title  # nothing of upstream's body
    assert raised.value.retriable is (expected in (UpstreamError, UpstreamUnavailable))


def test_the_error_carries_the_adapters_codes_in_its_log_context() -> None:
    with pytest.raises(UpstreamError) as raised:
        raise_for_status(httpx.Response(500, content=PAGE), log_context={"upstream_code": "E1"})
    assert raised.value.log_context == {"http_status": 500, "upstream_code": "E1"}
    assert "001085012345" not in str(raised.value)


def test_status_error_is_the_bare_table() -> None:
    assert status_error(200, has_body=True) is None
    assert status_error(500, has_body=False) is UpstreamUnavailable
    assert status_error(500, has_body=True) is UpstreamError
    assert status_error(418, has_body=True) is UpstreamRejected
    assert status_error(304, has_body=False) is UpstreamBadResponse


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_response_json_reads_an_object_by_default() -> None:
    assert response_json(httpx.Response(200, json={"a": [1, {"b": 2}]})) == {"a": [1, {"b": 2}]}
    assert response_json(httpx.Response(200, json=[1, 2]), expect=list) == [1, 2]
    assert response_json(httpx.Response(200, json="text"), expect=None) == "text"
    # brackets inside strings are not nesting: the short cut's miss costs a walk, no refusal
    shallow = {"note": "[" * 200 + "{" * 200, "items": list(range(10))}
    assert response_json(httpx.Response(200, json=shallow), max_depth=3) == shallow


@pytest.mark.parametrize(
    ("content", "options"),
    [
        (b"", {}),
        (b"   ", {}),
        (b'{"a": 1', {}),
        (b"\xff\xfe{}", {}),  # not UTF-8
        (b'{"a": NaN}', {}),
        (b"<html>Error</html>", {}),
        (b"[1, 2]", {}),  # an array where an object is expected
        (b'"text"', {}),
        (b"null", {}),
        (b"[]", {"expect": dict}),
        (b"{}", {"expect": list}),
        (nested(100_000), {"expect": None}),  # past orjson's own limit: no RecursionError
        (nested(1_000), {"expect": None}),  # within orjson's, past the hub's default
        (nested(5), {"expect": None, "max_depth": 4}),
        (b"[" + b"0," * 10 + b"0]", {"expect": None, "max_items": 10}),
    ],
)
def test_response_json_refuses_hostile_and_off_contract_json(
    content: bytes, options: dict[str, Any]
) -> None:
    with pytest.raises(UpstreamBadResponse) as raised:
        response_json(httpx.Response(200, content=content), **options)
    assert raised.value.detail == UpstreamBadResponse.title


def test_response_json_takes_what_its_bounds_allow() -> None:
    assert response_json(httpx.Response(200, content=nested(4)), expect=None, max_depth=4)
    values = response_json(
        httpx.Response(200, content=b"[" + b"0," * 9 + b"0]"), expect=None, max_items=10
    )
    assert values == [0] * 10


def _translated(exc: Exception) -> BaseException:
    try:
        with translate_upstream_errors():
            raise exc
    except BaseException as caught:  # what came out is the subject
        return caught
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (zeep.exceptions.Fault("bad input", code="soap:Client"), UpstreamRejected),
        (zeep.exceptions.Fault("boom", code="soap:Server"), UpstreamError),
        (zeep.exceptions.TransportError(status_code=503, content=b""), UpstreamUnavailable),
        (zeep.exceptions.TransportError(status_code=500, content=PAGE), UpstreamError),
        (zeep.exceptions.TransportError(status_code=401, content=b""), UpstreamRejected),
        # Not XML at all: unreadable, counted by the circuit (issue 18, finding 3)
        (zeep.exceptions.XMLSyntaxError("not XML"), UpstreamUnreadable),
        (zeep.exceptions.XMLParseError("cut"), UpstreamUnreadable),
    ],
)
def test_zeeps_upstream_errors_are_upstream_errors(
    exc: Exception, expected: type[HubError]
) -> None:
    assert is_upstream_exception(exc)
    assert type(_translated(exc)) is expected


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("HoTen"),
        TypeError("x"),
        ValueError("a bare ValueError is the adapter's"),
        RecursionError(),
        zeep.exceptions.ValidationError("our request does not fit the WSDL"),
    ],
)
def test_other_exceptions_are_not_upstreams(exc: Exception) -> None:
    assert not is_upstream_exception(exc)
    assert _translated(exc) is exc  # let through: the gateway makes it an AdapterError


def _validation_error() -> ValidationError:
    try:
        TypeAdapter(int).validate_python("x")
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError("reset"),
        TimeoutError(),
        json.JSONDecodeError("Expecting value", "doc", 0),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        etree.XMLSyntaxError("not XML", None, 1, 1),  # type: ignore[call-arg]
        MappingValueError("a value the mapping cannot convert"),
        _validation_error(),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_transport_and_parse_errors_are_upstreams(exc: Exception) -> None:
    assert is_upstream_exception(exc)
    assert isinstance(_translated(exc), UpstreamError)
