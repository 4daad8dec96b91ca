"""Clients: list, create (the key shown once), edit grants, purposes, field grants and the
rate limit, rotate a key with a grace period, revoke, and show the webhook secret.

The work is the admin API's: its validation (ClientSpec, field grants against the installed
adapters, no hub grant handed out by someone who does not hold it) and the service functions
of hub.security.auth. A console user holds no hub grant, so no console user makes, edits or
takes over the key of an admin or auditor client.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from hub.api.routes.admin import ClientSpec, RevokeSpec, RotateSpec, _may_manage, _parse
from hub.audit.search import parse_int
from hub.capabilities.webhooks import webhook_secret
from hub.console import web
from hub.errors import BadRequest, Conflict, NotFound
from hub.security import auth
from hub.security.auth import Principal
from hub.security.fields import check_field_grants, parse_field_grant

router = APIRouter(include_in_schema=False)

#: Clients listed a page.
PAGE_SIZE = 100


def _principal(page: web.Page) -> Principal:
    user = page.login.user
    return Principal(user.id, user.name, frozenset(), frozenset())


def _field_grants(text: str) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for line in (line.strip() for line in text.splitlines()):
        if line:
            try:
                service, names = parse_field_grant(line)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            grants.setdefault(service, []).extend(names)
    return grants


def _check_fields(page: web.Page, grants: dict[str, list[str]]) -> None:
    outputs = {
        loaded.cls.name: [spec.output_model for spec in loaded.cls.operations.values()]
        for loaded in page.hub.registry
    }
    try:
        check_field_grants(grants, outputs)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _number(form: dict[str, str], name: str) -> float | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None


def spec_from(page: web.Page, *, name: str | None = None) -> ClientSpec:
    """The form as the admin API's ClientSpec (422 naming the field on a bad value)."""
    form = page.form
    rate = _number(form, "rate_per_minute")
    body: dict[str, Any] = {
        "name": name if name is not None else form.get("name", "").strip(),
        "agency": form.get("agency", "").strip() or None,
        "allow": web.lines(form.get("allow")),
        "purposes": web.lines(form.get("purposes")),
        "rate_per_minute": None if rate is None else int(rate),
        "fields": _field_grants(form.get("fields", "")),
        "require_officer": form.get("require_officer") == "on",
        "require_dossier": form.get("require_dossier") == "on",
    }
    if name is None and (days := _number(form, "expires_in_days")) is not None:
        body["expires_in_days"] = days
    spec = _parse(ClientSpec, body)
    _may_manage(_principal(page), spec.allow)
    if spec.fields:
        _check_fields(page, spec.fields)
    return spec


async def _client(page: web.Page, name: str) -> dict[str, Any]:
    try:
        [client] = await asyncio.to_thread(auth.describe_clients, page.hub.engine, name)
    except LookupError:
        raise NotFound("no such client") from None
    return client


async def _managed(page: web.Page, name: str) -> dict[str, Any]:
    """The client, when the console may manage it (as the admin API's `_may_manage` judges:
    no console user takes over an `admin:` or `audit:` client); 404 / 403 otherwise."""
    current = await _client(page, name)
    _may_manage(_principal(page), list(current["allow"]))
    return current


def _name(page: web.Page) -> str:
    return str(page.request.path_params["name"])


def _secret(page: web.Page) -> bytes:
    return page.hub.settings.secret_key.get_secret_value().encode()


@router.get(web.PREFIX + "/clients")
@web.page("operator")
async def clients_page(page: web.Page) -> Response:
    offset = parse_int(page.request.query_params.get("offset"), "offset", 0, 0, 2**31)
    clients = await asyncio.to_thread(
        functools.partial(
            auth.describe_clients, page.hub.engine, offset=offset, limit=PAGE_SIZE + 1
        )
    )
    more = len(clients) > PAGE_SIZE
    return page.render(
        "clients.html",
        title="Clients",
        clients=clients[:PAGE_SIZE],
        next_offset=offset + PAGE_SIZE if more else None,
        offset=offset,
    )


