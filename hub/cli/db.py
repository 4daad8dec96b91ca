"""`hub db`: the hub's database schema (Alembic migrations)."""

from __future__ import annotations

import sys

import click

from hub.core.config import Settings


@click.group()
def db() -> None:
    """The hub's database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database of HUB_DATABASE_URL to REVISION (a database made before
    migrations existed is adopted first)."""
    from hub.core.db import current_revision, make_engine, upgrade

    engine = make_engine(Settings().database_url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        click.echo(f"database: {before or 'empty'} -> {current_revision(engine)}")
    finally:
        engine.dispose()


@db.command("current")
def db_current() -> None:
    """Print the database's revision and this hub's newest; exit 1 when they differ."""
    from hub.core.db import current_revision, head_revision, make_engine

    engine = make_engine(Settings().database_url)
    try:
        at, head = current_revision(engine), head_revision()
    finally:
        engine.dispose()
    click.echo(f"database: {at or 'none'}  hub: {head}")
    if at != head:
        sys.exit(1)
