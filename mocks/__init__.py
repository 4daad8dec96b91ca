"""Mock servers of the national systems the hub fronts, plus their shared synthetic data.

`MOCKS` names each mock, its default port and its app factory (as an import string, so
importing this package stays cheap); `create_mock_app(name, **options)` builds one as an
ASGI app, e.g. for `httpx.ASGITransport` in tests. `python -m mocks` serves them
(see mocks.serve).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MOCKS", "MockSpec", "app_from_env", "create_mock_app", "mock_names", "mock_ports"]


@dataclass(frozen=True, slots=True)
class MockSpec:
    """One mock: its service name, default port and `module:function` app factory."""

    name: str
    default_port: int
    factory: str | None
    description: str = ""

    def load_factory(self) -> Callable[..., Any]:
        """Import the factory; LookupError when this mock is not implemented yet."""
        if self.factory is None:
            raise LookupError(f"the {self.name} mock is not implemented yet")
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


MOCKS: dict[str, MockSpec] = {
    spec.name: spec
    for spec in (
        MockSpec(
            "population",
            8101,
            "mocks.population.app:create_app",
            "National Population Database (SOAP 1.1)",
        ),
        MockSpec(
            "civil-status",
            8102,
            "mocks.civil_status.app:create_app",
            "Electronic civil-status registry (REST, OAuth2)",
        ),
        MockSpec(
            "judicial-records",
            8103,
            "mocks.judicial_records.app:create_app",
            "Judicial-records system (REST, async)",
        ),
        MockSpec(
            "business-registration",
            8104,
            "mocks.business_registration.app:create_app",
            "National business registration (REST)",
        ),
        MockSpec(
            "payment",
            8105,
            "mocks.payment.app:create_app",
            "National public-service payment platform (REST)",
        ),
    )
}


def mock_names() -> list[str]:
    """Every registered mock name, in port order."""
    return sorted(MOCKS, key=lambda name: MOCKS[name].default_port)


def mock_ports(base: int | None = None) -> dict[str, int]:
    """Each mock's port, by name: its default port, or, given `base`, `base`, `base + 1`, …
    in port order (`python -m mocks --base-port BASE`)."""
    if base is None:
        return {name: MOCKS[name].default_port for name in mock_names()}
    return {name: base + offset for offset, name in enumerate(mock_names())}


def create_mock_app(name: str, **options: Any) -> Any:
    """Build the named mock's ASGI app.

    `options` go to the factory (e.g. `user`, `secret`, `faults` for population). Two
    conveniences: `fault_options=["latency=200", ...]` is parsed into `faults`, and options
    the factory does not accept are refused with a TypeError naming them.
    """
    spec = MOCKS.get(name)
    if spec is None:
        raise LookupError(f"unknown mock {name!r} (known: {', '.join(mock_names())})")
    factory = spec.load_factory()
    fault_options: Sequence[str] = options.pop("fault_options", ())
    if fault_options:
        from mocks.faults import parse_fault_options  # pydantic import only when needed

        options["faults"] = parse_fault_options(fault_options)
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"the {name} mock does not take option(s): {', '.join(unknown)}")
    return factory(**options)


def app_from_env() -> Any:
    """Factory for `uvicorn --factory` worker processes, which cannot receive arguments.

    Reads `MOCKS_APP` (the mock name) and `MOCKS_OPTIONS` (a JSON object of options, as
    create_mock_app takes them); `python -m mocks NAME --workers N` sets both.
    """
    name = os.environ["MOCKS_APP"]
    options = json.loads(os.environ.get("MOCKS_OPTIONS") or "{}")
    return create_mock_app(name, **options)
