"""Structured logs: JSON lines with the request id, no personal data in clear, exceptions as
their type and frames only, the format chosen by settings, and a real `hub serve` whose
whole output (uvicorn's lines too) is JSON."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.core.config import Settings
from hub.core.logs import (
    REQUEST_ID,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    logging_config,
    redact,
)
from tests.conftest import database_url, reset_database
from tests.test_pipeline import PID, call, echo, upstream  # noqa: F401 - fixtures
from tests.test_servers import HUB, create_client, free_port, start, stop, wait_until_up

NAME = "Nguyễn Văn Bình"


class Lines(logging.Handler):
    """Keeps every record as the formatter writes it."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def logged() -> Iterator[tuple[Lines, Lines]]:
    """Everything logged during the test, as JSON lines and as text lines."""
    handlers = Lines(JsonFormatter()), Lines(TextFormatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield handlers
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


def record(message: str, *args: object, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord("hub.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(fields)
    return made


def parse(line: str) -> dict:
    parsed = json.loads(line)
    assert isinstance(parsed, dict) and "\n" not in line
    return parsed


def test_a_json_line_has_the_fields_and_the_call_sites_extras():
    line = parse(
        JsonFormatter().format(record("job %s polled", "job_1", job_id="job_1", attempts=3))
    )
    assert line.pop("ts").endswith("Z")
    assert line == {
        "level": "INFO",
        "logger": "hub.test",
        "message": "job job_1 polled",
        "job_id": "job_1",
        "attempts": 3,
    }
    token = REQUEST_ID.set("rid-1")
    try:
        inside = parse(JsonFormatter().format(record("inside")))
    finally:
        REQUEST_ID.reset(token)
    assert inside["request_id"] == "rid-1"
    assert "request_id" not in parse(JsonFormatter().format(record("outside")))


def test_the_timestamp_is_utc_iso_8601_with_milliseconds():
    made = record("x")
    made.created, made.msecs = 1767225600.25, 250.0  # 2026-01-01T00:00:00.250Z
    assert parse(JsonFormatter().format(made))["ts"] == "2026-01-01T00:00:00.250Z"


def test_a_personal_id_is_redacted_but_hex_identifiers_are_kept():
    request_id = "a" + "1234567890123" + "b" * 18  # a uuid-like id with a long digit run
    pseudonym = "psn_0123456789012345"
    text = f"id={PID} /citizens/{PID}/profile rid={request_id} subject={pseudonym} 12345678901"
    assert redact(text) == (
        f"id=[redacted] /citizens/[redacted]/profile rid={request_id} subject={pseudonym} "
        "12345678901"
    )
    assert redact(f"CCCD{PID}") == "CCCD[redacted]" and redact(f"x{PID}9") == f"x{PID}9"
    line = parse(JsonFormatter().format(record("asked %s", PID, note=f"about {PID}")))
    assert PID not in json.dumps(line) and line["note"] == "about [redacted]"
    assert PID not in TextFormatter().format(record("asked %s", PID))


def _raise_with_personal_data() -> None:
    detail = f"{NAME} {PID}"
    try:
        int(detail)  # its message quotes the text
    except ValueError as cause:
        raise LookupError(detail) from cause


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_an_exception_is_written_as_its_type_and_frames_never_its_message(formatter):
    try:
        _raise_with_personal_data()
    except LookupError:
        made = logging.LogRecord(
            "hub.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    made.exc_text = f"a message another handler cached: {NAME}"
    written = formatter.format(made)
    assert NAME not in written and PID not in written and "invalid literal" not in written
    assert "LookupError" in written and "ValueError" in written  # the cause's type too
    assert "_raise_with_personal_data" in written  # the frames
    if isinstance(formatter, JsonFormatter):
        line = parse(written)
        assert line["exc_type"] == "LookupError"
        assert "in _raise_with_personal_data" in line["stack"]
        assert line["message"] == "failed"


def test_the_format_follows_the_settings(monkeypatch):
    assert Settings().log_format_used == "text"
    assert Settings(environment="production").log_format_used == "json"
    assert Settings(environment="production", log_format="text").log_format_used == "text"
    monkeypatch.setenv("HUB_LOG_FORMAT", "json")
    assert Settings().log_format_used == "json"
    monkeypatch.setenv("HUB_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings()
    config = logging_config("warning", "json")
    assert config["handlers"]["hub"]["log_format"] == "json"
    assert config["root"] == {"level": logging.WARNING, "handlers": ["hub"]}
    assert config["loggers"]["uvicorn.error"]["propagate"] is True
    assert config["disable_existing_loggers"] is False


async def test_a_line_logged_while_serving_a_request_carries_its_id(echo, upstream, logged):  # noqa: F811
    json_lines, _ = logged

    def answer(request: httpx.Request) -> httpx.Response:
        logging.getLogger("tests.upstream").info("upstream asked")
        return httpx.Response(200, json={"value": 7})

    upstream.get(f"/items/{PID}").mock(side_effect=answer)
    response = await call(echo, echo.client(), **{"x-request-id": "log-req-1"})
    assert response.status_code == 200
    logging.getLogger("tests.upstream").info("after the request")
    lines = [parse(line) for line in json_lines.lines]
    asked = next(line for line in lines if line["message"] == "upstream asked")
    assert asked["request_id"] == "log-req-1" and asked["logger"] == "tests.upstream"
    after = next(line for line in lines if line["message"] == "after the request")
    assert "request_id" not in after


async def test_failing_calls_log_fields_and_no_personal_id(echo, upstream, logged):  # noqa: F811
    key = echo.client()
    upstream.get(f"/items/{PID}").respond(404)
    assert (await call(echo, key, **{"x-request-id": "fail-404"})).status_code == 404
    upstream.get(f"/items/{PID}").respond(500)
    assert (await call(echo, key, **{"x-request-id": "fail-500"})).status_code == 502

    def adapter_bug(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"{NAME} {PID} not understood")

    upstream.get(f"/items/{PID}").mock(side_effect=adapter_bug)
    assert (await call(echo, key, **{"x-request-id": "fail-bug"})).status_code == 500
    for handler in logged:
        assert handler.lines
        for line in handler.lines:
            assert PID not in line and NAME not in line, line
    for made in logged[0].records:  # the policy itself, not only the net, for the hub's lines
        if made.name.startswith("hub"):
            assert PID not in made.getMessage()
    lines = [parse(line) for line in logged[0].lines]
    failed = {line["request_id"]: line for line in lines if line["message"].startswith("call")}
    assert set(failed) == {"fail-404", "fail-500", "fail-bug"}
    assert failed["fail-404"]["level"] == "INFO" and failed["fail-500"]["level"] == "WARNING"
    subject = echo.hub.gateway.pseudonym(PID)
    for request_id, code in [("fail-404", "NOT_FOUND"), ("fail-500", "UPSTREAM_ERROR")]:
        assert {k: failed[request_id][k] for k in ("service", "operation", "code", "subject")} == {
            "service": "echo",
            "operation": "get",
            "code": code,
            "subject": subject,
        }
        assert failed[request_id]["client"].startswith("cl_")
    # an adapter's bug is one line, the failure's own: its type and stack, not its message
    bug = failed["fail-bug"]
    assert bug["level"] == "ERROR" and bug["code"] == "ADAPTER_ERROR"
    assert bug["exc_type"] == "RuntimeError" and "test_logs.py" in bug["message"]
    assert [line["request_id"] for line in lines if line["level"] == "ERROR"] == ["fail-bug"]
    assert not any(line["message"].startswith("unexpected error") for line in lines)


def test_hub_serve_writes_only_json_lines(tmp_path: Path):
    """A real `hub serve`, its logs as JSON: uvicorn's start and stop lines, the hub's, and
    a failed call's with its request id and fields and the personal ID nowhere."""
    url = database_url(tmp_path)
    reset_database(url)
    port = free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "server-test-secret",
        "HUB_LOG_FORMAT": "json",
        "HUB_ENABLED_ADAPTERS": '["population"]',
        "HUB_POPULATION_BASE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "HUB_UPSTREAM_TIMEOUT_S": "1",
        "HUB_RETRY_DEADLINE_S": "2",
    }
    env.pop("HUB_ENVIRONMENT", None)
    hub = start([*HUB, "serve", "--port", str(port), "--log-level", "info"], env)
    try:
        wait_until_up(hub, f"http://127.0.0.1:{port}/health")
        key = create_client(env, "x", "--allow", "*", "--purpose", "p")["api_key"]
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/citizens/{PID}",
            headers={"authorization": f"Bearer {key}", "x-purpose": "p", "x-request-id": "j-1"},
        )
        assert response.status_code == 503
        os.kill(hub.pid, signal.SIGTERM)
        output, _ = hub.communicate(timeout=30)
    finally:
        stop(hub)
    assert hub.returncode == 0, output
    lines = [parse(line) for line in output.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    messages = [line["message"] for line in lines]
    for expected in (
        "Started server process",
        "Application startup complete.",
        "Uvicorn running on",
        "hub started with adapters: population",
        "Application shutdown complete.",
    ):
        assert any(m.startswith(expected) for m in messages), (expected, messages)
    assert PID not in output
    failed = next(line for line in lines if line["message"].startswith("call failed"))
    assert failed["request_id"] == "j-1" and failed["code"] == "UPSTREAM_UNAVAILABLE"
    assert failed["subject"].startswith("psn_") and failed["level"] == "WARNING"
