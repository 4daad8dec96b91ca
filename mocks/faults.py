"""Fault injection for mocks: the built-in ones, and an integrator's (public; one import).

An outside adapter's mock gets every fault below from one call, `with_faults(app)`, around
its Starlette (or any ASGI) app: the `X-Mock-Fault` header, `GET|PUT|DELETE /_mock/faults`
and start-up faults (`faults=parse_fault_options(["latency=200", "error=0.1"])`, from a
`--fault` option), rendered for a JSON/REST upstream:

    from mocks.faults import parse_fault_options, with_faults

    def create_app(*, faults=None):
        return with_faults(Starlette(routes=[...]), faults)

The built-in mocks, which render faults in their own protocol (a SOAP fault, an upstream's
own error body), use the parts: `FaultState`, `fault_routes`, `hold_until_disconnect`.

Three layers decide which faults a request meets:

1. start-up options (`--fault latency=200 --fault error=0.1`),
2. the run-time layer set by `PUT /_mock/faults` (when set it *replaces* the start-up layer;
   `DELETE /_mock/faults` removes it, restoring the start-up faults),
3. the request's own `X-Mock-Fault` header, which overrides only the kinds it names.

The header and start-up syntax is a comma-separated list of `kind` or `kind=value`:
`latency=MS`, `error[=RATE]`, and the on/off kinds `timeout`, `reset`, `malformed`,
`soap-fault`, `oversized`, `xxe`, `billion-laughs`, `http-503`. A bare kind means "on"
(error: rate 1); `kind=false` turns one off; `kind=0.3` turns an on/off kind on for 30 % of
requests (it sets `fault_rate`, the one share all on/off kinds use). This module only
decides *which* fault applies (`FaultState.pick`); each mock renders it in its own protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "TIMEOUT_SECONDS",
    "ConnectionReset",
    "FaultConfig",
    "FaultConfigError",
    "FaultKind",
    "FaultState",
    "FaultSwitch",
    "fault_routes",
    "hold_until_disconnect",
    "parse_fault_body",
    "parse_fault_header",
    "parse_fault_options",
    "with_faults",
]

TIMEOUT_SECONDS = 60.0
# When several faults are on, the first that applies wins, in the order they are declared
# here: a dead upstream cannot also send a malformed body. Latency is not in the list: it
# delays whatever follows.
FaultKind = Literal[
    "timeout",
    "reset",
    "http_503",
    "error",
    "soap_fault",
    "xxe",
    "billion_laughs",
    "malformed",
    "oversized",
]
_PRECEDENCE: tuple[FaultKind, ...] = get_args(FaultKind)  # declaration order, kept
_BOOLEAN_KINDS = (
    "timeout",
    "reset",
    "malformed",
    "soap_fault",
    "oversized",
    "xxe",
    "billion_laughs",
    "http_503",
)
_ALIASES = {"latency": "latency_ms", "error": "error_rate"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class FaultConfigError(ValueError):
    """A fault specification that cannot be understood; the message says why."""


class FaultConfig(BaseModel):
    """Which faults are on. Immutable; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, le=600_000, description="Delay before answering.")
    error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of LOI_HE_THONG faults."
    )
    timeout: bool = Field(default=False, description=f"Hold the request {TIMEOUT_SECONDS:.0f} s.")
    reset: bool = Field(
        default=False, description="Drop the connection part-way through the answer."
    )
    malformed: bool = Field(default=False, description="HTTP 200 with truncated, unparsable XML.")
    soap_fault: bool = Field(default=False, description="A soap:Server fault.")
    oversized: bool = Field(default=False, description="A valid reply padded past 5 MB.")
    xxe: bool = Field(
        default=False, description="A reply with an external entity reading a local file."
    )
    billion_laughs: bool = Field(
        default=False, description="A reply with an exponential entity-expansion bomb."
    )
    http_503: bool = Field(default=False, description="HTTP 503 with an empty body.")
    fault_rate: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of requests the on/off faults above hit."
    )

    @property
    def active(self) -> bool:
        """True when any fault is on (the hot path skips all fault work otherwise)."""
        return self != _NO_FAULTS

    @classmethod
    def build(cls, values: Mapping[str, Any]) -> FaultConfig:
        """Validate values, turning pydantic's error into a FaultConfigError."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise FaultConfigError(_describe(exc)) from None


_NO_FAULTS = FaultConfig()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _field(kind: str) -> str:
    name = kind.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in FaultConfig.model_fields:
        known = "latency, error, " + ", ".join(k.replace("_", "-") for k in _BOOLEAN_KINDS)
        raise FaultConfigError(f"unknown fault kind {kind.strip()!r} (known: {known})")
    return name


def _values(field: str, raw: str | None) -> dict[str, Any]:
    """The fields one `kind[=value]` item sets (values still strings; pydantic coerces)."""
    if field == "latency_ms":
        if raw is None:
            raise FaultConfigError("latency needs milliseconds, e.g. latency=200")
        return {field: raw}
    if field in ("error_rate", "fault_rate"):
        return {field: "1" if raw is None else raw}
    if raw is None or raw.lower() in _TRUE:
        return {field: True}
    if raw.lower() in _FALSE:
        return {field: False}
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        message = f"{field.replace('_', '-')} takes true, false or a rate in 0..1, not {raw!r}"
        raise FaultConfigError(message)
    return {field: rate > 0, "fault_rate": rate}


@functools.lru_cache(maxsize=256)
def _parse_items(spec: str) -> tuple[tuple[str, Any], ...]:
    items: dict[str, Any] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        kind, sep, raw = part.partition("=")
        field = _field(kind)
        items.update(_values(field, raw.strip() if sep else None))
    # Validate now (so the error is about this spec) and keep the coerced values, since
    # model_copy(update=...) does not validate what it is given.
    config = FaultConfig.build(items)
    return tuple((field, getattr(config, field)) for field in items)


def parse_fault_header(spec: str) -> dict[str, Any]:
    """The fields an `X-Mock-Fault` value sets, e.g. "latency=200,error" → 2 fields."""
    return dict(_parse_items(spec))


def parse_fault_options(options: Iterable[str]) -> FaultConfig:
    """Start-up `--fault kind=value` options (each may itself be a comma list)."""
    fields: dict[str, Any] = {}
    for option in options:
        fields.update(parse_fault_header(option))
    return FaultConfig.build(fields)


def parse_fault_body(body: Any) -> FaultConfig:
    """A `PUT /_mock/faults` body: the full object, or `{"fault": kind, "rate"|"ms": …}`.

    In the short form `rate` is the error rate for `error` and the `fault_rate` of an on/off
    kind (default 1); `ms` is the latency's milliseconds.
    """
    if not isinstance(body, dict):
        raise FaultConfigError("the body must be a JSON object")
    if "fault" not in body:
        return FaultConfig.build(body)
    extra = sorted(set(body) - {"fault", "rate", "ms"})
    if extra:
        raise FaultConfigError(f"unexpected keys with 'fault': {', '.join(extra)}")
    kind = body["fault"]
    if not isinstance(kind, str):
        raise FaultConfigError("'fault' must be a string naming the fault kind")
    if kind.strip().lower() in ("none", "off", ""):
        return _NO_FAULTS
    field = _field(kind)
    if field == "latency_ms":
        if "ms" not in body:
            raise FaultConfigError("a latency fault needs 'ms'")
        if body.get("rate", 1) != 1:
            raise FaultConfigError("latency applies to every request: 'rate' must be 1")
        return FaultConfig.build({field: body["ms"]})
    if field == "error_rate":
        return FaultConfig.build({field: body.get("rate", 1.0)})
    if "ms" in body:
        raise FaultConfigError(f"{kind!r} takes 'rate', not 'ms'")
    return FaultConfig.build({field: True, "fault_rate": body.get("rate", 1.0)})


class FaultState:
    """The faults of one mock app: start-up and run-time layers plus the random source."""

    def __init__(self, startup: FaultConfig | None = None, *, seed: int | None = None) -> None:
        self.startup = startup or _NO_FAULTS
        self.runtime: FaultConfig | None = None
        self._rng = random.Random(seed)

    @property
    def current(self) -> FaultConfig:
        """The run-time layer when set, else the start-up one."""
        return self.runtime if self.runtime is not None else self.startup

    def set_runtime(self, config: FaultConfig) -> None:
        self.runtime = config

    def clear_runtime(self) -> None:
        self.runtime = None

    def effective(self, header: str | None) -> FaultConfig:
        """The faults for one request; raises FaultConfigError for a bad header."""
        base = self.current
        if not header:
            return base
        return base.model_copy(update=parse_fault_header(header))

    def pick(self, config: FaultConfig) -> FaultKind | None:
        """Which fault (besides latency) this request meets, or None."""
        hit: bool | None = None  # one draw for all on/off kinds, made only if one is on
        for kind in _PRECEDENCE:
            if kind == "error":
                if config.error_rate > 0 and self._rng.random() < config.error_rate:
                    return kind
            elif getattr(config, kind):
                if hit is None:
                    hit = config.fault_rate >= 1.0 or self._rng.random() < config.fault_rate
                if hit:
                    return kind
        return None


async def hold_until_disconnect(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]], seconds: float = TIMEOUT_SECONDS
) -> None:
    """Wait `seconds`, or less if the client goes away (the `timeout` fault).

    Call only after the request body has been read: the next ASGI message is then the
    disconnect, so waiting for it costs nothing.
    """

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), seconds)


class ConnectionReset(Response):
    """The `reset` fault: the status line, headers and a little of the body go out, then the
    connection drops (a process killed mid-answer, a proxy cutting it).

    A real server (uvicorn) closes the socket when the app raises after the answer has
    started, so the client reads a body shorter than its Content-Length. Served in-process
    through httpx's ASGI transport, the raised error reaches the client as it would from a
    real socket: httpx.RemoteProtocolError, the "peer closed connection" of httpx's pool.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200, media_type="application/octet-stream")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"4096"), (b"content-type", b"text/xml")],
            }
        )
        await send({"type": "http.response.body", "body": b"<?xml ver", "more_body": True})
        import httpx  # only the fault needs it; the mocks otherwise speak plain ASGI

        raise httpx.RemoteProtocolError("peer closed connection (mock fault: reset)")


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def fault_routes(state: FaultState, path: str = "/_mock/faults") -> list[Route]:
    """`GET` (current faults), `PUT` (set the run-time layer), `DELETE` (clear it)."""

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                return _error("the body must be JSON")
            try:
                state.set_runtime(parse_fault_body(body))
            except FaultConfigError as exc:
                return _error(str(exc))
        elif request.method == "DELETE":
            state.clear_runtime()
        return JSONResponse(state.current.model_dump())

    return [Route(path, faults, methods=["GET", "PUT", "DELETE"])]


