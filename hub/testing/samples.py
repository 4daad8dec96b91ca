"""Samples: the inputs a conformance subclass declares per operation, and how they resolve."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.testing.client import ConformanceHub

#: A sample input: the operation's input as a JSON-like mapping, or a function of the
#: running kit returning one (sync or async) for inputs that need upstream state first (a
#: reference from an earlier call). It runs before any fault is switched on.
Sample = Mapping[str, Any] | Callable[["ConformanceHub"], Mapping[str, Any] | Awaitable[Any]]


async def resolve_sample(kit: ConformanceHub, sample: Sample) -> dict[str, Any]:
    """A sample as a fresh input mapping (a sample function is run now, against `kit`)."""
    if callable(sample):
        value = sample(kit)
        if inspect.isawaitable(value):
            value = await value
    else:
        value = sample
    if not isinstance(value, Mapping):
        raise TypeError(f"a sample must be a mapping, not {type(value).__name__}")
    return copy.deepcopy(dict(value))


#: An event sample (`events` of a conformance subclass), by the event type's `source`:
#: - "feed": a function of the running kit (sync or async) that makes one event of the type
#:   happen upstream, e.g. `POST /_mock/events` on the mock (`kit.mock_request`); the kit
#:   then reads the adapter's change feed and holds what it finds to the declaration.
#: - "push": the payload the capability publishes when the push comes (a mapping, or a
#:   function of the running kit returning one): held to the payload model, its JSON
#:   Schema and the subject paths.
EventSample = Mapping[str, Any] | Callable[["ConformanceHub"], Any]


async def run_event_sample(kit: ConformanceHub, sample: EventSample) -> Any:
    """Run an event sample's function now, against `kit` (a mapping is returned as is)."""
    if not callable(sample):
        return sample
    value = sample(kit)
    if inspect.isawaitable(value):
        value = await value
    return value
