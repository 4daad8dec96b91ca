"""The `hub` command: serve the hub, run the mocks, manage clients."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging.config
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hub.core.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DEMO_CLIENT = "demo"


def _configure_logging(level: str, settings: Settings) -> dict[str, Any]:
    """Log as HUB_LOG_FORMAT says (hub/core/logs.py); returns the configuration, for uvicorn to
    apply to its own loggers too, in every worker process."""
    from hub.core.logs import logging_config

    config = logging_config(level, settings.log_format_used)
    logging.config.dictConfig(config)
    return config


def _exit_zero_after_sigterm() -> None:
    """uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler
    found before it: make that a no-op, so that a clean stop exits 0 rather than dying by
    the signal (which supervisors read as a crash)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


# uvloop and httptools come with uvicorn[standard]; measured ~2x the plain asyncio + h11.
LOOP, HTTP = "uvloop", "httptools"


@click.group()
@click.version_option(package_name="lgsp-hub")
def main() -> None:
    """LGSP hub: one authenticated, audited REST API in front of the national systems."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Processes to run.")
@click.option("--log-level", default="info", show_default=True)
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the hub (settings from HUB_* environment variables)."""
    import uvicorn

    from hub.core.config import ConfigurationError
    from hub.core.registry import AdapterLoadError, preflight

    settings = Settings()
    try:
        preflight(settings)
    except (ConfigurationError, AdapterLoadError) as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.migrate_on_start:  # production: refuse a database behind this hub
        from hub.core.db import SchemaBehind, make_engine, prepare

        engine = make_engine(settings.database_url)
        try:
            prepare(engine, migrate=False)
        except SchemaBehind as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
    log_config = _configure_logging(log_level, settings)
    _exit_zero_after_sigterm()
    uvicorn.run(
        "hub.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config,
        access_log=False,
        proxy_headers=False,
        loop=LOOP,
        http=HTTP,
        # SIGTERM: stop accepting, let requests in flight finish (up to the grace), then the
        # app's shutdown (the worker's tick ends, the audit trail is committed and signed).
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--log-level", default="info", show_default=True)
def up(host: str, port: int, log_level: str) -> None:
    """Start every mock (8101-8105) and the hub (8000) on SQLite; Ctrl-C stops all."""
    import uvicorn

    from hub.app import create_app

    settings = Settings()
    log_config = _configure_logging(log_level, settings)
    mocks = subprocess.Popen([sys.executable, "-m", "mocks", "--host", host])
    try:
        api_key = _demo_client(settings)
        _wait_for_mocks(mocks)
        base = f"http://{host}:{port}"
        click.echo(
            f"\n  Hub on {base}  (docs: {base}/docs)  mocks on {host}:8101-8105\n"
            f"  Demo client API key (new at every `hub up`; development only):\n\n"
            f"    export HUB_KEY={api_key}\n\n"
            f"  Subjects to try: curl -s 'http://{host}:<8101..8105>/_mock/records?limit=5'\n"
            f"  Then, with H=(-H \"Authorization: Bearer $HUB_KEY\" -H 'X-Purpose: demo'):\n"
            f'    curl -s "${{H[@]}}" {base}/v1/citizens/<personal_id>\n'
            f'    curl -s "${{H[@]}}" {base}/v1/citizens/<personal_id>/profile\n'
            f"    curl -s \"${{H[@]}}\" '{base}/v1/civil-status/records?personal_id=<id>'\n"
            f'    curl -s "${{H[@]}}" {base}/v1/enterprises/<enterprise_code>\n'
            f"  Judicial requests and payments: see README.md, 'A first call'.\n",
            err=True,
        )
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            log_config=log_config,
            access_log=False,
            loop=LOOP,
            http=HTTP,
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        )
    finally:
        mocks.send_signal(signal.SIGINT)
        try:
            mocks.wait(timeout=10)
        except subprocess.TimeoutExpired:
            mocks.kill()


