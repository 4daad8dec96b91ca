"""What a call brings into the pipeline, and its first checks: the caller's headers
(purpose, officer, dossier: bounded, and a code's shape where a name must never land) and
the operation's input, validated against its model before anything goes upstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from hub.adapter import OperationSpec
from hub.canonical.common import INVALID_ENTERPRISE_CODE_ERROR, INVALID_PERSONAL_ID_ERROR
from hub.errors import (
    BadRequest,
    HubError,
    InvalidEnterpriseCode,
    InvalidPersonalId,
    SchemaViolation,
)

__all__ = [
    "CALLER_HEADER_LIMITS",
    "CALLER_ID_SHAPE",
    "CallerHeaders",
    "check_caller",
    "clip",
    "shaped",
    "validate_input",
]


@dataclass(frozen=True, slots=True)
class CallerHeaders:
    """What the HTTP layer hands the pipeline about the caller."""

    request_id: str
    authorization: str | None
    purpose: str | None = None
    officer_id: str | None = None
    dossier_id: str | None = None
    #: The hub's own id of what this call belongs to (a job), set by the hub, never by a
    #: caller: the adapter sends it upstream so that upstream's later messages match it.
    correlation_id: str | None = None


CALLER_HEADER_LIMITS = {
    "purpose": ("X-Purpose", 64),
    "officer_id": ("X-Officer-ID", 128),
    "dossier_id": ("X-Dossier-ID", 128),
}


#: An officer's or a dossier's identifier: a code (MaCanBo, MaHoSo such as
#: `000.00.01.H26-0001`), ASCII, never a name: what is sent lands in the audit trail and in
#: the citizen's access report.
CALLER_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")


def check_caller(caller: CallerHeaders) -> None:
    """400 for a caller header longer than the audit trail keeps (it would be cut there,
    or refused by a database column downstream), or an officer or dossier id that is not a
    code's shape (CALLER_ID_SHAPE)."""
    for field_name, (header, limit) in CALLER_HEADER_LIMITS.items():
        value = getattr(caller, field_name)
        if value is not None and len(value) > limit:
            raise BadRequest(f"{header} is at most {limit} characters")
        if field_name != "purpose" and value is not None and shaped(value) is None:
            raise BadRequest(
                f"{header} is a code of letters, digits and . _ : / @ - (no spaces, no name)"
            )


def shaped(value: str | None) -> str | None:
    """An officer or dossier id as the audit record keeps it: only a code's shape, so a
    refused call's record does not keep a name sent there either."""
    return value if value is not None and CALLER_ID_SHAPE.fullmatch(value) else None


def clip(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


#: Identifier checks that answer 400 with their own code rather than a generic 422.
_IDENTIFIER_ERRORS: dict[str, type[HubError]] = {
    INVALID_PERSONAL_ID_ERROR: InvalidPersonalId,
    INVALID_ENTERPRISE_CODE_ERROR: InvalidEnterpriseCode,
}


def validate_input(spec: OperationSpec, payload: Any) -> BaseModel:
    """Validate an operation's input; a bad personal ID is 400, other schema errors 422.

    The errors name the field and the rule, never the submitted value (it may be personal).
    """
    if not isinstance(payload, dict):
        raise SchemaViolation("the request body must be a JSON object")
    try:
        return spec.input_model.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        for error in errors:
            identifier_error = _IDENTIFIER_ERRORS.get(error["type"])
            if identifier_error is not None:
                raise identifier_error(error["msg"]) from None
        raise SchemaViolation.from_errors(errors) from None
