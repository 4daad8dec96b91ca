"""The `hub` command: serve the hub, run the mocks, manage clients.

One module per command group: `serve` (serve, up, mocks), `clients`, `payments`, `audit`,
`db`, `adapters` (adapter new), `mappings` and `users` (the console's); what several
share is in `common`.
"""

from __future__ import annotations

import click

# The modules, not their groups, are imported: a group named as its module (`audit`) would
# hide the module behind `hub.cli.audit`.
from hub.cli import adapters, audit, clients, db, events, mappings, payments, serve, users

__all__ = ["main"]


@click.group()
@click.version_option(package_name="lgsp-hub")
def main() -> None:
    """LGSP hub: one authenticated, audited REST API in front of the national systems."""


for command in (
    serve.serve,
    serve.up,
    serve.mocks,
    clients.clients,
    payments.payments,
    events.events,
    events.subscriptions,
    audit.audit,
    db.db,
    adapters.adapter,
    mappings.mappings,
    users.users,
):
    main.add_command(command)
