"""The admin API: clients and their keys (what `hub clients …` does), and the audit trail for
auditors.

Admin credentials are ordinary clients' credentials (API key or OAuth token) granted
`admin:clients` or `admin:audit` explicitly: `--allow '*'` never includes them, and an admin
hands out (or manages a client holding) a hub grant only if it holds that grant itself. So an admin
credential is hashed, rotatable, revocable and rate limited like any other, and every admin
call is audited under service `admin`, refusals too. Reading the audit trail discloses
subjects' personal IDs: it needs an `X-Purpose` granted to the auditor's client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from hub.api.deps import (
    caller_headers,
    envelope,
    get_hub,
    read_json,
    string_path_param,
)
from hub.audit.chain import signing_key
from hub.audit.search import AuditQuery, search
from hub.audit.verify import verify
from hub.errors import BadRequest, Conflict, Forbidden, NotFound, SchemaViolation
from hub.security import auth
from hub.security.auth import HUB_SERVICES, Principal
from hub.security.fields import check_field_grants
from hub.security.oauth import covered

router = APIRouter(prefix="/admin", tags=["admin"])
log = logging.getLogger("hub.admin")

SERVICE = "admin"


class ClientSpec(BaseModel):
    """A new client, as `hub clients create` takes it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    agency: str | None = Field(default=None, max_length=200)
    allow: list[str] = Field(min_length=1, max_length=200)
    purposes: list[str] = Field(default_factory=list, max_length=100)
    rate_per_minute: int | None = Field(default=None, ge=1)
    fields: dict[str, list[str]] = Field(default_factory=dict)
    require_officer: bool = False
    require_dossier: bool = False
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class RotateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: float = Field(default=24.0, ge=0, le=24 * 90)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class RevokeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, max_length=16, description="one key's prefix")


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _parse(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise SchemaViolation("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        raise SchemaViolation.from_errors(errors) from None


async def _admin(
    request: Request,
    operation: str,
    grant: str,
    work: Callable[[Principal], Awaitable[dict[str, Any]]],
    *,
    status_code: int = 200,
    personal_data: bool = False,
) -> Response:
    """Run an admin operation through the gateway: authenticated, granted, audited."""
    hub, caller = get_hub(request), caller_headers(request)

    async def run(principal: Principal) -> tuple[dict[str, Any], str | None]:
        data = await work(principal)
        # a search for one person's records is recorded about that person
        return data, data.pop("_subject", None)

    result = await hub.gateway.local(
        caller,
        SERVICE,
        operation,
        run,
        personal_data=personal_data,
        grant=grant,
        status=status_code,
    )
    return envelope(result, caller.request_id, status_code=status_code)


def _may_manage(admin: Principal, grants: list[str]) -> None:
    """An admin hands out, or takes over the key of, the hub's own grants (`admin:…`,
    `audit:…`) and `*` (every national system) only if it holds them itself:
    `admin:clients` alone can neither make an auditor or an all-systems client nor rotate
    such a client's key and use it. (The operator's `hub clients create` can.)"""
    for grant in grants:
        guarded = grant == "*" or grant.partition(":")[0] in HUB_SERVICES
        if guarded and not covered(grant, admin.allow):
            raise Forbidden(f"only a client holding {grant!r} may grant or manage it")


async def _may_manage_client(admin: Principal, engine: Any, name: str) -> dict[str, Any]:
    [client] = await _known(lambda: auth.describe_clients(engine, name))
    _may_manage(admin, list(client["allow"]))
    return client


def _secret(request: Request) -> bytes:
    return get_hub(request).settings.secret_key.get_secret_value().encode()


@router.post("/clients", status_code=201, summary="Create a client (its key is shown once)")
async def create_client(request: Request) -> Response:
    hub = get_hub(request)

    async def work(admin: Principal) -> dict[str, Any]:
        spec = _parse(ClientSpec, await read_json(request, hub.settings.max_body_bytes))
        _may_manage(admin, spec.allow)
        if spec.fields:
            outputs = {
                loaded.cls.name: [s.output_model for s in loaded.cls.operations.values()]
                for loaded in hub.registry
            }
            try:
                check_field_grants(spec.fields, outputs)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        try:
            issued = await asyncio.to_thread(
                auth.create_client,
                hub.engine,
                _secret(request),
                **spec.model_dump(),
            )
        except ValueError as exc:
            error = Conflict if "exists already" in str(exc) else BadRequest
            raise error(str(exc)) from None
        return {"client_id": issued.client_id, "api_key": issued.api_key}

    return await _admin(request, "create-client", "clients", work, status_code=201)


@router.get("/clients", summary="Every client: grants, limits, keys (never a key)")
async def list_clients(request: Request) -> Response:
    engine = get_hub(request).engine

    async def work(admin: Principal) -> dict[str, Any]:
        return {"clients": await asyncio.to_thread(auth.describe_clients, engine)}

    return await _admin(request, "list-clients", "clients", work)


def _name(request: Request) -> str:
    return str(request.path_params["name"])


async def _known(call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except LookupError:
        raise NotFound("no such client or key") from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


@router.get(
    "/clients/{name}",
    summary="One client",
    openapi_extra=string_path_param("name", "The client's name"),
)
async def show_client(request: Request) -> Response:
    engine, name = get_hub(request).engine, _name(request)

    async def work(admin: Principal) -> dict[str, Any]:
        [client] = await _known(lambda: auth.describe_clients(engine, name))
        return client

    return await _admin(request, "show-client", "clients", work)


@router.post(
    "/clients/{name}/rotate-key",
    summary="A new key for the client (shown once); older keys expire after the grace",
    openapi_extra=string_path_param("name", "The client's name"),
)
async def rotate_key(request: Request) -> Response:
    hub, name = get_hub(request), _name(request)

    async def work(admin: Principal) -> dict[str, Any]:
        body = await read_json(request, hub.settings.max_body_bytes, if_empty={})
        spec = _parse(RotateSpec, body)
        client = await _may_manage_client(admin, hub.engine, name)
        grace_hours = spec.grace_hours
        if client["client_id"] != admin.client_id:
            # Another client's key: its older keys stop at once, so no admin quietly holds
            # a working key of it (the agency notices); a grace is the client's own choice.
            if "grace_hours" in spec.model_fields_set and spec.grace_hours > 0:
                raise BadRequest(
                    "only a client rotating its own key may keep the older keys for a grace "
                    "period; an admin's rotation of another client's key revokes them at once"
                )
            grace_hours = 0.0
        issued = await _known(
            lambda: auth.rotate_key(
                hub.engine,
                _secret(request),
                name,
                grace_s=grace_hours * 3600,
                expires_in_s=None if spec.expires_in_days is None else spec.expires_in_days * 86400,
            )
        )
        log.info(
            "key rotated client=%s by=%s grace_hours=%s",
            issued.client_id,
            admin.client_id,
            grace_hours,
            extra={"client": issued.client_id, "by": admin.client_id},
        )
        return {
            "client_id": issued.client_id,
            "api_key": issued.api_key,
            "older_keys_expire_in_hours": grace_hours,
        }

    return await _admin(request, "rotate-key", "clients", work)


@router.post(
    "/clients/{name}/revoke",
    summary="Revoke the client (every key), or one key by its prefix",
    openapi_extra=string_path_param("name", "The client's name"),
)
async def revoke(request: Request) -> Response:
    hub, name = get_hub(request), _name(request)

    async def work(admin: Principal) -> dict[str, Any]:
        body = await read_json(request, hub.settings.max_body_bytes, if_empty={})
        spec = _parse(RevokeSpec, body)
        await _may_manage_client(admin, hub.engine, name)
        count = await _known(lambda: auth.revoke(hub.engine, name, prefix=spec.key))
        return {"revoked_keys": count, "client_revoked": spec.key is None}

    return await _admin(request, "revoke", "clients", work)


@router.get(
    "/audit",
    summary="Search the audit trail (auditors; X-Purpose required)",
    openapi_extra={
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
            for name, kind in (
                ("client_id", "string"),
                ("service", "string"),
                ("operation", "string"),
                ("subject_id", "string"),
                ("request_id", "string"),
                ("since", "string"),
                ("until", "string"),
                ("after", "integer"),
                ("limit", "integer"),
            )
        ]
    },
)
async def audit_search(request: Request) -> Response:
    engine = get_hub(request).engine

    async def work(admin: Principal) -> dict[str, Any]:
        query = AuditQuery.from_params(request.query_params)
        found = await asyncio.to_thread(search, engine, query)
        return {**found, "_subject": query.subject_id}

    return await _admin(request, "audit-search", "audit", work, personal_data=True)


@router.get("/audit/verify", summary="Verify the audit chain, as `hub audit verify` does")
async def audit_verify(request: Request) -> Response:
    hub = get_hub(request)
    folder = Path(hub.settings.audit_archive_dir)

    async def work(admin: Principal) -> dict[str, Any]:
        found = await asyncio.to_thread(
            functools.partial(
                verify,
                hub.engine,
                signing_key(_secret(request)),
                folder,
                witness_file=hub.settings.audit_witness_path,
            )
        )
        return {
            "intact": found.ok,
            "records": found.records,
            "archived": found.archived,
            "checkpoints": found.checkpoints,
            "witnessed": found.witnessed,
            "unchained": found.unchained,
            "last_id": found.last_id,
            "first_problem": found.problems[0] if found.problems else None,
        }

    return await _admin(request, "audit-verify", "audit", work)
