"""Field-level policy: a client receives only the canonical fields it was granted.

`hub clients create … --fields population:full_name,date_of_birth,permanent_address.province_code`
grants, for one service, the fields every answer of that service is cut down to before it
leaves the hub (data minimisation, as the Personal Data Protection Law asks). A dotted
field keeps that part of a nested object; a list is cut element by element. A service the
client has no field grant for answers in full. The cut is made on the canonical output,
after validation, so no adapter can forget it.

Where the cut is made:

- an answer from upstream, in the pipeline (`Gateway.call`), before it is returned to the
  client and before the audit record notes its fields. The hub's own calls on a client's
  behalf (a judicial request's submission and polls, a payment's opening, queries and
  reconciliation) ask for the whole canonical answer (`trim=False`): the hub needs its
  `reference`, `transaction_id` or `pay_url` whatever the client may see, and what of it
  reaches the client goes out through one of the views below, which are cut;
- the views the hub keeps for a client (a judicial request's job, a payment), both where a
  route answers them and in the webhook payload, which is cut when it is queued, with the
  owning client's grant read from the database: the outbox never holds more than the
  client may receive (`trim_view`). A view is the hub's bookkeeping plus what upstream
  answered. The bookkeeping keys are the hub's own, not any service's canonical fields,
  and are always kept: a job's `id`, `service`, `status` (the hub's state of it, which
  has states of its own: submitting, unconfirmed, failed), `final`, `submitted_at`,
  `updated_at`, `completed_at`, `callback_url` and `error`; a payment's `id` (the
  reference the hub sent upstream), `status`, `paid_at` and its timestamps, and what the
  client itself sent (`amount`, `currency`, `description`, `procedure_code`,
  `dossier_id`, `callback_url`). Every other key is upstream's, cut with the same grant
  under its canonical name: a job's `upstream_reference` is the canonical `reference`,
  its `certificate` and `rejection_reason` those of `status`; a payment's
  `transaction_id` and `pay_url` those of `init`. So a client granted
  `judicial-records:reference,status` follows its requests but never receives a
  certificate, and one granted `judicial-records:status,certificate.number` receives the
  certificate's number, nothing else of it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from hub.core.models import Client

__all__ = ["check_field_grants", "granted_fields", "parse_field_grant", "trim", "trim_view"]


def parse_field_grant(text: str) -> tuple[str, list[str]]:
    """`SERVICE:FIELD,FIELD` -> (service, fields)."""
    service, _, fields = text.partition(":")
    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not service.strip() or not names:
        raise ValueError(f"bad field grant {text!r}: use SERVICE:FIELD,FIELD")
    return service.strip(), names


def _models_within(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (through Optional, list, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found.extend(_models_within(arg))
    return found


def _has_path(models: Iterable[type[BaseModel]], path: Sequence[str]) -> bool:
    for model in models:
        info = model.model_fields.get(path[0])
        if info is None:
            continue
        if len(path) == 1 or _has_path(_models_within(info.annotation), path[1:]):
            return True
    return False


def check_field_grants(
    grants: Mapping[str, Sequence[str]], outputs: Mapping[str, Iterable[type[BaseModel]]]
) -> None:
    """Refuse a grant naming a service that is not installed, or a field none of its
    operations answers (`outputs`: each service's output models). Raises ValueError."""
    for service, fields in grants.items():
        if service not in outputs:
            raise ValueError(f"no service named {service!r} is installed")
        models = list(outputs[service])
        for field in fields:
            if not _has_path(models, field.split(".")):
                raise ValueError(f"service {service!r} answers no field {field!r}")


def _tree(paths: Iterable[str]) -> dict[str, Any]:
    """Dotted paths as a tree: {"a": {}, "b": {"c": {}}} (an empty dict keeps it whole)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        for i, part in enumerate(parts):
            if part in node and not node[part]:
                break  # already kept whole
            node = node.setdefault(part, {})
            if i == len(parts) - 1:
                node.clear()
    return tree


def _cut(data: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return data
    if isinstance(data, list):
        return [_cut(item, tree) for item in data]
    if isinstance(data, dict):
        return {key: _cut(value, tree[key]) for key, value in data.items() if key in tree}
    return data


def trim(data: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """An answer cut down to the granted fields."""
    result = _cut(data, _tree(fields))
    assert isinstance(result, dict)
    return result


def trim_view(
    view: Mapping[str, Any],
    fields: Sequence[str] | None,
    *,
    hub_keys: Collection[str],
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A view the hub keeps for a client (a job, a payment) cut to that client's grant for
    the service (`fields`; None: in full). Its `hub_keys` are the hub's bookkeeping, always
    kept; every other key holds an upstream canonical field, named so or `renamed[key]`,
    and is kept, cut, only as far as the grant names it: a key the grant does not name
    does not go out, whatever upstream may add to its answers one day."""
    if fields is None:
        return dict(view)
    tree = _tree(fields)
    names = renamed or {}
    kept: dict[str, Any] = {}
    for key, value in view.items():
        if key in hub_keys:
            kept[key] = value
        elif (name := names.get(key, key)) in tree:
            kept[key] = _cut(value, tree[name])
    return kept


def granted_fields(session: Session, client_id: str, service: str) -> tuple[str, ...] | None:
    """The fields the client is granted for `service`, read in the caller's transaction
    (None: in full), for what the hub sends a client outside its own request (a webhook).
    A client that no longer exists is granted nothing of upstream's."""
    client = session.get(Client, client_id)
    if client is None:
        return ()
    names = (client.fields or {}).get(service)
    return None if names is None else tuple(names)


_CONTAINERS = (dict, list)  # a tuple: `dict | list` builds a union object at every check

#: The most field paths one audit record lists (a long list of records repeats the same).
MAX_AUDITED_PATHS = 200


def paths_of(data: Any) -> list[str]:
    """The dotted paths of the fields an answer carries with a value, as the audit record
    keeps them ("fields returned"): lists count once, whatever their length; `null` and
    empty values were not disclosed, so they are not listed."""
    found: set[str] = set()

    # Scalars are handled in their container's loop, not by a call each: this runs on every
    # answer, and a citizen record has some sixty fields.
    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if len(found) >= MAX_AUDITED_PATHS:
                    return
                path = f"{prefix}.{key}" if prefix else str(key)
                if isinstance(item, _CONTAINERS):
                    walk(item, path)
                elif item is not None and item != "" and path:
                    found.add(path)
        else:
            for item in value:
                if len(found) >= MAX_AUDITED_PATHS:
                    return
                if isinstance(item, _CONTAINERS):
                    walk(item, prefix)
                elif item is not None and item != "" and prefix:
                    found.add(prefix)

    if isinstance(data, _CONTAINERS):
        walk(data, "")
    return sorted(found)
