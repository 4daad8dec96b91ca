"""Events an adapter publishes: the declarations an integrator writes (the core does the rest).

An adapter names the event types its system produces, beside its operations::

    from hub.events import ChangePage, EventType, UpstreamEvent

    class LandRegistryAdapter(Adapter):
        name = "land-registry"
        event_types = (
            EventType(
                "parcel-transferred",          # published as `land-registry:parcel-transferred`
                payload=ParcelTransferred,     # a pydantic model: its JSON Schema is catalogued
                subjects=("seller_id", "buyer_id"),  # payload paths of the people it is about
                province="province_code",      # payload path of the province code to filter on
            ),
        )

        async def changes(self, cursor: str | None, limit: int) -> ChangePage:
            answer = await self.http.get("/changes", params={"after": cursor or 0, "limit": limit})
            ...
            return ChangePage(events=[UpstreamEvent("parcel-transferred", key, model)], cursor=last)

- `source="feed"` (the default): the core polls `changes(cursor, limit)` from every hub
  process in turn (the cursor row is leased), stores the page's events and moves the durable
  cursor in one transaction, so an event is never lost between two polls and a page read
  twice (a repeat, a crash before the commit) adds nothing: an event's id is derived from
  the service and upstream's own `key`, so it is the same every time upstream sends it.
- `source="push"`: the event comes from a push the hub already receives (a payment's
  callback, a job's result); the capability that handles the push publishes it.

`subjects` are dotted paths into the payload naming personal IDs: every delivery of the
event is an audit record about each of them (the person's access report shows who was
told). `personal_data=False` for events about no person (an enterprise's status): then a
subscriber needs no purpose. The hub refuses to load an adapter whose declarations do not
hold together (`Adapter.contract_problems`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChangePage",
    "EventType",
    "PaymentSettled",
    "RequestEnded",
    "UpstreamEvent",
    "event_type_problems",
    "value_at",
]

#: A local event type name: lower-case words joined by hyphens (`death-registered`).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class EventType:
    """One kind of event an adapter publishes (see the module's docstring)."""

    name: str
    payload: type[BaseModel]
    summary: str = ""
    personal_data: bool = True
    subjects: tuple[str, ...] = ()
    province: str | None = None
    source: Literal["feed", "push"] = "feed"
    #: The operation of the adapter's mapping file that maps upstream's entry to the
    #: payload, if it has one (checked with the mapping, like an operation's).
    mapping: str | None = None

    def qualified(self, service: str) -> str:
        """The name agencies subscribe to: `SERVICE:NAME`."""
        return f"{service}:{self.name}"

    def describe(self, service: str) -> dict[str, Any]:
        """The catalogue entry."""
        return {
            "name": self.qualified(service),
            "summary": self.summary or (self.payload.__doc__ or "").strip().partition("\n")[0],
            "personal_data": self.personal_data,
            "subjects": list(self.subjects),
            "province": self.province,
            "source": self.source,
            "payload_schema": self.payload.model_json_schema(),
        }


@dataclass(frozen=True)
class UpstreamEvent:
    """An event as an adapter read it: its local type name, upstream's own stable key for it
    (a sequence number, a record number plus change), and the canonical payload."""

    type: str
    key: str
    payload: BaseModel
    occurred_at: dt.datetime | None = None


@dataclass(frozen=True)
class ChangePage:
    """One page of an upstream change feed: its events, the cursor after them (None: the
    feed had nothing new, keep the old one) and whether more is waiting now."""

    events: Sequence[UpstreamEvent]
    cursor: str | None
    more: bool = False


class RequestEnded(BaseModel):
    """An asynchronous request (a job) ended: published to its owner only, by the
    AsyncAdapter capability, for the final statuses the adapter names (`final_events`).
    Beside these keys, upstream's final answer as the job's view carries it."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The hub's job id")
    service: str
    status: str
    personal_id: str | None = Field(None, description="The applicant")
    completed_at: str | None = None


class PaymentSettled(BaseModel):
    """A payment reached its outcome (paid or failed): published to the client that opened
    it, by the PaymentProvider capability. No payer's personal data."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The hub's payment id")
    status: str = Field(description="paid or failed")
    amount: int
    currency: str
    procedure_code: str
    dossier_id: str
    transaction_id: str | None = None
    paid_at: str | None = None


def value_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a payload (None where any part is missing)."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _path_problem(model: type[BaseModel], path: str) -> str | None:
    """Why a dotted path names no field of the model (None when it does)."""
    current: Any = model
    for part in path.split("."):
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return f"{path!r} is not a field of {model.__name__}"
        annotation = fields[part].annotation
        args = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
        current = next((a for a in [annotation, *args] if hasattr(a, "model_fields")), None)
    return None


def event_type_problems(declared: Sequence[EventType], *, has_feed: bool) -> list[str]:
    """What in an adapter's event declarations breaks the contract (empty when none)."""
    problems, seen = [], set()
    for event in declared:
        label = f"event type {event.name!r}"
        if not NAME_PATTERN.match(event.name) or len(event.name) > 64:
            problems.append(f"{label}: the name must be lower-case words joined by '-'")
        if event.name in seen:
            problems.append(f"{label} is declared twice")
        seen.add(event.name)
        if not (isinstance(event.payload, type) and issubclass(event.payload, BaseModel)):
            problems.append(f"{label}: the payload must be a pydantic model")
            continue
        if event.personal_data and not event.subjects:
            problems.append(f"{label}: personal data needs the subject path(s)")
        for path in (*event.subjects, *([event.province] if event.province else [])):
            if problem := _path_problem(event.payload, path):
                problems.append(f"{label}: {problem}")
        if event.source not in ("feed", "push"):
            problems.append(f"{label}: the source must be 'feed' or 'push'")
        if event.source == "feed" and not has_feed:
            problems.append(f"{label} comes from a change feed: implement `changes()`")
    return problems
