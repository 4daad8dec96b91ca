"""`hub mappings`: check mappings and try them on saved upstream answers."""

from __future__ import annotations

import json

import click


@click.group()
def mappings() -> None:
    """Check mappings and try them on saved upstream answers."""


@mappings.command("check")
@click.argument("names", nargs=-1, metavar="[ADAPTER…]")
def mappings_check(names: tuple[str, ...]) -> None:
    """Check installed adapters' mappings (default: all): against the canonical models, as
    start-up does, and every path against the upstream's own schema (WSDL, XSD or JSON
    Schema) where the adapter declares one. Exit 1 on any problem."""
    from hub.core.registry import AdapterLoadError, discover, resolve_mapping, resource_path
    from hub.mapping import MappingError
    from hub.mapping.tools import check_upstream_paths

    try:
        classes = discover(names or None)
    except AdapterLoadError as exc:
        raise click.ClickException(str(exc)) from None
    problems = 0
    for name, cls in classes.items():
        if cls.mapping is None:
            click.echo(f"{name}: no mapping")
            continue
        try:
            resolve_mapping(cls)
        except AdapterLoadError as exc:
            problems += 1
            click.echo(f"{name}: {exc}")
            continue
        if cls.upstream_schema is None:
            click.echo(f"{name}: ok (canonical side; no upstream schema declared)")
            continue
        mapping_file = resource_path(cls.mapping)
        schema_file = resource_path(cls.upstream_schema)
        try:
            errors = check_upstream_paths(str(mapping_file), str(schema_file))
        except (MappingError, OSError, ValueError) as exc:
            errors = [exc]  # type: ignore[list-item]
        for error in errors:
            click.echo(f"{name}: {error}")
        problems += len(errors)
        if not errors:
            click.echo(f"{name}: ok (canonical side and every path in {schema_file.name})")
    if problems:
        raise click.ClickException(f"{problems} problem(s)")


@mappings.command("try")
@click.argument("mapping_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("sample", type=click.Path(exists=True, dir_okay=False))
@click.option("--operation", "-o", help="The operation to map (needed when there are several).")
@click.option(
    "--adapter",
    help="Validate with this installed adapter's output models (default: the mapping's "
    "`service`, when installed).",
)
def mappings_try(
    mapping_file: str, sample: str, operation: str | None, adapter: str | None
) -> None:
    """Show the canonical result of MAPPING_FILE applied to SAMPLE, an answer saved from
    upstream (a SOAP envelope, XML or JSON)."""
    from pydantic import ValidationError

    from hub.core.registry import AdapterLoadError, discover
    from hub.mapping import MappingError, MappingValueError, parse_mapping
    from hub.mapping.tools import SampleError, try_mapping

    models = None
    try:
        service = adapter or parse_mapping(mapping_file)[1].service
        if service is not None:
            try:
                cls = discover([service])[service]
            except AdapterLoadError:
                if adapter is not None:
                    raise
            else:
                models = {spec.name: spec.output_model for spec in cls.operations.values()}
                # An event type's payload may have a mapping operation of its own (`mapping=`).
                models |= {e.mapping: e.payload for e in cls.event_types if e.mapping}
        _, result = try_mapping(mapping_file, sample, operation=operation, models=models)
    except (AdapterLoadError, MappingError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    except MappingValueError as exc:
        raise click.ClickException(f"the sample does not map: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"the result breaks the output model: {problems}") from None
    except SampleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
