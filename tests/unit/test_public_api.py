"""The plugin-facing names: exported, importable and documented (integrators read them)."""

import inspect

import hub
from hub.adapter import Adapter

EXPECTED = {
    "Adapter",
    "AdapterConfig",
    "CallContext",
    "Health",
    "HubError",
    "NotFound",
    "OperationSpec",
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
    for hook in ("startup", "shutdown", "health", "describe"):
        assert inspect.getdoc(getattr(Adapter, hook)), f"Adapter.{hook} has no docstring"
