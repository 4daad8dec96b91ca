"""The plugin-facing names: exported, importable and documented (integrators read them)."""

import dataclasses
import inspect

import hub
from hub.adapter import Adapter

EXPECTED = {
    "Adapter",
    "AdapterConfig",
    "AsyncAdapter",
    "CallContext",
    "Health",
    "HubError",
    "NotFound",
    "OperationSpec",
    "PaymentProvider",
    "UpstreamBadResponse",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "__version__",
    "operation",
}


def test_public_names_are_exactly_these():
    assert set(hub.__all__) == EXPECTED
    for name in hub.__all__:
        assert hasattr(hub, name), name


def test_every_public_name_and_adapter_hook_has_a_docstring():
    for name in hub.__all__:
        obj = getattr(hub, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"hub.{name} has no docstring"
    for hook in ("startup", "shutdown", "health", "describe", "contract_problems"):
        assert inspect.getdoc(getattr(Adapter, hook)), f"Adapter.{hook} has no docstring"
    assert inspect.getdoc(hub.AsyncAdapter.parse_push)
    assert inspect.getdoc(hub.PaymentProvider.parse_notification)


def test_the_adapter_guide_documents_every_public_name():
    """docs/adapters.md's reference is kept in sync with the code by this test."""
    from pathlib import Path

    from hub import testing

    guide = (Path(__file__).resolve().parents[2] / "docs" / "adapters.md").read_text()
    names = [n for n in hub.__all__ if n != "__version__"]
    names += ["AdapterConformance", "hub_client"]
    assert set(names) <= set(testing.__all__) | set(hub.__all__)
    attributes = ["name", "version", "title", "description", "mapping", "upstream_schema", "Config"]
    attributes += ["required_operations", "final_statuses", "parse_push", "parse_notification"]
    parameters = list(inspect.signature(hub.operation).parameters)
    context = [f.name for f in dataclasses.fields(hub.CallContext)]
    for name in [*names, *attributes, *parameters, *context]:
        assert f"`{name}`" in guide, f"docs/adapters.md does not document `{name}`"
