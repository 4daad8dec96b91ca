"""The whole adapter contract: what an integrator writes to put a system behind the hub.

An adapter is a class with a few declarations and one async method per operation::

    class LandRegistryAdapter(Adapter):
        name = "land-registry"
        version = "1.0.0"
        title = "Provincial land registry"
        mapping = "land_registry.yaml"          # beside the adapter, or "pkg:file.yaml"
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

Modules: `base` (Adapter, and what it is handed: AdapterConfig, CallContext; Health),
`operation` (the `@operation` decorator and the OperationSpec it declares), `capabilities`
(the capability bases AsyncAdapter and PaymentProvider). Import every name from here.
"""

from __future__ import annotations

from hub.adapter.base import Adapter, AdapterConfig, CallContext, Health
from hub.adapter.capabilities import AsyncAdapter, PaymentProvider
from hub.adapter.operation import OperationSpec, operation
from hub.events import ChangePage, EventType

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
