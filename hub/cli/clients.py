"""`hub clients`: the agency applications allowed to call the hub."""

from __future__ import annotations

import json

import click

from hub.cli.common import database
from hub.core.config import Settings

#: What `--rate N/UNIT` may say for a minute.
_UNITS = ("", "minute", "min", "m")


@click.group()
def clients() -> None:
    """Agency applications allowed to call the hub."""


@clients.command("create")
@click.argument("name")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    required=True,
    help="SERVICE or SERVICE:OPERATION, or '*' for everything. Repeatable.",
)
@click.option("--purpose", "purposes", multiple=True, help="A purpose code granted. Repeatable.")
@click.option("--agency", default=None, help="The agency the application belongs to.")
@click.option(
    "--rate",
    default=None,
    metavar="N/minute",
    help="Calls a minute this client may make (default: only the hub's global limit).",
)
@click.option(
    "--fields",
    "field_grants",
    multiple=True,
    metavar="SERVICE:FIELD,FIELD",
    help="The canonical fields the client receives from a service (dotted for nested "
    "ones); others are cut from every answer. Repeatable, one service each.",
)
@click.option(
    "--require-officer",
    is_flag=True,
    help="Personal-data calls must name the civil servant (X-Officer-ID); 400 otherwise.",
)
@click.option(
    "--require-dossier",
    is_flag=True,
    help="Personal-data calls must name the dossier they serve (X-Dossier-ID); 400 otherwise.",
)
@click.option("--expires-in-days", type=float, default=None, help="The key's lifetime.")
def clients_create(
    name: str,
    allow: tuple[str, ...],
    purposes: tuple[str, ...],
    agency: str | None,
    rate: str | None,
    field_grants: tuple[str, ...],
    require_officer: bool,
    require_dossier: bool,
    expires_in_days: float | None,
) -> None:
    """Create a client; prints its id and API key (shown this once only)."""
    from hub.security.auth import create_client

    per_minute = None
    if rate is not None:
        count, _, unit = rate.partition("/")
        count = count.strip()
        if not (count.isascii() and count.isdigit()) or unit.strip() not in _UNITS:
            raise click.BadParameter("give N/minute, e.g. 600/minute", param_hint="--rate")
        per_minute = int(count)
    fields = _field_grants(field_grants)
    settings = Settings()
    with database(settings) as engine:
        try:
            issued = create_client(
                engine,
                settings.secret_key.get_secret_value().encode(),
                name=name,
                allow=allow,
                purposes=purposes,
                agency=agency,
                rate_per_minute=per_minute,
                fields=fields,
                require_officer=require_officer,
                require_dossier=require_dossier,
                expires_in_days=expires_in_days,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"client_id": issued.client_id, "api_key": issued.api_key}))


@clients.command("list")
def clients_list() -> None:
    """Every client, one JSON object a line: grants, limits, keys (prefixes and states)."""
    from hub.security.auth import describe_clients

    with database(Settings()) as engine:
        for client in describe_clients(engine):
            click.echo(json.dumps(client, ensure_ascii=False))


@clients.command("show")
@click.argument("name")
def clients_show(name: str) -> None:
    """One client, with each key's prefix, dates and state (never a key)."""
    from hub.security.auth import describe_clients

    with database(Settings()) as engine:
        try:
            [client] = describe_clients(engine, name)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(client, ensure_ascii=False, indent=2))


@clients.command("rotate-key")
@click.argument("name")
@click.option(
    "--grace-hours",
    default=24.0,
    show_default=True,
    help="How long the client's older keys keep working, to switch over.",
)
@click.option("--expires-in-days", type=float, default=None, help="The new key's lifetime.")
def clients_rotate_key(name: str, grace_hours: float, expires_in_days: float | None) -> None:
    """Give a client a new API key (shown this once); its older keys expire after the grace."""
    from hub.security.auth import rotate_key

    settings = Settings()
    with database(settings) as engine:
        try:
            issued = rotate_key(
                engine,
                settings.secret_key.get_secret_value().encode(),
                name,
                grace_s=grace_hours * 3600,
                expires_in_s=None if expires_in_days is None else expires_in_days * 86400,
            )
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"client_id": issued.client_id, "api_key": issued.api_key}))


@clients.command("revoke")
@click.argument("name")
@click.option("--key", "prefix", default=None, help="Revoke only this key (its prefix).")
def clients_revoke(name: str, prefix: str | None) -> None:
    """Revoke a client (every key) or one of its keys. Takes effect within
    HUB_CLIENT_CACHE_TTL_S on every hub process."""
    from hub.security.auth import revoke

    with database(Settings()) as engine:
        try:
            count = revoke(engine, name, prefix=prefix)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    what = f"key {prefix}" if prefix else f"client {name} ({count} key(s))"
    click.echo(f"revoked: {what}")


def _field_grants(texts: tuple[str, ...]) -> dict[str, list[str]]:
    """Parse --fields and check each field against the installed adapters' answers."""
    from hub.core.registry import AdapterLoadError, discover
    from hub.security.fields import check_field_grants, parse_field_grant

    grants: dict[str, list[str]] = {}
    try:
        for text in texts:
            service, names = parse_field_grant(text)
            grants.setdefault(service, []).extend(names)
        if grants:
            outputs = {
                name: [spec.output_model for spec in cls.operations.values()]
                for name, cls in discover().items()
            }
            check_field_grants(grants, outputs)
    except (ValueError, AdapterLoadError) as exc:
        raise click.BadParameter(str(exc), param_hint="--fields") from None
    return grants


@clients.command("webhook-secret")
@click.argument("name")
def clients_webhook_secret(name: str) -> None:
    """Print the key a client verifies the hub's webhooks with (X-Hub-Signature)."""
    from sqlmodel import Session, select

    from hub.capabilities.webhooks import webhook_secret
    from hub.core.models import Client

    settings = Settings()
    with database(settings) as engine, Session(engine) as session:
        client = session.exec(select(Client).where(Client.name == name)).first()
    if client is None:
        raise click.ClickException(f"no client named {name!r}")
    click.echo(webhook_secret(settings.secret_key.get_secret_value().encode(), client.id))
