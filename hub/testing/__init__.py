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
and the health probe; for each event type the adapter declares, its catalogue entry, the
events its change feed gives against the declared payload model and subjects, the feed's
cursor and repeats, and a garbage page as the adapter's error (`events` samples). The kit
builds the hub in-process itself (an SQLite file in pytest's `tmp_path`) and injects every
fault in a transport wrapped around the mock, so the mock needs no fault injection of its
own. Tests are plain functions that run their own event
loop, so no pytest asyncio plugin or mode is needed. See docs/conformance.md.

Only tests import this package (it imports pytest); the hub core never does.

Its modules: `faults` (the fault-injecting transport), `client` (the hub in-process:
`in_process_hub` and `kit_settings`, the one way to build it, which keeps every file it
writes in a temporary folder; `hub_client`, `ConformanceHub`, `asgi_lifespan`), `samples`,
`leaks` (what no error may show), `base` (the battery's plumbing), `pipeline_checks`,
`fault_checks` and `event_checks` (the checks), `conformance` (AdapterConformance, made of
them).
"""

from hub.testing.client import (
    ConformanceHub,
    InProcessHub,
    asgi_lifespan,
    hub_client,
    in_process_hub,
    kit_settings,
)
from hub.testing.conformance import AdapterConformance
from hub.testing.faults import Fault, FaultTransport, Injection, path_prefixes
from hub.testing.samples import EventSample, Sample

__all__ = [
    "AdapterConformance",
    "ConformanceHub",
    "EventSample",
    "Fault",
    "FaultTransport",
    "InProcessHub",
    "Injection",
    "Sample",
    "asgi_lifespan",
    "hub_client",
    "in_process_hub",
    "kit_settings",
    "path_prefixes",
]
