"""The adapter conformance kit: one subclass runs the standard battery against an adapter's mock.

    from hub.testing import AdapterConformance

    class TestLandRegistryConformance(AdapterConformance):
        adapter = LandRegistryAdapter
        mock = staticmethod(create_land_registry_mock)          # () -> an ASGI app
        samples = {"parcels": {"personal_id": "001085012345"}}  # a valid input per operation
        unknown = {"parcels": {"personal_id": "001085999999"}}  # inputs upstream does not know

Each check is its own pytest test (per operation where it applies): the catalogue entry,
each sample answered through the hub's pipeline, unknown subjects as NOT_FOUND, a hanging
upstream as UPSTREAM_TIMEOUT, HTTP 5xx retried only for idempotent operations, a malformed
answer as UPSTREAM_BAD_RESPONSE, no personal data or upstream text in any of those errors,
and the health probe. The kit builds the hub in-process itself (an SQLite file in pytest's
`tmp_path`) and injects every fault in a transport wrapped around the mock, so the mock
needs no fault injection of its own. Tests are plain functions that run their own event
loop, so no pytest asyncio plugin or mode is needed. See docs/conformance.md.

Only tests import this module (it imports pytest); the hub core never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest
from lxml import etree
from pydantic import BaseModel, SecretStr

from hub.adapter import Adapter, Health, OperationSpec
from hub.app import Hub, create_app
from hub.core.config import Settings
from hub.core.gateway import CallerHeaders
from hub.core.registry import LoadedAdapter
from hub.errors import HubError, NotFound, UpstreamBadResponse, UpstreamError, UpstreamTimeout
from hub.security.auth import Principal
from hub.soap import safe_parser

__all__ = [
    "AdapterConformance",
    "ConformanceHub",
    "Fault",
    "FaultTransport",
    "Injection",
    "Sample",
    "asgi_lifespan",
    "hub_client",
    "path_prefixes",
]

#: What the kit's transport does to the requests it targets.
#: hang: never answers (the hub's per-attempt timeout must end it); read_timeout: raises
#: httpx.ReadTimeout (as the HTTP client does when its own read timeout fires first);
#: http_500: a 500 with a text body (a fake stack trace); http_503: a 503 with no body;
#: malformed: the real answer cut in half; refuse: every request, targeted or not, fails
#: with httpx.ConnectError.
Fault = Literal["hang", "read_timeout", "http_500", "http_503", "malformed", "refuse"]

#: A sample input: the operation's input as a JSON-like mapping, or a function of the
#: running kit returning one (sync or async) for inputs that need upstream state first (a
#: reference from an earlier call). It runs before any fault is switched on.
Sample = Mapping[str, Any] | Callable[["ConformanceHub"], Mapping[str, Any] | Awaitable[Any]]

#: Planted in the body of the injected HTTP 500: it must never reach the caller.
CANARY = "conformance-canary-5f0c1e"
_ERROR_PAGE = (
    "Internal Server Error\n"
    "Traceback (most recent call last):\n"
    '  File "/srv/upstream/handlers.py", line 42, in handle\n'
    f"RuntimeError: database connection lost ({CANARY})\n"
).encode()
#: Every test's bound: a check the hub does not end (a hang) fails instead of blocking.
_TEST_BOUND_S = 30.0
_TIMEOUT_FAULTS: tuple[Fault, ...] = ("hang", "read_timeout")
_SERVER_ERROR_FAULTS: tuple[Fault, ...] = ("http_500", "http_503")
#: Shorter strings (codes like "01", "VN") are not searched for in errors.
_MIN_LEAK_LENGTH = 4


# -- the fault-injecting transport ----------------------------------------------------------


@dataclass
class Injection:
    """What one fault met while it was on: the targeted requests, the real answers cut."""

    fault: Fault
    requests: list[httpx.Request] = field(default_factory=list)
    cut_answers: list[bytes] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many upstream requests met the fault (one per attempt, for a sane adapter)."""
        return len(self.requests)


