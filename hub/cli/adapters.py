"""`hub adapter new`: generate an adapter to start from."""

from __future__ import annotations

import click


@click.group()
def adapter() -> None:
    """Write adapters: a new one to start from."""


@adapter.command("new")
@click.argument("name")
@click.option("--protocol", type=click.Choice(["rest", "soap"]), default="rest", show_default=True)
@click.option(
    "--package",
    is_flag=True,
    help="Make it an installable distribution whose entry point registers the adapter.",
)
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Default: ./NAME")
@click.option("--title", help="The upstream system's name, for the catalogue.")
@click.option("--personal-data", is_flag=True, help="Its operations touch personal data.")
@click.option("--port", default=8199, show_default=True, help="The mock's default port.")
@click.option(
    "--events",
    is_flag=True,
    help="It publishes an event type, read from the mock's change feed (REST).",
)
def adapter_new(
    name: str,
    protocol: str,
    package: bool,
    directory: str | None,
    title: str | None,
    personal_data: bool,
    port: int,
    events: bool,
) -> None:
    """Generate a working adapter NAME (e.g. budget-code): the adapter, its models and
    mapping, a mock of the upstream with sample data, and tests that pass as generated."""
    from pathlib import Path

    from hub.scaffold import Names, ScaffoldError, generate

    target = Path(directory or name)
    try:
        written = generate(
            name,
            target,
            protocol=protocol,
            package=package,
            title=title,
            personal_data=personal_data,
            port=port,
            events=events,
        )
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    names = Names.of(name)
    for path in written:
        click.echo(f"  {path}")
    install = f"pip install -e {target}  # the hub finds it through its entry point\n  "
    click.echo(
        f"\n{name}: {len(written)} files in {target}. Next:\n"
        f"  cd {target} && python -m pytest        # passes as generated\n"
        f"  hub mappings check {target / names.pkg / 'mapping.yaml'}  # the mapping as written\n"
        f"  {install if package else ''}see {target / 'README.md'}"
    )
