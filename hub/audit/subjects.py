"""The data subjects of an audit record: whom a call disclosed, from its input and its output.

An operation names its subject in its input (`@operation(subject="personal_id")`) and, when
its answer discloses people the input does not name (the owner of a parcel looked up by
its number, the two spouses of a marriage record), the paths in its output where their
personal IDs are (`subject_from="owner.personal_id"`, several allowed; a path steps through
lists). The record's `subject_id` is the input's subject, or else the first found in the
output; the others go, as a JSON list, into the record's `subjects` column, which the
chain's hash covers like every other column, and are indexed in the `audit_subjects` table
(subject, record id), written in the same transaction. The access report looks a person
up in both, through their indexes; `hub audit verify` checks that the index holds exactly
what the hashed records say (a row removed from it would hide an access from the report).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

import orjson
from pydantic import BaseModel
from sqlalchemy import Connection, select

#: The longest subject the audit trail keeps (the column's size).
SUBJECT_MAX = 64


# -- declaring: paths through an output model -----------------------------------------------


def _inner(annotation: Any) -> Any:
    """The model (or leaf type) a field's annotation holds: through Optional, unions with
    None, and lists."""
    while True:
        origin = get_origin(annotation)
        if origin in (list, tuple, set, frozenset, Sequence):
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            return annotation


def path_problem(model: type[BaseModel], path: str) -> str | None:
    """Why `path` (dotted, through lists) names no field of `model`, or None if it does."""
    current: Any = model
    parts = path.split(".")
    for number, part in enumerate(parts):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return f"{'.'.join(parts[:number])!r} is not an object"
        field = current.model_fields.get(part)
        if field is None:
            return f"{current.__name__} has no field {part!r}"
        current = _inner(field.annotation)
    return None


def personal_id_paths(model: type[BaseModel], prefix: str = "", depth: int = 0) -> list[str]:
    """The dotted paths of a model's fields that hold a personal ID: named `personal_id`
    or `…_personal_id`, at any depth (through lists and optional objects)."""
    found = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if name == "personal_id" or name.endswith("_personal_id"):
            found.append(path)
        inner = _inner(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel) and depth < 8:
            found.extend(personal_id_paths(inner, f"{path}.", depth + 1))
    return found


# -- calling: the subjects an answer disclosed ----------------------------------------------


def subjects_in(data: Any, paths: Iterable[str]) -> list[str]:
    """The distinct non-empty strings at `paths` in an answer's JSON data, in order."""
    found: list[str] = []
    for path in paths:
        _collect(data, path.split("."), found)
    return list(dict.fromkeys(found))


def _collect(value: Any, parts: list[str], found: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _collect(item, parts, found)
    elif not parts:
        if isinstance(value, str) and value:
            found.append(value[:SUBJECT_MAX])
    elif isinstance(value, dict):
        _collect(value.get(parts[0]), parts[1:], found)


def assign(subject_id: str | None, found: Sequence[str]) -> tuple[str | None, str | None]:
    """(the record's `subject_id`, its `subjects` column): the input's subject, or else the
    first found in the output; the others as a JSON list (None when there are none)."""
    others = [s for s in found if s != subject_id]
    if subject_id is None and others:
        subject_id, others = others[0], others[1:]
    return subject_id, (orjson.dumps(others).decode() if others else None)


# -- storing: the index of the records' `subjects` -------------------------------------------


def _pairs(first_id: int, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    pairs = []
    for offset, row in enumerate(rows):
        listed = row.get("subjects")
        if listed:
            for subject in orjson.loads(listed):
                pairs.append({"subject_id": subject, "record_id": first_id + offset})
    return pairs


def index_subjects(conn: Any, first_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Index the further subjects of records just inserted with consecutive ids from
    `first_id` (the writer calls this inside the records' own transaction, on its own
    connection: hub.audit.store.DriverConnection, which runs a Core insert as
    `Connection.execute` does)."""
    pairs = _pairs(first_id, rows)
    if pairs:
        from hub.core.models import AuditSubject

        conn.execute(AuditSubject.__table__.insert(), pairs)  # type: ignore[attr-defined]


def index_problems(conn: Connection, limit: int = 5) -> list[str]:
    """Where the `audit_subjects` index and the records' hashed `subjects` disagree (at most
    `limit` problems): a row missing hides an access from the person's report."""
    from hub.core.models import AuditRecord, AuditSubject

    records = AuditRecord.__table__  # type: ignore[attr-defined]
    index = AuditSubject.__table__  # type: ignore[attr-defined]
    expected: set[tuple[str, int]] = set()
    listed = select(records.c.id, records.c.subjects).where(records.c.subjects.is_not(None))
    for rid, subjects in conn.execute(listed):
        try:
            names = orjson.loads(subjects)
        except orjson.JSONDecodeError:
            names = []  # the hash check reports the record itself
        expected.update((str(s), int(rid)) for s in names)
    found = {
        (str(s), int(r)) for s, r in conn.execute(select(index.c.subject_id, index.c.record_id))
    }
    problems = [
        f"record {rid}: a subject it disclosed is missing from the subject index"
        for _, rid in sorted(expected - found, key=lambda pair: pair[1])
    ]
    problems += [
        f"record {rid}: the subject index names someone the record does not"
        for _, rid in sorted(found - expected, key=lambda pair: pair[1])
    ]
    return problems[:limit]
