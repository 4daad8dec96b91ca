"""LGSP Hub: one authenticated, audited REST API in front of the national systems.

The public, plugin-facing names are re-exported here; everything else is internal.
"""

__version__ = "0.1.0"

from hub.adapter import (
    Adapter,
    AdapterConfig,
    AsyncAdapter,
    CallContext,
    Health,
    OperationSpec,
    PaymentProvider,
    operation,
)
from hub.errors import (
    HubError,
    NotFound,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
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
]