class FaultTransport(httpx.AsyncBaseTransport):
    """Wraps the mock's transport; while a fault is on, the requests `targets` selects meet it.

    Untargeted requests (a token endpoint, say) go through untouched, so multi-step
    protocols still reach the step under test. Every request is recorded in `requests`.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, targets: Callable[[httpx.Request], bool]
    ) -> None:
        self.inner = inner
        self.targets = targets
        self.requests: list[httpx.Request] = []
        self._injection: Injection | None = None

    @contextlib.contextmanager
    def inject(self, fault: Fault) -> Iterator[Injection]:
        """Switch `fault` on for the block; yields the record of what met it."""
        injection = Injection(fault)
        self._injection = injection
        try:
            yield injection
        finally:
            self._injection = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        injection = self._injection
        if injection is None:
            return await self.inner.handle_async_request(request)
        if injection.fault == "refuse":
            injection.requests.append(request)
            raise httpx.ConnectError("connection refused (conformance kit)", request=request)
        if not self.targets(request):
            return await self.inner.handle_async_request(request)
        injection.requests.append(request)
        if injection.fault == "hang":  # only the hub's per-attempt timeout ends this
            await asyncio.Event().wait()
            raise AssertionError("unreachable: nothing sets the event")
        if injection.fault == "read_timeout":
            raise httpx.ReadTimeout("read timed out (conformance kit)", request=request)
        if injection.fault == "http_500":
            return httpx.Response(
                500, headers={"content-type": "text/plain; charset=utf-8"}, content=_ERROR_PAGE
            )
        if injection.fault == "http_503":
            return httpx.Response(503)
        # malformed: the real answer, cut in half
        response = await self.inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        injection.cut_answers.append(body)
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=body[: max(len(body) // 2, 1)]
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def path_prefixes(prefixes: Sequence[str]) -> Callable[[httpx.Request], bool]:
    """A `targets` predicate: requests whose URL path starts with one of `prefixes`."""
    wanted = tuple(prefixes)
    return lambda request: request.url.path.startswith(wanted)


# -- running an ASGI app's lifespan ----------------------------------------------------------


@contextlib.asynccontextmanager
async def hub_client(
    adapter: type[Adapter],
    mock: Any,
    *,
    config: Mapping[str, Any] | None = None,
    purpose: str = "test",
    allow: Sequence[str] = ("*",),
) -> AsyncIterator[httpx.AsyncClient]:
    """The hub's own HTTP API, in-process, with this adapter alone wired to `mock` (an ASGI
    app): an httpx client whose requests carry a fresh client's API key and `X-Purpose`.

        async with hub_client(LandRegistryAdapter, create_mock()) as client:
            answer = await client.post("/v1/services/land-registry/parcels", json={...})

    For end-to-end tests of an adapter through authentication, validation, the mapping,
    error translation and the audit, as an agency's application sees them. The database is
    a temporary SQLite file; `config` overrides the adapter's settings.
    """
    from hub.security.auth import create_client

    base_url = f"http://{adapter.name}.mock"
    async with contextlib.AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(
            environment="development",
            database_url=f"sqlite:///{folder}/hub.db",
            secret_key=SecretStr("hub-client-secret-key-0123456789abcdef"),
            retry_initial_backoff_s=0.001,
            retry_max_backoff_s=0.005,
            client_cache_ttl_s=0,
            health_cache_s=0,
            background_tasks=False,
            adapters={adapter.name: {"base_url": base_url, **dict(config or {})}},
        )
        transports = {adapter.name: httpx.ASGITransport(app=mock)}
        app = create_app(settings, adapters=[adapter], transports=transports)
        await stack.enter_async_context(asgi_lifespan(mock))
        await stack.enter_async_context(app.router.lifespan_context(app))
        issued = create_client(
            app.state.hub.engine,
            settings.secret_key.get_secret_value().encode(),
            name=f"test-{uuid.uuid4().hex[:8]}",
            allow=allow,
            purposes=[purpose],
        )
        headers = {"authorization": f"Bearer {issued.api_key}", "x-purpose": purpose}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub.test", headers=headers
        )
        yield await stack.enter_async_context(client)


@contextlib.asynccontextmanager
async def asgi_lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan around the block (startup, then shutdown after it).

    An app without lifespan support (one that raises or returns on a lifespan scope) is
    run without it; a `lifespan.startup.failed` raises RuntimeError.
    """
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: Mapping[str, Any]) -> None:
        await from_app.put(dict(message))

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, receive, send))

    async def answer() -> dict[str, Any] | None:
        """The app's next message, or None when it ended without one (no lifespan)."""
        reply = asyncio.ensure_future(from_app.get())
        await asyncio.wait({task, reply}, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            return reply.result()
        reply.cancel()
        return None

    await to_app.put({"type": "lifespan.startup"})
    started = await answer()
    if started is None:  # the app does not speak lifespan
        with contextlib.suppress(Exception):
            task.result()
        yield
        return
    if started["type"] != "lifespan.startup.complete":
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise RuntimeError(f"the mock failed to start: {started.get('message', '')}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await answer()
        await task


# -- the running hub -------------------------------------------------------------------------


@dataclass
class ConformanceHub:
    """The hub built for one test: the adapter alone, wired to its mock through the kit's
    transport. Sample functions receive it (to call operations, or the mock directly)."""

    hub: Hub
    service: str
    mock: Any
    transport: FaultTransport
    base_url: str

    @property
    def loaded(self) -> LoadedAdapter:
        """The adapter as the hub loaded it (instance, per-attempt timeout)."""
        return self.hub.registry.get(self.service)

    @property
    def adapter(self) -> Adapter:
        """The adapter instance the hub calls."""
        return self.loaded.instance

    async def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation through the hub's whole pipeline (validation, timeout, retry,
        error translation, audit), as the hub's own routes do: operations served only by
        their resource route (`@operation(route=...)`) too. Returns the output's JSON data;
        raises the HubError the caller would get."""
        caller = CallerHeaders(
            request_id=f"conformance-{uuid.uuid4().hex}",
            authorization=None,
            purpose="conformance",
        )
        principal = Principal(
            "cl_conformance", "conformance", frozenset({"*"}), frozenset({"conformance"})
        )
        result = await self.hub.gateway.call(
            caller,
            self.service,
            operation,
            copy.deepcopy(dict(payload)),
            principal=principal,
            authorize=False,
        )
        return result.data

    async def error(self, operation: str, payload: Mapping[str, Any]) -> HubError:
        """Run an operation that must fail; returns its HubError."""
        try:
            data = await self.call(operation, payload)
        except HubError as exc:
            return exc
        raise AssertionError(f"{self.service}:{operation} answered instead of failing: {data}")

    async def mock_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request straight to the mock (neither faulted nor counted): to set upstream
        state up, e.g. settle a payment on a mock-only route."""
        transport = httpx.ASGITransport(app=self.mock)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
            return await client.request(method, path, **kwargs)

    async def resolve(self, sample: Sample) -> dict[str, Any]:
        """A sample as an input mapping (a sample function is run now)."""
        if callable(sample):
            value = sample(self)
            if inspect.isawaitable(value):
                value = await value
        else:
            value = sample
        if not isinstance(value, Mapping):
            raise TypeError(f"a sample must be a mapping, not {type(value).__name__}")
        return copy.deepcopy(dict(value))

    @contextlib.asynccontextmanager
    async def attempt_timeout(self, seconds: float) -> AsyncIterator[None]:
        """The hub's per-attempt timeout of this adapter set to `seconds` for the block."""
        loaded = self.loaded
        saved = loaded.timeout_s, loaded.operation_timeouts
        loaded.timeout_s = seconds
        loaded.operation_timeouts = dict.fromkeys(loaded.cls.operations, seconds)
        try:
            yield
        finally:
            loaded.timeout_s, loaded.operation_timeouts = saved


# -- the battery -----------------------------------------------------------------------------


def _over(source: Literal["samples", "unknown"]) -> Callable[[Any], Any]:
    """Mark a test to be run once per operation of `samples` or `unknown`."""

    def mark(func: Any) -> Any:
        func.conformance_over = source
        return func

    return mark


def _strings(value: Any) -> set[str]:
    """Every string in a JSON-like value (keys excluded), stripped, long enough to search."""
    found: set[str] = set()
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= _MIN_LEAK_LENGTH:
            found.add(text)
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found |= _strings(item)
    return found


def _answer_strings(body: bytes) -> set[str]:
    """The values in an upstream answer (JSON strings, XML texts and attributes)."""
    with contextlib.suppress(ValueError):
        return _strings(json.loads(body))
    with contextlib.suppress(etree.LxmlError, ValueError):
        root = etree.fromstring(body, safe_parser())
        texts = list(root.itertext())
        texts += [value for element in root.iter() for value in element.attrib.values()]
        return _strings(texts)
    return set()


def _has_object_schema(schema: Mapping[str, Any]) -> bool:
    """pydantic's shape of a model's schema: an object with properties, or a $ref into $defs."""
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        return True
    ref, defs = schema.get("$ref"), schema.get("$defs")
    if isinstance(ref, str) and isinstance(defs, dict) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        return isinstance(target, dict) and target.get("type") == "object"
    return False


def _dangling_refs(schema: Mapping[str, Any]) -> list[str]:
    """Every local `$ref` of a schema that names no entry of its `$defs`."""
    found = schema.get("$defs")
    defs: Mapping[str, Any] = found if isinstance(found, dict) else {}
    dangling: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not (
                ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs
            ):
                dangling.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return dangling


class AdapterConformance:
    """The conformance battery of one adapter. Subclass it in a test module (name the
    subclass `Test…`) and declare:

    - `adapter`: the Adapter subclass.
    - `mock`: a zero-argument callable returning the mock's ASGI app (a fresh one per test;
      `staticmethod(...)` or a lambda). Its lifespan is run around each test.
    - `samples`: operation name -> a valid input (or a function of the ConformanceHub
      returning one) that upstream answers successfully.
    - `unknown`: operation name -> an input upstream does not know (answered NOT_FOUND).
    - `exempt`: operation name -> why it has no sample (operations served by their own
      route need none).
    - `config`: the adapter's configuration overrides the mock needs (credentials);
      `base_url` defaults to a placeholder the transport ignores.
    - `fault_paths`: which upstream requests meet injected faults: None (every request), a
      list of URL path prefixes, or a predicate of the httpx.Request. Leave out auxiliary
      requests (a token endpoint) so a fault hits the operation's own step.
    - `retry_attempts`, `attempt_timeout_s`: the hub's retry attempts and the per-attempt
      timeout the timeout check uses.
    """

    __test__ = False  # this base is not a test; its subclasses are (see __init_subclass__)

    adapter: ClassVar[type[Adapter]]
    mock: ClassVar[Callable[[], Any]]
    samples: ClassVar[Mapping[str, Sample]] = {}
    unknown: ClassVar[Mapping[str, Sample]] = {}
    exempt: ClassVar[Mapping[str, str]] = {}
    config: ClassVar[Mapping[str, Any]] = {}
    fault_paths: ClassVar[Sequence[str] | Callable[[httpx.Request], bool] | None] = None
    retry_attempts: ClassVar[int] = 3
    attempt_timeout_s: ClassVar[float] = 0.05

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True

    # -- pytest plumbing ---------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the per-operation checks with this adapter's operations."""
        source = getattr(metafunc.function, "conformance_over", None)
        if source is None or "operation" not in metafunc.fixturenames:
            return
        names = list(getattr(type(self), source))
        if names:
            metafunc.parametrize("operation", names)
        else:
            skip = pytest.mark.skip(reason=f"no operation in `{source}`")
            metafunc.parametrize("operation", [pytest.param(None, marks=skip)], ids=["none"])

    def _run(self, test: Callable[[], Awaitable[None]]) -> None:
        """Run one async check in its own event loop, bounded so a hang fails the test."""

        async def bounded() -> None:
            try:
                await asyncio.wait_for(test(), _TEST_BOUND_S)
            except TimeoutError:
                raise AssertionError(
                    f"the check did not end within {_TEST_BOUND_S:.0f} s (a hang the hub's "
                    "timeout did not end?)"
                ) from None

        asyncio.run(bounded())

    @classmethod
    def _adapter_cls(cls) -> type[Adapter]:
        adapter = getattr(cls, "adapter", None)
        if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
            raise TypeError(f"{cls.__name__}.adapter must be an Adapter subclass")
        return adapter

    @classmethod
    def _spec(cls, operation: str) -> OperationSpec:
        spec = cls._adapter_cls().operations.get(operation)
        if spec is None:
            raise AssertionError(f"{cls._adapter_cls().name} has no operation {operation!r}")
        return spec

    @classmethod
    def _targets(cls) -> Callable[[httpx.Request], bool]:
        chosen = cls.fault_paths  # read on the class: a function stays unbound
        if chosen is None:
            return lambda request: True
        if isinstance(chosen, str):
            return path_prefixes([chosen])
        if callable(chosen):
            return chosen
        return path_prefixes(chosen)

    @contextlib.asynccontextmanager
    async def running(
        self, tmp_path: Path | None = None, *, retry_attempts: int | None = None
    ) -> AsyncIterator[ConformanceHub]:
        """The hub with this adapter alone, wired to a fresh mock through a FaultTransport,
        on an SQLite file in `tmp_path` (a temporary directory if None)."""
        cls = type(self)
        adapter = self._adapter_cls()
        factory = getattr(cls, "mock", None)
        if not callable(factory):
            raise TypeError(f"{cls.__name__}.mock must be a callable returning an ASGI app")
        mock = factory()
        base_url = f"http://{adapter.name}.conformance"
        transport = FaultTransport(httpx.ASGITransport(app=mock), self._targets())
        async with contextlib.AsyncExitStack() as stack:
            if tmp_path is None:
                tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            settings = Settings(
                environment="development",
                database_url=f"sqlite:///{tmp_path}/conformance.db",
                secret_key=SecretStr("conformance-secret-key-0123456789abcdef"),
                retry_attempts=self.retry_attempts if retry_attempts is None else retry_attempts,
                retry_deadline_s=10.0,
                retry_initial_backoff_s=0.001,
                retry_max_backoff_s=0.005,
                upstream_timeout_s=10.0,
                client_cache_ttl_s=0,
                health_cache_s=0,
                background_tasks=False,
                adapters={adapter.name: {"base_url": base_url, **dict(cls.config)}},
            )
            app = create_app(settings, adapters=[adapter], transports={adapter.name: transport})
            await stack.enter_async_context(asgi_lifespan(mock))
            await stack.enter_async_context(app.router.lifespan_context(app))
            yield ConformanceHub(app.state.hub, adapter.name, mock, transport, base_url)

    def _forbidden(self, kit: ConformanceHub, *values: Any) -> set[str]:
        """Strings no error may carry: the inputs' values and the adapter's secrets."""
        found = _strings(list(values))
        config = kit.adapter.config
        for name in type(config).model_fields:
            value = getattr(config, name)
            if isinstance(value, SecretStr):
                found |= _strings(value.get_secret_value())
        return found

    @staticmethod
    def _assert_clean(what: str, exc: HubError, forbidden: set[str]) -> None:
        """No forbidden string in what the caller sees of `exc` (its problem JSON)."""
        problem = exc.problem(None)
        shown = json.dumps(
            {k: v for k, v in problem.items() if k != "request_id"}, ensure_ascii=False
        )
        shown += "\n" + str(exc)
        fixed = f"{problem['type']} {exc.title} {exc.code}"  # the class's own words
        leaked = sorted(s for s in forbidden if s in shown and s not in fixed)
        assert not leaked, f"{what}: the error shown to the caller carries {leaked!r}: {shown}"

    # -- 1. the catalogue entry ------------------------------------------------------------

    def test_catalogue_entry(self) -> None:
        """describe() is JSON, names the adapter, and each operation's schemas are pydantic
        JSON Schema objects whose references resolve."""
        adapter = self._adapter_cls()
        entry = adapter.describe()
        json.dumps(entry, allow_nan=False)  # TypeError/ValueError: not JSON-serialisable
        assert entry["name"] == adapter.name and isinstance(adapter.name, str) and adapter.name
        assert isinstance(entry["version"], str) and entry["version"], "no version"
        operations = entry["operations"]
        assert isinstance(operations, list) and operations, "no operation"
        names = [op["name"] for op in operations]
        assert len(names) == len(set(names)), f"duplicate operation names: {names}"
        for op in operations:
            assert op["summary"], f"{op['name']}: no summary (the method's docstring)"
            for key in ("input_schema", "output_schema"):
                schema = op[key]
                assert isinstance(schema, dict), f"{op['name']}.{key} is not an object"
                assert _has_object_schema(schema), (
                    f"{op['name']}.{key} is not an object schema with properties: {schema}"
                )
                dangling = _dangling_refs(schema)
                assert not dangling, f"{op['name']}.{key}: unresolved $ref {dangling}"

    def test_samples_cover_the_operations(self) -> None:
        """Every operation named in samples, unknown and exempt exists; every operation
        not served by its own route has a sample or an exemption; static inputs validate."""
        cls = type(self)
        operations = self._adapter_cls().operations
        for attr in ("samples", "unknown", "exempt"):
            strays = sorted(set(getattr(cls, attr)) - set(operations))
            assert not strays, f"`{attr}` names no such operation: {strays}"
        for name, reason in cls.exempt.items():
            assert isinstance(reason, str) and reason.strip(), f"exempt {name!r}: give a reason"
            assert name not in cls.samples, f"{name!r} is both sampled and exempt"
        missing = sorted(
            name
            for name, spec in operations.items()
            if spec.route is None and name not in cls.samples and name not in cls.exempt
        )
        assert not missing, f"operations with neither a sample nor an exemption: {missing}"
        for attr in ("samples", "unknown"):
            for name, sample in getattr(cls, attr).items():
                if callable(sample):
                    continue  # resolved against the running mock
                try:
                    operations[name].input_model.model_validate(dict(sample))
                except Exception as exc:
                    raise AssertionError(f"`{attr}[{name!r}]` is not a valid input: {exc}") from exc

    # -- 2. every sample answers its output model ------------------------------------------

    @_over("samples")
    def test_sample_answers_its_output_model(self, operation: str, tmp_path: Path) -> None:
        """The sample, through the hub's pipeline against the mock, answers the operation's
        output model."""
        spec = self._spec(operation)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await kit.resolve(self.samples[operation])
                before = len(kit.transport.requests)
                data = await kit.call(operation, payload)
                assert len(kit.transport.requests) > before, "no upstream request was made"
                model: type[BaseModel] = spec.output_model
                model.model_validate(data)
                json.dumps(data, allow_nan=False)

        self._run(check)

    # -- 3. unknown subject -> NotFound ------------------------------------------------------

    @_over("unknown")
    def test_unknown_subject_is_not_found(self, operation: str, tmp_path: Path) -> None:
        """An input upstream does not know is 404 NOT_FOUND (hub.errors.NotFound)."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await kit.resolve(self.unknown[operation])
                exc = await kit.error(operation, payload)
                assert isinstance(exc, NotFound) and exc.code == "NOT_FOUND", (
                    f"expected NotFound (404 NOT_FOUND), got {type(exc).__name__} "
                    f"({exc.status} {exc.code})"
                )
                self._assert_clean("not found", exc, self._forbidden(kit, payload))

        self._run(check)

    # -- 4. upstream timeout -----------------------------------------------------------------

    @_over("samples")
    def test_upstream_timeout_is_a_timeout(self, operation: str, tmp_path: Path) -> None:
        """An upstream that never answers (ended by the hub's per-attempt timeout), and one
        whose read times out in the HTTP client, are 504 UPSTREAM_TIMEOUT, after
        `retry_attempts` attempts when the operation is idempotent, else one."""
        spec = self._spec(operation)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await self._primed(kit, operation)
                for fault in _TIMEOUT_FAULTS:
                    with kit.transport.inject(fault) as met:
                        async with kit.attempt_timeout(self.attempt_timeout_s):
                            exc = await kit.error(operation, payload)
                    self._assert_met(met)
                    assert isinstance(exc, UpstreamTimeout), (
                        f"{fault}: expected UpstreamTimeout (504), got {type(exc).__name__} "
                        f"({exc.status} {exc.code})"
                    )
                    self._assert_attempts(spec, met, fault)

        self._run(check)

    # -- 5. 5xx retried only when idempotent -------------------------------------------------

    @_over("samples")
    def test_5xx_is_retried_only_when_idempotent(self, operation: str, tmp_path: Path) -> None:
        """HTTP 500 (with an error page) and 503 (empty) are 502/503 upstream errors, tried
        `retry_attempts` times when the operation is idempotent, once when it is not."""
        spec = self._spec(operation)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await self._primed(kit, operation)
                for fault in _SERVER_ERROR_FAULTS:
                    with kit.transport.inject(fault) as met:
                        exc = await kit.error(operation, payload)
                    self._assert_met(met)
                    assert isinstance(exc, UpstreamError) and exc.status in (502, 503), (
                        f"{fault}: expected an upstream error (502/503), got "
                        f"{type(exc).__name__} ({exc.status} {exc.code})"
                    )
                    self._assert_attempts(spec, met, fault)

        self._run(check)

    # -- 6. malformed answer -----------------------------------------------------------------

    @_over("samples")
    def test_malformed_answer_is_a_bad_response(self, operation: str, tmp_path: Path) -> None:
        """The real answer cut in half is 502 UPSTREAM_BAD_RESPONSE, and not retried."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await self._primed(kit, operation)
                with kit.transport.inject("malformed") as met:
                    exc = await kit.error(operation, payload)
                self._assert_met(met)
                assert isinstance(exc, UpstreamBadResponse), (
                    f"expected UpstreamBadResponse (502 UPSTREAM_BAD_RESPONSE), got "
                    f"{type(exc).__name__} ({exc.status} {exc.code})"
                )
                assert met.count == 1, f"a malformed answer was retried: {met.count} requests"

        self._run(check)

    # -- 7. no personal data in errors -----------------------------------------------------

    @_over("samples")
    def test_errors_carry_no_personal_data(self, operation: str, tmp_path: Path) -> None:
        """The errors of the failures above (and of the unknown input) show the caller none
        of the input's values, upstream's text or the adapter's secrets."""

        async def check() -> None:
            async with self.running(tmp_path, retry_attempts=1) as kit:
                payload = await self._primed(kit, operation)
                forbidden = self._forbidden(kit, payload)
                for fault in (*_TIMEOUT_FAULTS, *_SERVER_ERROR_FAULTS, "malformed"):
                    with kit.transport.inject(fault) as met:
                        async with kit.attempt_timeout(self.attempt_timeout_s):
                            exc = await kit.error(operation, payload)
                    upstream: set[str] = {CANARY, _ERROR_PAGE.decode().splitlines()[-1]}
                    for body in met.cut_answers:
                        upstream |= _answer_strings(body)
                    self._assert_clean(fault, exc, forbidden | upstream)
                if operation in self.unknown:
                    missing = await kit.resolve(self.unknown[operation])
                    exc = await kit.error(operation, missing)
                    self._assert_clean("unknown", exc, self._forbidden(kit, missing))

        self._run(check)

    # -- 8. health ---------------------------------------------------------------------------

    def test_health_is_ok_against_the_mock(self, tmp_path: Path) -> None:
        """health() answers ok against the mock."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                health = await kit.adapter.health()
                assert isinstance(health, Health), f"health() returned {health!r}"
                assert health.ok, f"health() is not ok against the mock: {health}"

        self._run(check)

    def test_health_is_not_ok_when_upstream_refuses(self, tmp_path: Path) -> None:
        """With every connection refused, the hub's probe (/ready) reports the adapter not
        ok without failing, and health() itself returns not-ok or raises only a transport
        or hub error (which the contract lets it propagate)."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                with kit.transport.inject("refuse"):
                    probed = (await kit.hub.health.adapters())[kit.service]
                    assert not probed.ok, f"the hub's probe is ok with upstream down: {probed}"
                    try:
                        health = await kit.adapter.health()
                    except (httpx.TransportError, HubError):
                        return
                    except Exception as exc:
                        raise AssertionError(
                            f"health() raised {type(exc).__name__}, neither a transport nor "
                            "a hub error"
                        ) from exc
                assert isinstance(health, Health), f"health() returned {health!r}"
                assert not health.ok, f"health() is ok with upstream down: {health}"

        self._run(check)

    # -- shared steps ------------------------------------------------------------------------

    async def _primed(self, kit: ConformanceHub, operation: str) -> dict[str, Any]:
        """The operation's sample, called once without faults: a token or session the
        adapter caches is then in place, so the short per-attempt timeout of the `hang`
        fault is spent on the operation's own request, and faults meet that request."""
        payload = await kit.resolve(self.samples[operation])
        await kit.call(operation, payload)
        return payload

    @staticmethod
    def _assert_met(met: Injection) -> None:
        assert met.count, (
            f"no upstream request met the {met.fault} fault: the operation made none that "
            "`fault_paths` selects"
        )

    def _assert_attempts(self, spec: OperationSpec, met: Injection, what: str = "") -> None:
        expected = self.retry_attempts if spec.idempotent else 1
        kind = "idempotent" if spec.idempotent else "not idempotent"
        prefix = f"{what}: " if what else ""
        assert met.count == expected, (
            f"{prefix}{spec.name} is {kind}: expected {expected} upstream attempt(s), "
            f"saw {met.count}"
        )
