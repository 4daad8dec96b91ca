"""An adapter's own bugs are 500 ADAPTER_ERROR, not upstream's 502: an exception that is not
a hub error nor upstream's transport or parse error, or an answer off the output model.
Never retried, never held against upstream by the circuit breaker, logged once with the
exception's type and stack and never its message, counted in `hub_adapter_errors`."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx
from pydantic import BaseModel

from hub.adapter import Adapter, CallContext, Health, operation
from hub.canonical import PersonalIdStr
from hub.core.logs import JsonFormatter, TextFormatter
from hub.upstream import response_json
from tests.conftest import running_hub
from tests.test_pipeline import assert_problem

PID = "001085012345"
NAME = "Nguyễn Thị Bích"
#: What the bug's message quotes: it must reach neither the caller nor the log.
SECRET = f"{NAME} {PID} has no 'HoTen'"


class Query(BaseModel):
    personal_id: PersonalIdStr


class Out(BaseModel):
    personal_id: str
    value: int


class Wider(Out):
    """A subclass of the output model with a field the catalogue's schema does not have."""

    secret: str


class BuggyAdapter(Adapter):
    name = "buggy"
    version = "1.2.3"
    title = "Buggy"

    async def _value(self, request: Query) -> int:
        response = await self.http.get(f"/items/{request.personal_id}")
        if response.status_code >= 500:
            from hub.errors import UpstreamUnavailable

            raise UpstreamUnavailable()
        return response_json(response)["value"]  # type: ignore[no-any-return]

    @operation(subject="personal_id")
    async def lookup(self, request: Query, ctx: CallContext) -> Out:
        """Asks upstream, then trips over its own dictionary."""
        await self._value(request)
        raise KeyError(SECRET)

    @operation(name="type-error", idempotent=False)
    async def type_error(self, request: Query, ctx: CallContext) -> Out:
        """A TypeError, and a bare ValueError is the same kind of bug."""
        await self._value(request)
        raise TypeError(SECRET)

    @operation(name="off-model")
    async def off_model(self, request: Query, ctx: CallContext) -> Out:
        """Answers an object pydantic never validated."""
        await self._value(request)
        return Out.model_construct(wrong=1)  # type: ignore[call-arg]

    @operation(name="wrong-value")
    async def wrong_value(self, request: Query, ctx: CallContext) -> Out:
        """Answers an Out whose value is not an int."""
        await self._value(request)
        return Out.model_construct(personal_id=request.personal_id, value=SECRET)

    @operation(name="wider")
    async def wider(self, request: Query, ctx: CallContext) -> Out:
        """Answers a subclass of its output model carrying one more field."""
        value = await self._value(request)
        return Wider(personal_id=request.personal_id, value=value, secret=SECRET)

    @operation(name="not-a-model")
    async def not_a_model(self, request: Query, ctx: CallContext) -> Out:
        """Answers a dict that happens to fit."""
        value = await self._value(request)
        return {"personal_id": request.personal_id, "value": value}  # type: ignore[return-value]

    @operation(name="fine")
    async def fine(self, request: Query, ctx: CallContext) -> Out:
        """The well-behaved operation."""
        return Out(personal_id=request.personal_id, value=await self._value(request))

    @operation(name="upstream-values")
    async def upstream_values(self, request: Query, ctx: CallContext) -> Out:
        """Validates upstream's values into the model: a misfit is upstream's answer."""
        response = await self.http.get(f"/items/{request.personal_id}")
        return Out.model_validate({"personal_id": request.personal_id, **response_json(response)})

    @operation(name="stdlib-json")
    async def stdlib_json(self, request: Query, ctx: CallContext) -> Out:
        """Parses with httpx's `response.json()`: its decode error is still upstream's."""
        response = await self.http.get(f"/items/{request.personal_id}")
        return Out(personal_id=request.personal_id, value=response.json()["value"])

    async def health(self) -> Health:
        return Health(ok=True)


@pytest.fixture
def upstream() -> respx.MockRouter:
    return respx.MockRouter(base_url="http://buggy.upstream", assert_all_called=False)


