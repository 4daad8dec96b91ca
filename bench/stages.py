"""What each stage of the pipeline costs on one citizen look-up, in µs of one core, by timeit.

    python bench/stages.py               # python3 dev.py bench stages
    python bench/stages.py --number 200  # fewer rounds (the test suite's smoke run)

It builds the real hub in process (SQLite, the population adapter, the mock behind an
in-process transport), makes one real call through the API, then times each stage of that
call on the same objects and data, one by one: the SOAP parse, the mapping, the models'
validation, the output check, the disclosed-fields list, the caller's checks, the audit
row, the metrics, the envelope. Best of five rounds, so the figures are the stages' own cost
on an idle core; under load every one of them grows by about the same factor.

The server, the HTTP client and the audit writer's thread are not here: `bench/floor.py`
(what a bare proxy on the same server and client costs) and `bench/audit_writer.py` measure
those. The sum below plus the floor is the least the hub can cost per call as built: the
arithmetic behind issue 17's targets (docs/design/benchmark.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson

from hub.api.deps import envelope
from hub.app import create_app
from hub.core.adapter_faults import checked_output
from hub.core.caller import CallerHeaders, check_caller, validate_input
from hub.core.config import Settings
from hub.core.gateway import CallResult, _Trace
from hub.security.auth import create_client
from hub.security.fields import paths_of, trim
from hub.soap import parse_response
from mocks.data import load_citizens
from mocks.population.app import create_app as create_mock


class _Recording(httpx.AsyncBaseTransport):
    """The mock behind an in-process transport, keeping the last answer's bytes."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.last = b""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.last = await response.aread()
        return response


def timed(fn: Callable[[], Any], number: int) -> float:
    """Best of five rounds of `number` calls, in µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


async def stages(number: int) -> list[tuple[str, float]]:
    folder = tempfile.mkdtemp(prefix="bench-stages-")
    secret = "bench-secret-key-0123456789"
    settings = Settings(
        database_url=f"sqlite:///{folder}/hub.db",
        secret_key=secret,
        enabled_adapters=["population"],
        adapters={"population": {"base_url": "http://population.mock"}},
        audit_archive_dir=f"{folder}/archive",
        background_tasks=False,
        log_level="warning",
    )
    upstream = _Recording(create_mock())
    app = create_app(settings, transports={"population": upstream})
    personal_id = load_citizens()[3].personal_id
    async with app.router.lifespan_context(app):
        hub = app.state.hub
        key = create_client(
            hub.engine, secret.encode(), name="stages", allow=["population"], purposes=["bench"]
        ).api_key
        headers = {"authorization": f"Bearer {key}", "x-purpose": "bench"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            answer = await http.get(f"/v1/citizens/{personal_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        loaded = hub.registry.get("population")
        adapter, spec = loaded.instance, loaded.spec("lookup")
        mapping = adapter.compiled_mapping.operation("lookup")
        caller = CallerHeaders(
            request_id="0" * 32, authorization=headers["authorization"], purpose="bench"
        )
        principal = await hub.gateway.authenticate(caller)
        body = upstream.last
        payload = parse_response(body).payload
        mapped = mapping.apply(payload)
        citizen = spec.output_model.model_validate(mapped)
        data = checked_output(loaded.cls, spec, citizen)
        granted = ["personal_id", "full_name", "date_of_birth", "permanent_address"]
        trace = _Trace(principal, caller, "population", "lookup")
        trace.subject_id = personal_id
        metrics = hub.metrics
        per_operation = metrics.for_operation("population", "lookup")
        result = CallResult(data, "population", "lookup", "1.0.0", 1.0, principal.client_id)

        def authenticate() -> None:  # the cached API key, as every call after the first
            coroutine = hub.gateway.authenticate(caller)
            try:
                coroutine.send(None)
            except StopIteration:
                return
            raise AssertionError("authentication awaited: the key was not cached")

        def checks() -> None:
            check_caller(caller)
            principal.authorize("population", "lookup", personal_data=True, purpose="bench")

        def output_check() -> None:
            checked_output(loaded.cls, spec, citizen)

        def metrics_of_a_call() -> None:
            per_operation.duration.observe(0.001)
            per_operation.upstream.observe(0.001)
            metrics.requests.labels(principal.client_id, "population", "lookup", "OK").inc()

        rows: list[tuple[str, Callable[[], Any]]] = [
            ("authenticate (cached key)", authenticate),
            (
                "caller checks and grant",
                lambda: (
                    check_caller(caller),
                    principal.authorize(
                        "population", "lookup", personal_data=True, purpose="bench"
                    ),
                ),
            ),
            ("input validation", lambda: validate_input(spec, {"personal_id": personal_id})),
            ("upstream auth headers (C06)", lambda: adapter._auth_headers()),
            ("SOAP parse (lxml, hardened)", lambda: parse_response(body)),
            ("mapping (compiled closures)", lambda: mapping.apply(payload)),
            ("output model validation", lambda: spec.output_model.model_validate(mapped)),
            (
                "output check (re-validated, to JSON)",
                lambda: checked_output(loaded.cls, spec, citizen),
            ),
            ("field grant cut", lambda: trim(data, granted)),
            ("disclosed fields (audit)", lambda: orjson.dumps(paths_of(data))),
            ("audit row", lambda: trace.audit_row(1.0)),
            ("metrics", metrics_of_a_call),
            ("envelope (orjson)", lambda: envelope(result, caller.request_id)),
        ]
        return [(name, timed(fn, number)) for name, fn in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=3000, help="calls per timing round")
    args = parser.parse_args()
    rows = asyncio.run(stages(args.number))
    width = max(len(name) for name, _ in rows)
    print(f"{'stage':{width}}   µs per call (best of 5 rounds of {args.number})")
    for name, micros in rows:
        print(f"{name:{width}}   {micros:8.1f}")
    print(f"{'sum':{width}}   {sum(m for _, m in rows):8.1f}")


if __name__ == "__main__":
    main()
