"""The whole adapter contract: what an integrator writes to put a system behind the hub.

An adapter is a class with a few declarations and one async method per operation::

    class LandRegistryAdapter(Adapter):
        name = "land-registry"
        version = "1.0.0"
        title = "Provincial land registry"
        mapping = "land_registry.yaml"          # in the `mappings` package, or "pkg:file.yaml"
        Config = LandRegistryConfig              # an AdapterConfig subclass

        @operation(subject="personal_id")
        async def parcels(self, request: ParcelQuery, ctx: CallContext) -> ParcelList:
            response = await self.http.get("/parcels", params=…)
            raise_for_status(response)            # hub.upstream: the one status rule
            data = response_json(response)        # bounded: never response.json()
            mapped = self.compiled_mapping.operation("parcels").apply(data)
            return ParcelList.model_validate(mapped)

        async def health(self) -> Health: …

and one line in its package's pyproject.toml::

    [project.entry-points."hub.adapters"]
    land-registry = "land_registry:LandRegistryAdapter"

The operation's input and output models come from the method's type hints. The adapter
receives its HTTP client (`self.http`, a hub.upstream.UpstreamClient: httpx's call API and
response and exception types, with base URL, pool and timeouts set by the core) and its
compiled mapping (`self.compiled_mapping`). It never builds a client, retries, writes audit
records or catches transport errors: the core wraps every operation with authentication,
purpose and policy checks, input validation, timeout, retry (idempotent operations only),
error translation, audit and metrics. An adapter raises `hub.errors.NotFound` when upstream
has no such subject, `UpstreamBadResponse` when upstream's answer is off-contract, and lets
httpx and lxml errors propagate (the core translates them).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, get_type_hints

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from hub.audit.subjects import path_problem
from hub.capabilities.payments.models import (
    PaymentInitiated,
    PaymentNotification,
    PaymentOrder,
    PaymentStatus,
    PaymentStatusQuery,
    Receipt,
    ReceiptQuery,
    ReconciliationList,
    ReconciliationQuery,
)
from hub.core.config import SecretFileSettings
from hub.events import ChangePage, EventType, PaymentSettled, RequestEnded, event_type_problems
from hub.mapping import Mapping
from hub.upstream import UpstreamClient

__all__ = [
    "Adapter",
    "AdapterConfig",
    "AsyncAdapter",
    "CallContext",
    "ChangePage",
    "EventType",
    "Health",
    "OperationSpec",
    "PaymentProvider",
    "operation",
]


class AdapterConfig(SecretFileSettings):
    """Base of an adapter's configuration; subclasses set `env_prefix` (`HUB_<NAME>_`).

    Secrets are `SecretStr` fields: they never appear in logs, reprs or the catalogue. Each
    setting is read from its `HUB_<NAME>_<FIELD>` variable or, failing that, from a file of
    that name in the secrets directory (hub.config.secrets_dir). A secret's default is the
    mock's well-known value: a production hub refuses to start with it (`default_secrets`).
    """

    model_config = SettingsConfigDict(extra="forbid")

    base_url: str = Field(description="Upstream base URL")
    timeout_s: float | None = Field(
        None, gt=0, description="Total time of one attempt; overrides HUB_UPSTREAM_TIMEOUT_S"
    )
    connect_timeout_s: float | None = Field(
        None, gt=0, description="Connecting; overrides HUB_UPSTREAM_CONNECT_TIMEOUT_S"
    )
    read_timeout_s: float | None = Field(
        None, gt=0, description="Waiting for each read from the socket (default: timeout_s)"
    )
    deadline_s: float | None = Field(
        None, gt=0, description="Every attempt with its retries; overrides HUB_RETRY_DEADLINE_S"
    )
    operation_timeouts: dict[str, float] = Field(
        default_factory=dict,
        description='Per operation, the total time of one attempt: {"search": 20} (JSON)',
    )
    max_concurrent: int | None = Field(
        None, ge=1, description="Overrides HUB_UPSTREAM_MAX_CONCURRENT (the bulkhead)"
    )

    def default_secrets(self) -> list[str]:
        """The variables of `SecretStr` settings still holding their declared default (the
        mocks' well-known values): names only, never the values."""
        prefix = str(self.model_config.get("env_prefix", ""))
        still = []
        for name, info in type(self).model_fields.items():
            value, default = getattr(self, name), info.default
            if (
                isinstance(value, SecretStr)
                and isinstance(default, SecretStr)
                and value.get_secret_value() == default.get_secret_value()
            ):
                still.append(f"{prefix}{name}".upper())
        return still


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling and why; handed to every operation (e.g. for upstream request ids)."""

    request_id: str
    client_id: str
    client_name: str = ""
    purpose: str | None = None
    officer_id: str | None = None
    dossier_id: str | None = None
    #: The hub's id of what the call belongs to (the job of an asynchronous request). An
    #: adapter sends it upstream where the protocol has room for the caller's own reference,
    #: so that a pushed result can be matched even when the submit's answer was lost.
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """The result of a health probe."""

    ok: bool
    detail: str = ""
    latency_ms: float | None = None


@dataclass(frozen=True)
class OperationSpec:
    """An operation as the core sees it, built by the `@operation` decorator."""

    name: str
    method: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    idempotent: bool
    personal_data: bool
    subject: str | None
    summary: str
    description: str = ""
    route: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The adapter author's timeout of one attempt (configuration overrides it).
    timeout_s: float | None = None
    #: The resource route that also serves it (`resource=`), and its query renames.
    resource: str | None = None
    resource_query: dict[str, str] = field(default_factory=dict)
    #: The section of the citizen profile it answers (`profile=`).
    profile: str | None = None
    #: Paths in the output naming further data subjects (`subject_from=`).
    subject_from: tuple[str, ...] = ()
    #: The output field with a verification's overall verdict (`verification=`).
    verification: str | None = None


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def operation(
    *,
    name: str | None = None,
    idempotent: bool = True,
    personal_data: bool = True,
    subject: str | None = None,
    route: str | None = None,
    timeout_s: float | None = None,
    resource: str | None = None,
    resource_query: MappingABC[str, str] | None = None,
    profile: str | None = None,
    subject_from: str | Sequence[str] = (),
    verification: str | None = None,
) -> Callable[[F], F]:
    """Declare an adapter method as an operation.

    - `name`: the operation's public name (default: the method name, `_` -> `-`).
    - `idempotent`: safe to retry on a transient failure (reads are; a payment is not).
    - `personal_data`: the call touches personal data, so it needs `X-Purpose`.
    - `subject`: the input field naming the data subject, recorded in the audit trail.
    - `subject_from`: where the output names further data subjects, for the answers that
      disclose people the input does not name: a dotted path to their personal IDs, or
      several (`("husband.personal_id", "wife.personal_id")`); a path steps through lists
      (`"persons.personal_id"`). Each person found is a subject of the call's audit record,
      so their access report lists it (hub.audit.subjects).
    - `route`: the hub's own resource route that serves this operation because the hub keeps
      its state and its owner (a job, a payment). The generic `POST /v1/services/...` route
      refuses it (403), so no client can reach another client's payment or certificate by
      its upstream reference, or start one the hub does not follow.
    - `timeout_s`: this operation's time for one attempt, where it differs from the
      adapter's (a slow search); `HUB_<NAME>_OPERATION_TIMEOUTS` overrides it.
    - `resource`: a resource route that serves it too, beside the generic route, through
      the same pipeline: `"GET /v1/citizens/{personal_id}"` (path parameters and, for GET,
      query parameters named as the input's fields fill the input) or `"POST /v1/…"` (the
      body is the input). `resource_query` renames query parameters: `{"name":
      "name_prefix"}` reads `?name=` into the input's `name_prefix`.
    - `profile`: the section of the citizen profile (`GET /v1/citizens/{id}/profile`) this
      operation answers, called with `{"personal_id": …}` beside the other sections.
    - `verification`: the operation checks details stated about its `subject` against the
      record, and this output field holds the overall verdict (`"match"`). The core then
      answers that field alone unless the client's field grant names more, throttles the
      operation per client and per person, and alerts on enumeration patterns
      (hub.security.verification): a verification must not be an oracle.
    """
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError("an operation's timeout must be positive")
    if resource is not None:
        method, _, path = resource.partition(" ")
        if method not in ("GET", "POST") or not path.startswith("/v1/"):
            raise ValueError(f"resource {resource!r} must be 'GET /v1/…' or 'POST /v1/…'")
        if method == "POST" and "{" in path:
            raise ValueError(f"resource {resource!r}: a POST route takes its input as the body")

    def mark(func: F) -> F:
        is_async: bool = inspect.iscoroutinefunction(func)  # a bool: no narrowing of `func`
        if not is_async:
            raise TypeError(f"operation {func.__qualname__} must be `async def`")
        # read back by Adapter.__init_subclass__
        setattr(  # noqa: B010
            func,
            "__hub_operation__",
            {
                "name": name or func.__name__.replace("_", "-"),
                "idempotent": idempotent,
                "personal_data": personal_data,
                "subject": subject,
                "route": route,
                "timeout_s": timeout_s,
                "resource": resource,
                "resource_query": dict(resource_query or {}),
                "profile": profile,
                "subject_from": (subject_from,)
                if isinstance(subject_from, str)
                else tuple(subject_from),
                "verification": verification,
            },
        )
        return func

    return mark


def _spec_from_method(method_name: str, func: Callable[..., Any]) -> OperationSpec:
    meta = func.__hub_operation__  # type: ignore[attr-defined]
    hints = get_type_hints(func)
    params = [p for p in inspect.signature(func).parameters if p != "self"]
    input_model = hints.get(params[0]) if params else None
    output_model = hints.get("return")
    for what, model in (("input", input_model), ("output", output_model)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"operation {func.__qualname__}: the {what} must be a pydantic model")
    if meta["subject"] and meta["subject"] not in input_model.model_fields:  # type: ignore[union-attr]
        raise TypeError(
            f"operation {func.__qualname__}: subject {meta['subject']!r} not an input field"
        )
    for path in meta.get("subject_from", ()):
        problem = path_problem(output_model, path)  # type: ignore[arg-type]
        if problem is not None:
            raise TypeError(f"operation {func.__qualname__}: subject_from {path!r}: {problem}")
    fields = input_model.model_fields  # type: ignore[union-attr]
    verdict = meta.get("verification")
    if verdict is not None and (
        not meta["subject"] or verdict not in getattr(output_model, "model_fields", {})
    ):
        raise TypeError(
            f"operation {func.__qualname__}: a verification names its subject and a verdict "
            "field of its output"
        )
    if meta.get("profile") and "personal_id" not in fields:
        raise TypeError(f"operation {func.__qualname__}: a profile section takes `personal_id`")
    for query_name, field_name in meta.get("resource_query", {}).items():
        if field_name not in fields:
            raise TypeError(f"operation {func.__qualname__}: {query_name!r} renames no field")
    doc = inspect.getdoc(func) or ""
    summary, _, description = doc.partition("\n")
    return OperationSpec(
        name=meta["name"],
        method=method_name,
        input_model=input_model,  # type: ignore[arg-type]
        output_model=output_model,  # type: ignore[arg-type]
        idempotent=meta["idempotent"],
        personal_data=meta["personal_data"],
        subject=meta["subject"],
        summary=summary.strip(),
        description=description.strip(),
        route=meta["route"],
        timeout_s=meta.get("timeout_s"),
        resource=meta.get("resource"),
        resource_query=meta.get("resource_query", {}),
        profile=meta.get("profile"),
        subject_from=meta.get("subject_from", ()),
        verification=meta.get("verification"),
    )


class Adapter:
    """Base class of every adapter. Subclass, declare, decorate operations, implement health()."""

    name: ClassVar[str]
    version: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    mapping: ClassVar[str | None] = None
    #: The upstream's own description, to check the mapping's paths against (`hub mappings
    #: check`): a WSDL or XSD for XML, a JSON Schema for JSON; "package:file" like `mapping`.
    upstream_schema: ClassVar[str | None] = None
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    operations: ClassVar[dict[str, OperationSpec]] = {}
    #: The operations a capability base class (AsyncAdapter, PaymentProvider) requires of
    #: its subclasses: name -> (input, output) models the operation's own must be or
    #: subclass (None: any). The hub refuses to load an adapter that breaks it.
    required_operations: ClassVar[
        MappingABC[str, tuple[type[BaseModel], type[BaseModel]] | None]
    ] = {}
    #: The events this adapter publishes (hub.events): agencies subscribe to them.
    event_types: ClassVar[tuple[EventType, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, OperationSpec] = {}
        for attr, value in inspect.getmembers(cls, inspect.iscoroutinefunction):
            if hasattr(value, "__hub_operation__"):
                spec = _spec_from_method(attr, value)
                if spec.name in found:
                    raise TypeError(f"{cls.__name__}: two operations named {spec.name!r}")
                found[spec.name] = spec
        cls.operations = found

    def __init__(
        self, *, config: AdapterConfig, http: UpstreamClient, mapping: Mapping | None
    ) -> None:
        self.config = config
        self.http = http
        self._mapping = mapping

    @property
    def compiled_mapping(self) -> Mapping:
        """The adapter's compiled mapping (checked at start-up)."""
        if self._mapping is None:
            raise RuntimeError(f"adapter {self.name} declares no mapping")
        return self._mapping

    async def startup(self) -> None:
        """Called once when the hub starts (after the client is built). Optional."""

    async def shutdown(self) -> None:
        """Called once when the hub stops. Optional."""

    async def health(self) -> Health:
        """Probe upstream cheaply (a WSDL fetch, a status URL). Must not touch personal data."""
        raise NotImplementedError

    async def changes(self, cursor: str | None, limit: int) -> ChangePage:
        """Read upstream's change feed after `cursor` (None: from its start), at most `limit`
        events: what the core polls for event types with `source="feed"` (hub.events)."""
        raise NotImplementedError

    @classmethod
    def contract_problems(cls) -> list[str]:
        """What in this class breaks the contract of the capabilities it subclasses (empty
        when none): a required operation missing, or declared with other models."""
        problems = []
        for name, models in cls.required_operations.items():
            spec = cls.operations.get(name)
            if spec is None:
                problems.append(f"operation {name!r} is required and missing")
            elif models is not None:
                wanted_in, wanted_out = models
                if not issubclass(spec.input_model, wanted_in):
                    problems.append(f"operation {name!r} must take {wanted_in.__name__}")
                if not issubclass(spec.output_model, wanted_out):
                    problems.append(f"operation {name!r} must answer {wanted_out.__name__}")
        has_feed = cls.changes is not Adapter.changes
        return problems + event_type_problems(cls.event_types, has_feed=has_feed)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry (without live status)."""
        return {
            "name": cls.name,
            "version": cls.version,
            "title": cls.title,
            "description": cls.description,
            "operations": [
                {
                    "name": spec.name,
                    "summary": spec.summary,
                    "idempotent": spec.idempotent,
                    "personal_data": spec.personal_data,
                    "route": spec.route,
                    "input_schema": spec.input_model.model_json_schema(),
                    "output_schema": spec.output_model.model_json_schema(),
                }
                for spec in cls.operations.values()
            ],
            "events": [event.describe(cls.name) for event in cls.event_types],
        }


class AsyncAdapter(Adapter):
    """An adapter whose upstream answers later: a capability the core serves for any of them.

    Declare a `submit` operation (starts a request upstream; its answer names upstream's
    `reference`) and a `status` operation (reads a request's state; its answer has
    `reference` and `status`), and implement `parse_push`. The core then keeps each request
    as a job owned by the client that made it (hub.capabilities.jobs): it serves
    `POST /v1/jobs/{name}` (submit, 202), `GET /v1/jobs/{name}/{job_id}` (the job, with the
    result once final) and `POST /v1/jobs/{name}/results` (upstream's signed push, no API
    key), polls jobs no push has finished, and notifies the client's `callback_url` by a
    signed webhook. `route=` on `submit` and `status` keeps the generic call route off them.
    """

    required_operations: ClassVar[
        MappingABC[str, tuple[type[BaseModel], type[BaseModel]] | None]
    ] = {"submit": None, "status": None}
    #: Where upstream pushes results, beside `POST /v1/jobs/{name}/results` (optional; e.g.
    #: the path the real system is configured to call).
    push_route: ClassVar[str | None] = None
    #: The statuses that end a job (after them, nothing is polled or applied).
    final_statuses: ClassVar[frozenset[str]] = frozenset(
        {"issued", "rejected", "completed", "failed"}
    )
    #: The events a request's end publishes to its owner, by final status: `{"issued":
    #: "certificate-issued"}`, each declared in `event_types` with `source="push"` and the
    #: payload hub.events.RequestEnded (subject `personal_id`).
    final_events: ClassVar[MappingABC[str, str]] = {}

    @classmethod
    def contract_problems(cls) -> list[str]:
        problems = super().contract_problems()
        declared = {e.name: e for e in cls.event_types}
        for status, name in cls.final_events.items():
            kind = declared.get(name)
            if status not in cls.final_statuses:
                problems.append(f"final_events: {status!r} is not a final status")
            if kind is None or kind.source != "push" or kind.payload is not RequestEnded:
                problems.append(
                    f"final_events: {name!r} must be a push event type with RequestEnded"
                )
        return problems

    def parse_push(self, body: bytes, headers: MappingABC[str, str]) -> BaseModel:
        """Verify and read a result upstream pushed to the hub: the model `status` answers.

        Raise `hub.errors.InvalidSignature` (or StaleMessage) for a push that does not
        verify and `SchemaViolation` for one that is not a result; replays are the core's
        business. The answer's `reference` names the job (or `portal_reference`, the job id
        the adapter sent upstream as `CallContext.correlation_id`)."""
        raise NotImplementedError


class PaymentProvider(Adapter):
    """A payment platform or bank gateway: a capability the core serves for any of them.

    Declare the four operations below with the canonical payment models
    (hub.canonical.payment) and implement `parse_notification`. The core owns each payment
    (hub.capabilities.payments): the Idempotency-Key, the reference sent upstream, the
    verified callback applied once, background queries when no callback comes, the
    client's signed webhook and the daily reconciliation (`hub payments reconcile
    --provider NAME`). Agencies reach every provider through `POST /v1/payments` (its body's
    `provider`, or HUB_PAYMENT_PROVIDER's by default); the provider's callback lands at
    `POST /v1/payments/ipn/{name}` (and the default provider's at `/v1/payments/ipn`).

    - `init(PaymentOrder) -> PaymentInitiated`: open a payment; the payer goes to `pay_url`.
    - `query(PaymentStatusQuery) -> PaymentStatus`: its state upstream.
    - `receipt(ReceiptQuery) -> Receipt`: the receipt of a paid payment.
    - `reconciliation(ReconciliationQuery) -> ReconciliationList`: a day's transactions.
    """

    #: `NAME:settled`, published to the paying client when a payment reaches its outcome.
    event_types = (
        EventType(
            "settled",
            payload=PaymentSettled,
            summary="A payment was paid or failed (to the client that opened it)",
            personal_data=False,
            source="push",
        ),
    )
    required_operations: ClassVar[
        MappingABC[str, tuple[type[BaseModel], type[BaseModel]] | None]
    ] = {
        "init": (PaymentOrder, PaymentInitiated),
        "query": (PaymentStatusQuery, PaymentStatus),
        "receipt": (ReceiptQuery, Receipt),
        "reconciliation": (ReconciliationQuery, ReconciliationList),
    }

    def parse_notification(self, body: bytes, headers: MappingABC[str, str]) -> PaymentNotification:
        """Verify and read the provider's callback (IPN).

        Raise `hub.errors.InvalidSignature` (or StaleMessage) for one that does not verify
        and `SchemaViolation` for one that is not a notification. Replays, and the match
        with the payment (reference, amount, transaction), are the core's business."""
        raise NotImplementedError
