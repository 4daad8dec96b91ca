"""`hub mappings`: check mappings and try them on saved upstream answers.

Both commands take the mapping file being written (a path), before the adapter is
installed: its adapter is then imported from the source folder the file sits in (the
package beside it), and a warning says when an installed copy of the same adapter carries
a different mapping (the hub runs the installed one until it is reinstalled).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from hub.adapter import Adapter


@click.group()
def mappings() -> None:
    """Check mappings and try them on saved upstream answers."""


def _is_file(target: str) -> bool:
    return target.endswith((".yaml", ".yml")) or "/" in target or Path(target).is_file()


@mappings.command("check")
@click.argument("targets", nargs=-1, metavar="[ADAPTER|FILE…]")
@click.option(
    "--schema",
    type=click.Path(exists=True, dir_okay=False),
    help="The upstream's WSDL, XSD or JSON Schema for a FILE (default: the adapter's "
    "`upstream_schema`, looked for beside the file).",
)
def mappings_check(targets: tuple[str, ...], schema: str | None) -> None:
    """Check mappings: of installed adapters by name (default: all), or mapping FILEs as
    written (before install). Each against the canonical models, as start-up does, and every
    path against the upstream's own schema where there is one. Exit 1 on any problem."""
    files = [Path(t) for t in targets if _is_file(t)]
    names = [t for t in targets if not _is_file(t)]
    problems = 0
    if names or not files:
        problems += _check_installed(tuple(names))
    for path in files:
        problems += _check_file(path, Path(schema) if schema else None)
    if problems:
        raise click.ClickException(f"{problems} problem(s)")


def _check_installed(names: tuple[str, ...]) -> int:
    from hub.core.registry import AdapterLoadError, discover, resolve_mapping, resource_path

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
        schema = resource_path(cls.upstream_schema, cls) if cls.upstream_schema else None
        problems += _check_paths(name, Path(str(resource_path(cls.mapping, cls))), schema)
    return problems


def _check_file(path: Path, schema: Path | None) -> int:
    from hub.mapping import MappingError, load_mapping, parse_mapping

    if not path.is_file():
        click.echo(f"{path}: no such file")
        return 1
    try:
        service = parse_mapping(str(path))[1].service
    except MappingError as exc:
        click.echo(f"{path}: {exc}")
        return 1
    cls = adapter_for(path, service)
    models = None if cls is None else {s.name: s.output_model for s in cls.operations.values()}
    try:
        load_mapping(str(path), models=models)
    except MappingError as exc:
        click.echo(f"{path}: {exc}")
        return 1
    if cls is None:
        click.echo(f"{path}: note: no adapter found for it, so its output models were not checked")
    if schema is None and cls is not None and cls.upstream_schema:
        beside = path.parent / cls.upstream_schema.rpartition(":")[2]
        schema = beside if beside.is_file() else None
    return _check_paths(str(path), path, schema)


def _check_paths(label: str, mapping_file: Path, schema: object | None) -> int:
    from hub.mapping import MappingError
    from hub.mapping.tools import check_upstream_paths

    if schema is None:
        click.echo(f"{label}: ok (canonical side; no upstream schema declared)")
        return 0
    try:
        errors = check_upstream_paths(str(mapping_file), str(schema))
    except (MappingError, OSError, ValueError) as exc:
        errors = [exc]  # type: ignore[list-item]
    for error in errors:
        click.echo(f"{label}: {error}")
    if not errors:
        click.echo(f"{label}: ok (canonical side and every path in {Path(str(schema)).name})")
    return len(errors)


def adapter_for(path: Path, service: str | None) -> type[Adapter] | None:
    """The adapter a mapping file being written belongs to: the installed one named by its
    `service` (warning when the installed mapping differs from the file), or else one
    declared in the package the file sits in, imported from source."""
    from hub.core.registry import AdapterLoadError, discover, resource_path

    if service is not None:
        try:
            installed = discover([service])[service]
        except (AdapterLoadError, KeyError):
            installed = None
        if installed is not None:
            if installed.mapping is not None:
                copy = resource_path(installed.mapping, installed)
                try:
                    same = copy.read_bytes() == path.read_bytes()
                except OSError:
                    same = False
                if not same:
                    click.echo(
                        f"warning: the installed {service} adapter carries a different "
                        f"mapping ({copy}); the hub runs that one until you reinstall",
                        err=True,
                    )
            return installed
    return _source_adapter(path, service)


def _source_adapter(path: Path, service: str | None) -> type[Adapter] | None:
    from hub.adapter import Adapter

    package = path.resolve().parent
    if not (package / "__init__.py").is_file():
        return None
    sys.path.insert(0, str(package.parent))
    try:
        module = importlib.import_module(package.name)
    except Exception as exc:  # the integrator's code does not import: say so, go on
        click.echo(f"{path}: note: {package.name} does not import ({type(exc).__name__})")
        return None
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Adapter)
        and getattr(value, "name", None) is not None
        and value.__module__.startswith(package.name)
        and (service is None or value.name == service)
    ]
    return found[0] if len(found) == 1 else None


@mappings.command("try")
@click.argument("mapping_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("sample", type=click.Path(exists=True, dir_okay=False))
@click.option("--operation", "-o", help="The operation to map (needed when there are several).")
@click.option(
    "--adapter",
    help="Validate with this installed adapter's output models (default: the mapping's "
    "`service`, installed or in the package beside the file).",
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
        if adapter is not None:
            cls: type[Adapter] | None = discover([adapter])[adapter]
        else:
            cls = adapter_for(Path(mapping_file), parse_mapping(mapping_file)[1].service)
        if cls is not None:
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
