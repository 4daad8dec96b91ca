"""`hub audit`: verify, sign and archive the tamper-evident audit trail."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from hub.cli.common import database
from hub.core.config import Settings


@click.group()
def audit() -> None:
    """The tamper-evident audit trail."""


def _audit_key(settings: Settings) -> bytes:
    from hub.audit.chain import signing_key

    return signing_key(settings.secret_key.get_secret_value().encode())


@audit.command("verify")
@click.option(
    "--archives",
    "archive_dir",
    default=None,
    help="The folder of the archive files (default: HUB_AUDIT_ARCHIVE_DIR).",
)
@click.option(
    "--manifests-only",
    is_flag=True,
    help="Check the archives' signed manifests only, not their files (a machine without "
    "the archive storage).",
)
def audit_verify(archive_dir: str | None, manifests_only: bool) -> None:
    """Walk the audit chain, its archives and its signed checkpoints (in the database and
    in the witness file); exit 1 naming the first broken record if any record was altered,
    removed or inserted."""
    from hub.audit.verify import verify

    settings = Settings()
    folder = None if manifests_only else Path(archive_dir or settings.audit_archive_dir)
    with database(settings) as engine:
        found = verify(
            engine, _audit_key(settings), folder, witness_file=settings.audit_witness_path
        )
    click.echo(
        f"audit chain: {found.records} records in the database, {found.archived} archived, "
        f"{found.checkpoints} signed checkpoints, {found.witnessed} witnessed in "
        f"{settings.audit_witness_path}, last record {found.last_id}"
        + (f", {found.unchained} from before the chain" if found.unchained else "")
    )
    if not found.ok:
        click.echo(f"BROKEN: {found.problems[0]}", err=True)
        sys.exit(1)
    if not found.witnessed:
        click.echo(
            "note: no witnessed checkpoint: the end of the chain is vouched for only by the "
            "database's own checkpoints",
            err=True,
        )
    click.echo("intact")


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's end now (the hub also does it as it writes and when it stops)."""
    from hub.audit.chain import ChainBroken
    from hub.audit.checkpoints import checkpoint

    settings = Settings()
    with database(settings) as engine:
        try:
            signed = checkpoint(engine, _audit_key(settings), settings.audit_witness_path)
        except ChainBroken as exc:
            raise click.ClickException(f"not signed: {exc}") from None
    click.echo("nothing new to sign" if signed is None else f"signed up to record {signed}")


@audit.command("archive")
@click.option(
    "--older-than-days",
    type=float,
    default=None,
    help="Archive records older than this (default: HUB_AUDIT_RETENTION_DAYS).",
)
def audit_archive(older_than_days: float | None) -> None:
    """Move records past retention to signed, compressed files in HUB_AUDIT_ARCHIVE_DIR
    (the hub does it by itself every HUB_AUDIT_ARCHIVE_INTERVAL_S)."""
    from hub.audit.archive import archive

    settings = Settings()
    days = settings.audit_retention_days if older_than_days is None else older_than_days
    if days <= 0:
        raise click.ClickException("retention is off (HUB_AUDIT_RETENTION_DAYS=0)")
    before = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with database(settings) as engine:
        while True:
            done = archive(engine, _audit_key(settings), Path(settings.audit_archive_dir), before)
            if done is None:
                break
            click.echo(f"archived records {done.first_id}-{done.last_id} to {done.file}")
