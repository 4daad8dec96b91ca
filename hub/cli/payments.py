"""`hub payments`: payments through the national payment platform."""

from __future__ import annotations

import datetime as dt
import json
import sys

import click

from hub.core.config import Settings


@click.group()
def payments() -> None:
    """Payments through the national payment platform."""


@payments.command("reconcile")
@click.option(
    "--date",
    "day",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day (Vietnam time) to reconcile, YYYY-MM-DD.",
)
@click.option(
    "--provider",
    default=None,
    help="The payment provider (default: HUB_PAYMENT_PROVIDER, or the only one installed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def payments_reconcile(day: dt.datetime, provider: str | None, as_json: bool) -> None:
    """Compare the hub's payments of a day with the provider's list; exit 1 on differences."""
    import asyncio

    from hub.app import create_app
    from hub.capabilities.payments.reconcile import ReconciliationReport
    from hub.errors import HubError, UnknownService

    settings = Settings()
    settings.background_tasks = False
    app = create_app(settings)

    async def run() -> ReconciliationReport:
        async with app.router.lifespan_context(app):
            try:
                service = app.state.hub.payments.get(provider)
            except UnknownService:
                raise click.ClickException(
                    f"no payment provider {provider!r} is installed"
                    if provider
                    else "no payment provider is installed"
                ) from None
            return await service.reconcile(day.date())  # type: ignore[no-any-return]

    try:
        report = asyncio.run(run())
    except HubError as exc:
        raise click.ClickException(f"the platform's list could not be had: {exc.code}") from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(
            f"{report.date}: hub {report.hub_count} payments, upstream {report.upstream_count}"
        )
        for kind in ("unknown_to_hub", "missing_upstream", "status_mismatch", "amount_mismatch"):
            for item in getattr(report, kind):
                click.echo(f"  {kind}: {json.dumps(item)}")
        click.echo("  no differences" if report.clean else "  DIFFERENCES FOUND")
    sys.exit(0 if report.clean else 1)
