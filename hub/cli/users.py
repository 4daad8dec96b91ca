"""`hub users`: the named people who log in to the console (hub/console)."""

from __future__ import annotations

import json
import sys

import click

from hub.cli.common import database
from hub.core.config import Settings


@click.group()
def users() -> None:
    """Console users: operators, auditors and viewers."""


def _stdin_line() -> str:
    return sys.stdin.readline().rstrip("\n")


def _password(given: str | None) -> tuple[str, bool]:
    from hub.console.users import new_password

    return (given, False) if given else (new_password(), True)


@users.command("create")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(["operator", "auditor", "viewer"]),
    help="operator (services, clients), auditor (audit, access reports), viewer "
    "(read-only). Repeatable.",
)
@click.option("--totp", is_flag=True, help="Enrol a TOTP second factor (prints its URI once).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (12+ chars)."
)
def users_create(name: str, roles: tuple[str, ...], totp: bool, password_stdin: bool) -> None:
    """Create a console user; prints a random password unless one comes on stdin."""
    from hub.console.users import create_user

    password, generated = _password(_stdin_line() if password_stdin else None)
    with database(Settings()) as engine:
        try:
            user, uri = create_user(engine, name, roles, password, totp=totp)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"created console user {user.name} ({', '.join(sorted(user.roles))})")
    if generated:
        click.echo(f"password (shown once): {password}")
    if uri:
        click.echo(f"TOTP (add to an authenticator app, shown once): {uri}")


@users.command("list")
def users_list() -> None:
    """Every console user (JSON lines; never a hash)."""
    from hub.console.users import list_users

    with database(Settings()) as engine:
        for user in list_users(engine):
            click.echo(json.dumps(user, ensure_ascii=False))


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
def users_disable(name: str, enable: bool) -> None:
    """Disable a user (their sessions end at once), or --enable them again."""
    from hub.console.users import set_active

    with database(Settings()) as engine:
        try:
            set_active(engine, name, enable)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{name} {'enabled' if enable else 'disabled'}")


@users.command("reset-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
def users_reset_password(name: str, password_stdin: bool) -> None:
    """A new password (random unless given on stdin); unlocks and ends every session."""
    from hub.console.users import reset_password

    password, generated = _password(_stdin_line() if password_stdin else None)
    with database(Settings()) as engine:
        try:
            reset_password(engine, name, password)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password of {name} reset")
    if generated:
        click.echo(f"password (shown once): {password}")
