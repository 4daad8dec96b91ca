"""Adapter discovery and set-up.

Adapters are found through the `hub.adapters` entry-point group; the built-in ones are
registered there by this project's own pyproject.toml, exactly as a third-party package's
would be, so the core never imports an adapter by name. The registry is built inside the app
factory (never at import time) and refuses duplicates and broken adapters at start-up with a
message naming the culprit.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.resources
import logging
import sys
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from hub.adapter import Adapter, AdapterConfig, OperationSpec
from hub.core.config import Settings
from hub.core.http1 import Http1Backend
from hub.core.proxy import ProxyRules, masked
from hub.errors import UnknownOperation, UnknownService, echoable, echoed
from hub.mapping import Mapping, MappingError, load_mapping
from hub.resilience.circuit import CircuitBreaker, CircuitPolicy
from hub.upstream import AiohttpBackend, HttpxBackend, UpstreamClient

ENTRY_POINT_GROUP = "hub.adapters"

log = logging.getLogger("hub.upstream")


class AdapterLoadError(Exception):
    """An adapter cannot be loaded, configured or checked; start-up stops with this message."""


def discover(enabled: Iterable[str] | None = None) -> dict[str, type[Adapter]]:
    """Load every adapter class registered in the `hub.adapters` entry-point group."""
    wanted = set(enabled) if enabled is not None else None
    found: dict[str, type[Adapter]] = {}
    for ep in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        if wanted is not None and ep.name not in wanted:
            continue
        try:
            cls = ep.load()
        except Exception as exc:
            raise AdapterLoadError(
                f"adapter {ep.name!r} ({ep.value}) failed to import: {exc}"
            ) from exc
        _register(found, cls, origin=f"entry point {ep.name!r} ({ep.value})")
        if cls.name != ep.name:
            raise AdapterLoadError(
                f"entry point {ep.name!r} names adapter {cls.name!r}: they must agree"
            )
    if wanted:
        missing = wanted - set(found)
        if missing:
            raise AdapterLoadError(f"enabled adapters not installed: {', '.join(sorted(missing))}")
    return found


def _register(registry: dict[str, type[Adapter]], cls: Any, *, origin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise AdapterLoadError(f"{origin} is not an Adapter subclass")
    for attr in ("name", "version"):
        if not isinstance(getattr(cls, attr, None), str):
            raise AdapterLoadError(f"{origin}: adapter must declare `{attr}`")
    if not cls.operations:
        raise AdapterLoadError(f"{origin}: adapter {cls.name!r} declares no operation")
    problems = cls.contract_problems()
    if problems:
        raise AdapterLoadError(f"{origin}: adapter {cls.name!r}: {'; '.join(problems)}")
    if cls.name in registry:
        raise AdapterLoadError(
            f"two adapters are named {cls.name!r}: "
            f"{registry[cls.name].__module__} and {cls.__module__}"
        )
    registry[cls.name] = cls


def resource_path(reference: str, owner: type[Adapter] | None = None) -> Any:
    """The file a "package:file" reference names; a bare file sits beside `owner`, the
    adapter declaring it (in its module's package)."""
    package, _, resource = reference.rpartition(":")
    if not package:
        if owner is None:
            raise FileNotFoundError(f"{reference!r} names no package")
        module = sys.modules[owner.__module__]
        package = owner.__module__ if hasattr(module, "__path__") else module.__package__ or ""
    return importlib.resources.files(package).joinpath(resource)


def resolve_mapping(cls: type[Adapter]) -> Mapping | None:
    """Load and check an adapter's mapping file against its operations' output models."""
    if cls.mapping is None:
        return None
    path = resource_path(cls.mapping, cls)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise AdapterLoadError(
            f"adapter {cls.name!r}: mapping {cls.mapping!r} not found ({exc})"
        ) from exc
    models = {spec.name: spec.output_model for spec in cls.operations.values()}
    # An event type's payload may have a mapping operation of its own (`mapping=`).
    models |= {e.mapping: e.payload for e in cls.event_types if e.mapping}
    try:
        return load_mapping(str(path), text, models=models)
    except MappingError as exc:
        raise AdapterLoadError(f"adapter {cls.name!r}: bad mapping: {exc}") from exc


def build_config(cls: type[Adapter], overrides: MappingABC[str, Any] | None) -> AdapterConfig:
    """The adapter's configuration: its `HUB_<NAME>_*` environment, then explicit overrides."""
    try:
        return cls.Config(**dict(overrides or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AdapterLoadError(f"adapter {cls.name!r}: bad configuration: {problems}") from None


def build_http_client(
    settings: Settings,
    config: AdapterConfig,
    transport: httpx.AsyncBaseTransport | None,
    *,
    proxies: ProxyRules | None = None,
) -> UpstreamClient:
    """The adapter's upstream client: one pooled, keep-alive client per upstream. An upstream
    behind a forward proxy (`proxies`, by default HUB_UPSTREAM_PROXY's or the environment's:
    hub/core/proxy.py) gets httpx's pool with httpx's proxy support, whatever
    HUB_HTTP_TRANSPORT says: the hub's own client speaks straight to upstream only."""
    if proxies is None:
        proxies = ProxyRules.build(settings.upstream_proxy)
    proxy = proxies.for_url(config.base_url) if transport is None else None
    backend: Http1Backend | AiohttpBackend | HttpxBackend
    if transport is not None:
        backend = HttpxBackend(transport, max_response_bytes=settings.upstream_max_response_bytes)
    elif proxy is None and settings.http_transport == "http1":
        backend = Http1Backend(
            max_connections=settings.upstream_max_connections,
            max_response_bytes=settings.upstream_max_response_bytes,
        )
    elif proxy is None and settings.http_transport == "aiohttp":
        backend = AiohttpBackend(
            max_connections=settings.upstream_max_connections,
            max_response_bytes=settings.upstream_max_response_bytes,
        )
    else:
        limits = httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        )
        backend = HttpxBackend(
            httpx.AsyncHTTPTransport(limits=limits, proxy=proxy),
            max_response_bytes=settings.upstream_max_response_bytes,
        )
    total = config.timeout_s or settings.upstream_timeout_s
    timeout = httpx.Timeout(
        config.read_timeout_s or total,
        connect=config.connect_timeout_s or settings.upstream_connect_timeout_s,
    )
    return UpstreamClient(config.base_url, timeout=timeout, backend=backend)


def log_proxy_routes(proxies: ProxyRules, base_urls: MappingABC[str, str]) -> None:
    """One start-up line naming the adapters that go through a proxy (its URL masked), and
    those NO_PROXY keeps direct; nothing when no proxy is configured."""
    if not proxies.proxies:
        return
    routes: dict[str, list[str]] = {}
    for name, url in base_urls.items():
        proxy = proxies.for_url(url)
        routes.setdefault(masked(proxy) if proxy else "", []).append(name)
    direct = routes.pop("", [])
    through = "; ".join(f"{', '.join(names)} through {proxy}" for proxy, names in routes.items())
    log.info("upstream proxy: %s; direct: %s", through or "no adapter", ", ".join(direct) or "none")


def check_config(settings: Settings, name: str, config: AdapterConfig) -> None:
    """Refuse, in production, an adapter whose secrets are still the mocks' defaults."""
    if settings.environment != "production":
        return
    defaults = config.default_secrets()
    if defaults:
        raise AdapterLoadError(
            f"adapter {name!r}: {', '.join(defaults)} must not keep the development default "
            "(the mock's) in production: set it in the environment or the secrets directory"
        )


def preflight(settings: Settings) -> None:
    """What `hub serve` checks before starting any process: the settings, and every enabled
    adapter's configuration (raises ConfigurationError or AdapterLoadError)."""
    settings.check()
    for name, cls in discover(settings.enabled_adapters).items():
        check_config(settings, name, build_config(cls, settings.adapters.get(name)))


@dataclass
class LoadedAdapter:
    """An adapter instance with what the core needs to call it."""

    cls: type[Adapter]
    instance: Adapter
    timeout_s: float
    circuit: CircuitBreaker
    #: Every attempt of one call with its retries (None: HUB_RETRY_DEADLINE_S).
    deadline_s: float | None = None
    #: Per operation, one attempt's time where it is not `timeout_s`.
    operation_timeouts: dict[str, float] = field(default_factory=dict)

    def timeout_for(self, spec: OperationSpec) -> float:
        """One attempt's time for an operation: configuration, then the adapter author's
        `@operation(timeout_s=...)`, then the adapter's."""
        return self.operation_timeouts.get(spec.name) or spec.timeout_s or self.timeout_s

    def spec(self, operation: str) -> OperationSpec:
        spec = self.cls.operations.get(operation)
        if spec is None:
            raise UnknownOperation(unknown_operation(self.cls.name, operation, self.cls.operations))
        return spec


def unknown_operation(service: str, operation: str, known: Iterable[str]) -> str:
    """The UNKNOWN_OPERATION detail: the name asked for when it is quotable (hub.errors.echoable:
    the caller's own path segment, so only a name's shape), and the closest
    operation's name when one is close (`lookup_parcel` -> did you mean `lookup-parcel`)."""
    if not echoable(operation):
        return f"service {service!r} has no operation by that name"
    detail = f"service {service!r} has no operation {operation!r}"
    close = difflib.get_close_matches(operation.replace("_", "-"), list(known), n=1)
    return f"{detail}; did you mean `{close[0]}`?" if close else detail


class AdapterRegistry:
    """The adapters of one app, by name."""

    def __init__(self) -> None:
        self._adapters: dict[str, LoadedAdapter] = {}

    @classmethod
    def build(
        cls,
        settings: Settings,
        classes: MappingABC[str, type[Adapter]],
        transports: MappingABC[str, httpx.AsyncBaseTransport] | None = None,
    ) -> AdapterRegistry:
        registry = cls()
        try:
            proxies = ProxyRules.build(settings.upstream_proxy)
        except ValueError as exc:
            raise AdapterLoadError(str(exc)) from None
        base_urls: dict[str, str] = {}  # of the adapters a proxy may apply to
        for name, adapter_cls in classes.items():
            config = build_config(adapter_cls, settings.adapters.get(name))
            check_config(settings, name, config)
            mapping = resolve_mapping(adapter_cls)
            transport = (transports or {}).get(name)
            http = build_http_client(settings, config, transport, proxies=proxies)
            if transport is None:  # a test's transport is where the calls go, proxy or not
                base_urls[name] = config.base_url
            instance = adapter_cls(config=config, http=http, mapping=mapping)
            timeout = config.timeout_s or settings.upstream_timeout_s
            policy = CircuitPolicy(
                window_s=settings.circuit_window_s,
                min_calls=settings.circuit_min_calls,
                failure_ratio=settings.circuit_failure_ratio,
                consecutive_failures=settings.circuit_consecutive_failures,
                cooldown_s=settings.circuit_cooldown_s,
                max_cooldown_s=settings.circuit_max_cooldown_s,
                max_concurrent=config.max_concurrent or settings.upstream_max_concurrent,
            )
            circuit = CircuitBreaker(name, policy)
            unknown = sorted(set(config.operation_timeouts) - set(adapter_cls.operations))
            if unknown or any(t <= 0 for t in config.operation_timeouts.values()):
                raise AdapterLoadError(
                    f"adapter {name!r}: operation_timeouts names no operation {unknown[0]!r}"
                    if unknown
                    else f"adapter {name!r}: operation_timeouts must be positive"
                )
            registry._adapters[name] = LoadedAdapter(
                adapter_cls,
                instance,
                timeout,
                circuit,
                deadline_s=config.deadline_s,
                operation_timeouts=dict(config.operation_timeouts),
            )
        log_proxy_routes(proxies, base_urls)
        return registry

    def get(self, name: str) -> LoadedAdapter:
        try:
            return self._adapters[name]
        except KeyError:
            raise UnknownService(
                echoed(name, "no service named {!r}", "no service by that name")
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._adapters.values())

    def names(self) -> list[str]:
        return list(self._adapters)

    async def startup(self) -> None:
        for loaded in self:
            try:
                await loaded.instance.startup()
            except Exception as exc:
                name = loaded.cls.name
                raise AdapterLoadError(f"adapter {name!r} failed to start: {exc}") from exc

    async def aclose(self) -> None:
        for loaded in self:
            await loaded.instance.shutdown()
            await loaded.instance.http.aclose()


def classes_from(adapters: Iterable[type[Adapter]]) -> dict[str, type[Adapter]]:
    """Register adapter classes given directly (tests, embedding) with the same checks."""
    found: dict[str, type[Adapter]] = {}
    for cls in adapters:
        _register(found, cls, origin=f"{cls.__module__}.{cls.__qualname__}")
    return found