@pytest.fixture
async def buggy(settings, upstream):
    settings.adapters = {"buggy": {"base_url": "http://buggy.upstream"}}
    transports = {"buggy": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(settings, adapters=[BuggyAdapter], transports=transports) as running:
        yield running


async def call(hub, operation: str, key: str) -> httpx.Response:
    return await hub.http.post(
        f"/v1/services/buggy/{operation}", json={"personal_id": PID}, headers=hub.headers(key)
    )


def adapter_errors(hub) -> float:
    return hub.hub.metrics.adapter_errors.labels("buggy")._value.get()


def assert_clean(response: httpx.Response, records: list[logging.LogRecord]) -> None:
    for leak in (PID, NAME, "HoTen", "Traceback"):
        assert leak not in response.text
    for record in records:
        for formatter in (JsonFormatter(), TextFormatter()):
            line = formatter.format(record)
            assert PID not in line and NAME not in line and "HoTen" not in line, line


async def test_a_key_error_is_500_adapter_error_logged_once_without_its_message(
    buggy, upstream, caplog
):
    caplog.set_level(logging.DEBUG)
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    response = await call(buggy, "lookup", buggy.client())
    body = assert_problem(response, 500, "ADAPTER_ERROR")
    assert body["title"] == body["detail"] == "The hub's adapter of this service failed"
    assert route.call_count == 1  # not retried, though `lookup` is idempotent
    assert buggy.settings.retry_attempts > 1
    assert_clean(response, caplog.records)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # one line for the one bug
    line = errors[0].getMessage()
    assert "buggy:lookup" in line and "code=ADAPTER_ERROR" in line and "KeyError" in line
    assert "test_adapter_errors.py" in line  # the stack, for the developer
    assert errors[0].exc_type == "KeyError"  # type: ignore[attr-defined]
    row = buggy.audit_rows()[-1]
    assert (row["service"], row["operation"], row["status"], row["code"]) == (
        "buggy",
        "lookup",
        500,
        "ADAPTER_ERROR",
    )
    assert adapter_errors(buggy) == 1
    assert 'hub_adapter_errors_total{service="buggy"} 1.0' in buggy.hub.metrics.render().decode()


async def test_adapter_errors_never_open_the_circuit(buggy, upstream):
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    key = buggy.client(rate_per_minute=1000)
    settings = buggy.settings
    many = 2 * max(settings.circuit_min_calls, settings.circuit_consecutive_failures)
    for _ in range(many):
        assert_problem(await call(buggy, "lookup", key), 500, "ADAPTER_ERROR")
    circuit = buggy.hub.registry.get("buggy").circuit
    assert circuit.state == "closed"
    assert route.call_count == many  # one attempt each
    assert adapter_errors(buggy) == many
    assert (await call(buggy, "fine", key)).status_code == 200
    # the same number of upstream failures does open it: the test can tell
    route.respond(503)
    for _ in range(many):
        await call(buggy, "fine", key)
    assert circuit.state == "open"


@pytest.mark.parametrize("operation", ["type-error", "off-model", "wrong-value", "not-a-model"])
async def test_other_bugs_and_off_model_answers_are_adapter_errors(
    buggy, upstream, caplog, operation
):
    caplog.set_level(logging.DEBUG)
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    response = await call(buggy, operation, buggy.client())
    assert_problem(response, 500, "ADAPTER_ERROR")
    assert route.call_count == 1
    assert_clean(response, caplog.records)
    assert adapter_errors(buggy) == 1


async def test_a_subclass_of_the_output_model_sends_only_the_models_fields(buggy, upstream):
    """The answer is validated as the declared output model, not as the class the adapter
    built it with: a field beyond the published schema never goes out."""
    upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    response = await call(buggy, "wider", buggy.client())
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"personal_id": PID, "value": 7}
    assert SECRET not in response.text and "secret" not in response.text


async def test_upstream_failures_stay_upstream_errors(buggy, upstream):
    key = buggy.client()
    route = upstream.get(f"/items/{PID}")
    route.respond(200, json={"value": "not a number"})  # pydantic refuses upstream's value
    assert_problem(await call(buggy, "upstream-values", key), 502, "UPSTREAM_BAD_RESPONSE")
    route.respond(200, text='{"value": 7')  # not JSON, read by httpx's own response.json()
    assert_problem(await call(buggy, "stdlib-json", key), 502, "UPSTREAM_BAD_RESPONSE")
    route.respond(200, content=b"[" * 100_000 + b"]" * 100_000)  # hostile nesting
    assert_problem(await call(buggy, "fine", key), 502, "UPSTREAM_BAD_RESPONSE")
    route.mock(side_effect=httpx.ConnectError("refused"))
    assert_problem(await call(buggy, "fine", key), 503, "UPSTREAM_UNAVAILABLE")
    assert adapter_errors(buggy) == 0


async def test_a_well_formed_answer_goes_out_as_validated(buggy, upstream):
    upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    response = await call(buggy, "fine", buggy.client())
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"personal_id": PID, "value": 7}
