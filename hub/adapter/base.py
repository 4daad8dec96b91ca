"""The Adapter base class, and what an adapter is handed: its config, each call's context.

`Adapter` collects its operations (hub.adapter.operation) when subclassed, receives its
`AdapterConfig`, HTTP client and compiled mapping, and describes itself for the catalogue;
`CallContext` is who calls and why, `Health` a health probe's answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from hub.adapter.operation import OperationSpec, spec_from_method
from hub.core.config import SecretFileSettings
from hub.events import ChangePage, EventType, event_type_problems
from hub.mapping import Mapping
from hub.upstream import UpstreamClient

__all__ = ["Adapter", "AdapterConfig", "CallContext", "Health"]


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
                spec = spec_from_method(attr, value)
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
