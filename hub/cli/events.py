"""`hub events` and `hub subscriptions`: the operator's view of events to agencies."""

from __future__ import annotations

import json

import click

from hub.cli.common import database
from hub.core.config import Settings


@click.group()
def events() -> None:
    """Events the national systems published, and their deliveries."""


@events.command("list")
@click.option("--type", "event_type", default=None, help="Only this type, SERVICE:NAME.")
@click.option("--after", default=0, type=click.IntRange(0), help="After this sequence number.")
@click.option("--limit", default=50, type=click.IntRange(1, 1000))
def events_list(event_type: str | None, after: int, limit: int) -> None:
    """Events, oldest first, with their deliveries by state (no personal data: subjects
    are counted)."""
    from hub.capabilities.events.admin import list_events

    with database(Settings()) as engine:
        found = list_events(engine, event_type=event_type, after=after, limit=limit)
    click.echo(json.dumps(found, ensure_ascii=False, indent=2))


@events.command("replay")
@click.argument("subscription")
@click.option("--from", "from_seq", required=True, type=click.IntRange(1), help="Sequence.")
def events_replay(subscription: str, from_seq: int) -> None:
    """Queue a subscription's events again, in order, from a sequence number on."""
    from hub.capabilities.events.admin import replay_subscription

    with database(Settings()) as engine:
        try:
            count = replay_subscription(engine, subscription, from_seq)
        except LookupError:
            raise click.ClickException("no such subscription") from None
    click.echo(f"{count} event(s) queued again for {subscription}")


@events.command("redrive")
@click.argument("subscription")
def events_redrive(subscription: str) -> None:
    """Send a subscription's dead letters again, with a fresh set of attempts."""
    from hub.capabilities.events.admin import redrive

    with database(Settings()) as engine:
        try:
            count = redrive(engine, subscription)
        except LookupError:
            raise click.ClickException("no such subscription") from None
    click.echo(f"{count} dead letter(s) re-driven for {subscription}")


@click.group()
def subscriptions() -> None:
    """Agencies' subscriptions to events."""


@subscriptions.command("list")
@click.option("--client", default=None, help="Only this client's (by name).")
def subscriptions_list(client: str | None) -> None:
    """Every subscription with its deliveries by state."""
    from hub.capabilities.events.admin import list_subscriptions

    with database(Settings()) as engine:
        found = list_subscriptions(engine, client=client)
    click.echo(json.dumps(found, ensure_ascii=False, indent=2))