# -- one import for an integrator's JSON mock ---------------------------------------------------

#: The filler the `oversized` fault adds to a JSON object: past the hub's bound on upstream
#: answers (5 MB), so the adapter's bounded read refuses it.
OVERSIZED_BYTES = 5 * 1024 * 1024 + 1024


def _default_error() -> Response:
    return JSONResponse({"error": "internal error (mock fault)"}, status_code=500)


class FaultSwitch:
    """An ASGI app around a mock, injecting faults in its answers (see the module docstring).

    `state` is the FaultState (tests set faults on it directly); `error()` makes the answer
    of the `error` fault (default: a JSON 500), for an upstream with an error body of its
    own. Paths under `/_mock/` other than the fault switch itself meet no fault."""

    def __init__(
        self,
        app: Any,
        faults: FaultConfig | None = None,
        *,
        seed: int | None = None,
        error: Callable[[], Response] = _default_error,
        path: str = "/_mock/faults",
    ) -> None:
        from starlette.routing import Router

        self.app, self.error, self.path = app, error, path
        self.state = FaultState(faults, seed=seed)
        self._switch = Router(routes=fault_routes(self.state, path))

    @property
    def faults(self) -> FaultState:
        """The same FaultState as `state` (the built-in mocks' `app.state.faults`)."""
        return self.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan, websockets: the mock's own
            return
        if scope["path"] == self.path:
            await self._switch(scope, receive, send)
            return
        if scope["path"].startswith("/_mock/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            config = self.state.effective(request.headers.get("x-mock-fault"))
        except FaultConfigError as exc:
            await _error(f"X-Mock-Fault: {exc}")(scope, receive, send)
            return
        kind = None
        if config.active:
            if config.latency_ms:
                await asyncio.sleep(config.latency_ms / 1000)
            kind = self.state.pick(config)
        replacement = await self._replacement(kind, request)
        if replacement is not None:
            await replacement(scope, receive, send)
        elif kind in ("malformed", "oversized"):
            await self._altered(kind, scope, request.receive, send)
        else:
            await self.app(scope, request.receive, send)

    async def _replacement(self, kind: FaultKind | None, request: Request) -> Any:
        if kind == "timeout":
            await request.body()
            await hold_until_disconnect(request.receive)
            return Response(b"", status_code=504)  # too late for any caller's timeout
        if kind == "reset":
            return ConnectionReset()
        if kind == "http_503":
            return Response(b"", status_code=503)
        if kind in ("error", "soap_fault", "xxe", "billion_laughs"):  # no XML in JSON
            return self.error()
        return None

    async def _altered(self, kind: FaultKind, scope: Any, receive: Any, send: Any) -> None:
        """The mock's real answer, cut in half (`malformed`) or padded past 5 MB."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        body = b"".join(chunks)
        if kind == "malformed":
            body = body[: max(1, len(body) // 2)]
        else:
            filler = b'"filler":"' + b"x" * OVERSIZED_BYTES + b'"'
            stripped = body.rstrip()
            body = (
                stripped[:-1] + (b"," if stripped != b"{}" else b"") + filler + b"}"
                if stripped.endswith(b"}")
                else body + b" " * OVERSIZED_BYTES
            )
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def with_faults(
    app: Any,
    faults: FaultConfig | None = None,
    *,
    seed: int | None = None,
    error: Callable[[], Response] = _default_error,
) -> FaultSwitch:
    """`app` (a mock's ASGI app) with the fault switch around it: `X-Mock-Fault`,
    `GET|PUT|DELETE /_mock/faults`, and `faults` from start-up (`parse_fault_options`)."""
    return FaultSwitch(app, faults, seed=seed, error=error)