@router.post(web.PREFIX + "/clients")
@web.page("operator", action="create-client")
async def create_client(page: web.Page) -> Response:
    async def work() -> tuple[dict[str, Any], str | None]:
        spec = spec_from(page)
        try:
            issued = await asyncio.to_thread(
                auth.create_client, page.hub.engine, _secret(page), **spec.model_dump()
            )
        except ValueError as exc:
            error = Conflict if "exists already" in str(exc) else BadRequest
            raise error(str(exc)) from None
        return {"client_id": issued.client_id, "name": spec.name, "api_key": issued.api_key}, None

    data = await page.audited("create-client", work)
    return page.render("key_once.html", status_code=201, title="Clients", issued=data)


@router.get(web.PREFIX + "/clients/{name}")
@web.page("operator")
async def client_page(page: web.Page) -> Response:
    client = await _client(page, _name(page))
    return page.render("client.html", title="Clients", client=client)


@router.post(web.PREFIX + "/clients/{name}")
@web.page("operator", action="update-client")
async def update_client(page: web.Page) -> Response:
    name = _name(page)

    async def work() -> tuple[dict[str, Any], str | None]:
        await _managed(page, name)  # 404 or 403 before anything changes
        spec = spec_from(page, name=name)
        await asyncio.to_thread(
            auth.update_client,
            page.hub.engine,
            name,
            allow=spec.allow,
            purposes=spec.purposes,
            rate_per_minute=spec.rate_per_minute,
            fields=spec.fields,
            require_officer=spec.require_officer,
            require_dossier=spec.require_dossier,
            agency=spec.agency,
        )
        return {"name": name}, None

    await page.audited("update-client", work)
    return RedirectResponse(f"{web.PREFIX}/clients/{name}", status_code=303)


@router.post(web.PREFIX + "/clients/{name}/rotate")
@web.page("operator", action="rotate-key")
async def rotate(page: web.Page) -> Response:
    name = _name(page)

    async def work() -> tuple[dict[str, Any], str | None]:
        grace = _number(page.form, "grace_hours")
        spec = _parse(RotateSpec, {} if grace is None else {"grace_hours": grace})
        await _managed(page, name)
        issued = await asyncio.to_thread(
            auth.rotate_key, page.hub.engine, _secret(page), name, grace_s=spec.grace_hours * 3600
        )
        return {"client_id": issued.client_id, "name": name, "api_key": issued.api_key}, None

    data = await page.audited("rotate-key", work)
    return page.render("key_once.html", title="Clients", issued=data)


@router.post(web.PREFIX + "/clients/{name}/revoke")
@web.page("operator", action="revoke")
async def revoke(page: web.Page) -> Response:
    name = _name(page)

    async def work() -> tuple[dict[str, Any], str | None]:
        spec = _parse(RevokeSpec, {"key": page.form.get("key") or None})
        await _managed(page, name)
        try:
            count = await asyncio.to_thread(auth.revoke, page.hub.engine, name, prefix=spec.key)
        except LookupError:
            raise NotFound("no such client or key") from None
        return {"revoked_keys": count}, None

    await page.audited("revoke", work)
    return RedirectResponse(f"{web.PREFIX}/clients/{name}", status_code=303)


@router.post(web.PREFIX + "/clients/{name}/webhook-secret")
@web.page("operator", action="webhook-secret")
async def show_webhook_secret(page: web.Page) -> Response:
    name = _name(page)

    async def work() -> tuple[dict[str, Any], str | None]:
        current = await _managed(page, name)
        return {"name": name, "secret": webhook_secret(_secret(page), current["client_id"])}, None

    data = await page.audited("webhook-secret", work)
    return page.render("webhook_secret.html", title="Clients", shown=data)
