"""Operations: the `@operation` decorator, and the OperationSpec the core reads from it.

`operation(...)` marks an adapter's async method; `Adapter.__init_subclass__` turns each
marked method into an `OperationSpec` (`spec_from_method`), its input and output models
taken from the method's type hints and its declarations checked against them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel

from hub.audit.subjects import path_problem

__all__ = ["OperationSpec", "operation", "spec_from_method"]


@dataclass(frozen=True)
class OperationSpec:
    """An operation as the core sees it, built by the `@operation` decorator."""

    name: str
    method: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    idempotent: bool
    personal_data: bool
    subject: str | None
    summary: str
    description: str = ""
    route: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The adapter author's timeout of one attempt (configuration overrides it).
    timeout_s: float | None = None
    #: The resource route that also serves it (`resource=`), and its query renames.
    resource: str | None = None
    resource_query: dict[str, str] = field(default_factory=dict)
    #: The section of the citizen profile it answers (`profile=`).
    profile: str | None = None
    #: Paths in the output naming further data subjects (`subject_from=`).
    subject_from: tuple[str, ...] = ()
    #: The output field with a verification's overall verdict (`verification=`).
    verification: str | None = None


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def operation(
    *,
    name: str | None = None,
    idempotent: bool = True,
    personal_data: bool = True,
    subject: str | None = None,
    route: str | None = None,
    timeout_s: float | None = None,
    resource: str | None = None,
    resource_query: MappingABC[str, str] | None = None,
    profile: str | None = None,
    subject_from: str | Sequence[str] = (),
    verification: str | None = None,
) -> Callable[[F], F]:
    """Declare an adapter method as an operation.

    - `name`: the operation's public name (default: the method name, `_` -> `-`).
    - `idempotent`: safe to retry on a transient failure (reads are; a payment is not).
    - `personal_data`: the call touches personal data, so it needs `X-Purpose`.
    - `subject`: the input field naming the data subject, recorded in the audit trail.
    - `subject_from`: where the output names further data subjects, for the answers that
      disclose people the input does not name: a dotted path to their personal IDs, or
      several (`("husband.personal_id", "wife.personal_id")`); a path steps through lists
      (`"persons.personal_id"`). Each person found is a subject of the call's audit record,
      so their access report lists it (hub.audit.subjects).
    - `route`: the hub's own resource route that serves this operation because the hub keeps
      its state and its owner (a job, a payment). The generic `POST /v1/services/...` route
      refuses it (403), so no client can reach another client's payment or certificate by
      its upstream reference, or start one the hub does not follow.
    - `timeout_s`: this operation's time for one attempt, where it differs from the
      adapter's (a slow search); `HUB_<NAME>_OPERATION_TIMEOUTS` overrides it.
    - `resource`: a resource route that serves it too, beside the generic route, through
      the same pipeline: `"GET /v1/citizens/{personal_id}"` (path parameters and, for GET,
      query parameters named as the input's fields fill the input) or `"POST /v1/…"` (the
      body is the input). `resource_query` renames query parameters: `{"name":
      "name_prefix"}` reads `?name=` into the input's `name_prefix`.
    - `profile`: the section of the citizen profile (`GET /v1/citizens/{id}/profile`) this
      operation answers, called with `{"personal_id": …}` beside the other sections.
    - `verification`: the operation checks details stated about its `subject` against the
      record, and this output field holds the overall verdict (`"match"`). The core then
      answers that field alone unless the client's field grant names more, throttles the
      operation per client and per person, and alerts on enumeration patterns
      (hub.security.verification): a verification must not be an oracle.
    """
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError("an operation's timeout must be positive")
    if resource is not None:
        method, _, path = resource.partition(" ")
        if method not in ("GET", "POST") or not path.startswith("/v1/"):
            raise ValueError(f"resource {resource!r} must be 'GET /v1/…' or 'POST /v1/…'")
        if method == "POST" and "{" in path:
            raise ValueError(f"resource {resource!r}: a POST route takes its input as the body")

    def mark(func: F) -> F:
        is_async: bool = inspect.iscoroutinefunction(func)  # a bool: no narrowing of `func`
        if not is_async:
            raise TypeError(f"operation {func.__qualname__} must be `async def`")
        # read back by Adapter.__init_subclass__
        setattr(  # noqa: B010
            func,
            "__hub_operation__",
            {
                "name": name or func.__name__.replace("_", "-"),
                "idempotent": idempotent,
                "personal_data": personal_data,
                "subject": subject,
                "route": route,
                "timeout_s": timeout_s,
                "resource": resource,
                "resource_query": dict(resource_query or {}),
                "profile": profile,
                "subject_from": (subject_from,)
                if isinstance(subject_from, str)
                else tuple(subject_from),
                "verification": verification,
            },
        )
        return func

    return mark


def spec_from_method(method_name: str, func: Callable[..., Any]) -> OperationSpec:
    """The OperationSpec of a method marked by `@operation` (TypeError if it is malformed)."""
    meta = func.__hub_operation__  # type: ignore[attr-defined]
    hints = get_type_hints(func)
    params = [p for p in inspect.signature(func).parameters if p != "self"]
    input_model = hints.get(params[0]) if params else None
    output_model = hints.get("return")
    for what, model in (("input", input_model), ("output", output_model)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"operation {func.__qualname__}: the {what} must be a pydantic model")
    if meta["subject"] and meta["subject"] not in input_model.model_fields:  # type: ignore[union-attr]
        raise TypeError(
            f"operation {func.__qualname__}: subject {meta['subject']!r} not an input field"
        )
    for path in meta.get("subject_from", ()):
        problem = path_problem(output_model, path)  # type: ignore[arg-type]
        if problem is not None:
            raise TypeError(f"operation {func.__qualname__}: subject_from {path!r}: {problem}")
    fields = input_model.model_fields  # type: ignore[union-attr]
    verdict = meta.get("verification")
    if verdict is not None and (
        not meta["subject"] or verdict not in getattr(output_model, "model_fields", {})
    ):
        raise TypeError(
            f"operation {func.__qualname__}: a verification names its subject and a verdict "
            "field of its output"
        )
    if meta.get("profile") and "personal_id" not in fields:
        raise TypeError(f"operation {func.__qualname__}: a profile section takes `personal_id`")
    for query_name, field_name in meta.get("resource_query", {}).items():
        if field_name not in fields:
            raise TypeError(f"operation {func.__qualname__}: {query_name!r} renames no field")
    doc = inspect.getdoc(func) or ""
    summary, _, description = doc.partition("\n")
    return OperationSpec(
        name=meta["name"],
        method=method_name,
        input_model=input_model,  # type: ignore[arg-type]
        output_model=output_model,  # type: ignore[arg-type]
        idempotent=meta["idempotent"],
        personal_data=meta["personal_data"],
        subject=meta["subject"],
        summary=summary.strip(),
        description=description.strip(),
        route=meta["route"],
        timeout_s=meta.get("timeout_s"),
        resource=meta.get("resource"),
        resource_query=meta.get("resource_query", {}),
        profile=meta.get("profile"),
        subject_from=meta.get("subject_from", ()),
        verification=meta.get("verification"),
    )