def _wait_for_mocks(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Wait until every implemented mock answers its health check."""
    import httpx

    from mocks import MOCKS

    waiting = {spec.default_port for spec in MOCKS.values() if spec.factory is not None}
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException("the mocks failed to start (see above)")
        for port in sorted(waiting):
            try:
                url = f"http://127.0.0.1:{port}/_mock/health"
                if httpx.get(url, timeout=1).status_code == 200:
                    waiting.discard(port)
            except httpx.HTTPError:
                pass
        if waiting:
            time.sleep(0.2)
    if waiting:
        raise click.ClickException(f"mocks on ports {sorted(waiting)} did not start in time")


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """The hub's database, its schema created, for a CLI command."""
    from hub.core.db import create_schema, make_engine

    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _demo_client(settings: Settings) -> str:
    """Create (or re-key) the `demo` client that may call everything, for a first look."""
    from sqlmodel import Session, delete, select

    from hub.core.models import ApiKey, Client
    from hub.security.auth import create_client

    if settings.environment == "production":
        raise click.ClickException("`hub up` is for development; use `hub serve` in production")
    with _database(settings) as engine:
        with Session(engine) as session:
            old = session.exec(select(Client).where(Client.name == DEMO_CLIENT)).first()
            if old is not None:
                session.exec(delete(ApiKey).where(ApiKey.client_id == old.id))  # type: ignore
                session.delete(old)
                session.commit()
        issued = create_client(
            engine,
            settings.secret_key.get_secret_value().encode(),
            name=DEMO_CLIENT,
            allow=["*"],
            purposes=["demo", "test"],
            agency="development",
        )
    return issued.api_key


@main.group()
def mocks() -> None:
    """The mock national systems."""


@mocks.command("serve")
@click.argument("names", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--fault", "faults", multiple=True, help="Start-up fault, e.g. latency=200, error=0.1"
)
def mocks_serve(names: tuple[str, ...], host: str, faults: tuple[str, ...]) -> None:
    """Serve the named mocks (all by default) on their fixed ports 8101-8105."""
    args = [sys.executable, "-m", "mocks", *names, "--host", host]
    for fault in faults:
        args += ["--fault", fault]
    os.execv(sys.executable, args)


@main.group()
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
        if not count.strip().isdigit() or unit.strip() not in ("", "minute", "min", "m"):
            raise click.BadParameter("give N/minute, e.g. 600/minute", param_hint="--rate")
        per_minute = int(count)
    fields = _field_grants(field_grants)
    settings = Settings()
    with _database(settings) as engine:
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

    with _database(Settings()) as engine:
        for client in describe_clients(engine):
            click.echo(json.dumps(client, ensure_ascii=False))


@clients.command("show")
@click.argument("name")
def clients_show(name: str) -> None:
    """One client, with each key's prefix, dates and state (never a key)."""
    from hub.security.auth import describe_clients

    with _database(Settings()) as engine:
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
    with _database(settings) as engine:
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

    with _database(Settings()) as engine:
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
    with _database(settings) as engine, Session(engine) as session:
        client = session.exec(select(Client).where(Client.name == name)).first()
    if client is None:
        raise click.ClickException(f"no client named {name!r}")
    click.echo(webhook_secret(settings.secret_key.get_secret_value().encode(), client.id))


@main.group()
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


@main.group()
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
    with _database(settings) as engine:
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
    from hub.audit.checkpoints import checkpoint

    settings = Settings()
    with _database(settings) as engine:
        signed = checkpoint(engine, _audit_key(settings), settings.audit_witness_path)
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
    with _database(settings) as engine:
        while True:
            done = archive(engine, _audit_key(settings), Path(settings.audit_archive_dir), before)
            if done is None:
                break
            click.echo(f"archived records {done.first_id}-{done.last_id} to {done.file}")


@main.group()
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


@main.group()
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
def adapter_new(
    name: str,
    protocol: str,
    package: bool,
    directory: str | None,
    title: str | None,
    personal_data: bool,
    port: int,
) -> None:
    """Generate a working adapter NAME (e.g. budget-code): the adapter, its models and
    mapping, a mock of the upstream with sample data, and tests that pass as generated."""
    from pathlib import Path

    from hub.scaffold import ScaffoldError, generate

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
        )
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"  {path}")
    install = f"pip install -e {target}  # the hub finds it through its entry point\n  "
    click.echo(
        f"\n{name}: {len(written)} files in {target}. Next:\n"
        f"  cd {target} && python -m pytest        # passes as generated\n"
        f"  {install if package else ''}see {target / 'README.md'}"
    )


@main.group()
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

