"""The upstream schemas the REST adapters declare are a contract with their mocks.

`hub mappings check` holds each mapping to its adapter's `upstream_schema`; here every
answer the mock gives while the conformance samples run must validate against that same
schema. A mock that drifts from what the schema (and so the mapping) expects fails here,
as the population mock's WSDL is held to the adapter's copy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from hub.core.registry import resource_path
from hub.testing import AdapterConformance
from tests import test_conformance as batteries  # a module: its Test* classes run once, there


def recording(app: Any, answers: list[tuple[str, bytes]]) -> Any:
    """The ASGI app, recording each HTTP answer's path and body."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await app(scope, receive, keep)
        answers.append((scope["path"], b"".join(chunks)))

    return wrapped


def answers_of(battery: type[AdapterConformance]) -> list[tuple[str, Any]]:
    """Every JSON answer of the mock while each sample runs through the hub."""
    answers: list[tuple[str, bytes]] = []
    mock_factory = battery.mock

    class Recorded(battery):  # type: ignore[misc,valid-type]
        mock = staticmethod(lambda: recording(mock_factory(), answers))

    async def run() -> None:
        async with Recorded().running() as kit:
            for operation, sample in battery.samples.items():
                await kit.call(operation, await kit.resolve(sample))

    asyncio.run(run())
    decoded = []
    for path, body in answers:
        try:
            decoded.append((path, json.loads(body)))
        except ValueError:
            continue
    return decoded


#: What of each upstream's answers the adapter hands its mapping (the schema's subject).
SUBJECTS: dict[str, tuple[type[AdapterConformance], Callable[[str, Any], Any]]] = {
    "business-registration": (
        batteries.TestBusinessRegistrationConformance,
        lambda path, body: body if path.startswith("/apiDKKD/") else None,
    ),
    "payment": (
        batteries.TestPaymentConformance,
        lambda path, body: body if body.get("MaLoi") == "00" else None,
    ),
    "judicial-records": (
        batteries.TestJudicialRecordsConformance,
        lambda path, body: body.get("data") if body.get("statusCode") == "00" else None,
    ),
}


@pytest.mark.parametrize("service", sorted(SUBJECTS))
def test_the_mocks_answers_fit_the_declared_upstream_schema(service: str) -> None:
    battery, subject_of = SUBJECTS[service]
    schema_file = resource_path(battery.adapter.upstream_schema or "")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    subjects = [s for path, body in answers_of(battery) if (s := subject_of(path, body))]
    assert len(subjects) >= len(battery.samples), "every sample gave an answer to check"
    for subject in subjects:
        problems = [
            f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(subject)
        ]
        assert not problems, problems
