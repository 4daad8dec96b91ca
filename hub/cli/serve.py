"""`hub serve`, `hub up` and `hub mocks`: running the hub and the mock national systems."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import click

from hub.cli.common import configure_logging, database
from hub.core.config import Settings

DEMO_CLIENT = "demo"
#: The development console user `hub up` makes (new password at every `hub up`).
DEMO_USER = "dev"

# uvloop and httptools come with uvicorn[standard]; measured ~2x the plain asyncio + h11.
# The protocol is uvicorn's httptools one with bounded request lines and headers and
# problem+json for what it refuses before the app (hub.core.http_server).
LOOP = "uvloop"


def _exit_zero_after_sigterm() -> None:
    """uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler
    found before it: make that a no-op, so that a clean stop exits 0 rather than dying by
    the signal (which supervisors read as a crash)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Processes to run.")
@click.option("--log-level", default="info", show_default=True)
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the hub (settings from HUB_* environment variables)."""
    import uvicorn

    from hub.core.config import ConfigurationError
    from hub.core.http_server import HubHttpProtocol
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
    log_config = configure_logging(log_level, settings)
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
        http=HubHttpProtocol,
        # SIGTERM: stop accepting, let requests in flight finish (up to the grace), then the
        # app's shutdown (the worker's tick ends, the audit trail is committed and signed).
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--mock-ports",
    "mock_base",
    type=click.IntRange(1, 65535 - 4),
    default=None,
    metavar="BASE",
    help="Start the mocks on BASE..BASE+4 instead of 8101-8105, and point the hub's adapters "
    "at them.",
)
@click.option(
    "--events-per-minute",
    "events_per_minute",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="N",
    help="The civil-status and business-registration mocks register births, deaths, "
    "marriages and status changes at this average rate (default: none, only POST "
    "/_mock/events); the hub reads them from their change feeds.",
)
@click.option("--log-level", default="info", show_default=True)
def up(
    host: str, port: int, mock_base: int | None, events_per_minute: float | None, log_level: str
) -> None:
    """Start every mock (8101-8105) and the hub (8000) on SQLite; Ctrl-C stops all.

    With --port and --mock-ports it runs on other ports, beside another `hub up`: the mocks
    push results and send IPNs to the hub's port, the hub calls the mocks' ports. With
    --events-per-minute the mocks make events on their own (docs/events.md)."""
    import uvicorn

    from hub.app import create_app
    from hub.core.http_server import HubHttpProtocol
    from mocks import mock_ports

    settings = Settings()
    log_config = configure_logging(log_level, settings)
    ports = mock_ports(mock_base)
    if mock_base is not None:
        _point_adapters_at(settings, ports)
    hub_url = f"http://127.0.0.1:{port}"
    command = _mocks_command(
        host=host, base_port=mock_base, hub_url=hub_url, events_per_minute=events_per_minute
    )
    mocks = subprocess.Popen(command)
    try:
        api_key = _demo_client(settings)
        console_password = _demo_user(settings)
        _wait_for_mocks(mocks, ports)
        base = f"http://{host}:{port}"
        first, last = min(ports.values()), max(ports.values())
        click.echo(
            f"\n  Hub on {base}  (docs: {base}/docs)  mocks on {host}:{first}-{last}\n"
            f"  Demo client API key (new at every `hub up`; development only):\n\n"
            f"    export HUB_KEY={api_key}\n\n"
            f"  Console: {base}/console/  user {DEMO_USER!r}, password (new at every `hub up`):\n\n"
            f"    {console_password}\n\n"
            f"  Subjects to try: curl -s 'http://{host}:<{first}..{last}>/_mock/records?limit=5'\n"
            f"  Then, with H=(-H \"Authorization: Bearer $HUB_KEY\" -H 'X-Purpose: demo'):\n"
            f'    curl -s "${{H[@]}}" {base}/v1/citizens/<personal_id>\n'
            f'    curl -s "${{H[@]}}" {base}/v1/citizens/<personal_id>/profile\n'
            f"    curl -s \"${{H[@]}}\" '{base}/v1/civil-status/records?personal_id=<id>'\n"
            f'    curl -s "${{H[@]}}" {base}/v1/enterprises/<enterprise_code>\n'
            "  Certificates and payments: docs/tutorial/async.md, docs/tutorial/payments.md.\n",
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
            http=HubHttpProtocol,
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        )
    finally:
        mocks.send_signal(signal.SIGINT)
        try:
            mocks.wait(timeout=10)
        except subprocess.TimeoutExpired:
            mocks.kill()


def _mocks_command(
    names: tuple[str, ...] = (),
    *,
    host: str,
    faults: tuple[str, ...] = (),
    base_port: int | None = None,
    hub_url: str | None = None,
    events_per_minute: float | None = None,
) -> list[str]:
    """`python -m mocks …`, as `hub up` and `hub mocks serve` run it."""
    command = [sys.executable, "-m", "mocks", *names, "--host", host]
    for fault in faults:
        command += ["--fault", fault]
    if base_port is not None:
        command += ["--base-port", str(base_port)]
    if hub_url is not None:
        command += ["--hub-url", hub_url]
    if events_per_minute is not None:
        command += ["--events-per-minute", str(events_per_minute)]
    return command


def _point_adapters_at(settings: Settings, ports: dict[str, int]) -> None:
    """Each built-in adapter's upstream is its mock on `ports` (over HUB_<NAME>_BASE_URL)."""
    adapters = dict(settings.adapters)
    for name, port in ports.items():
        adapters[name] = {**adapters.get(name, {}), "base_url": f"http://127.0.0.1:{port}"}
    settings.adapters = adapters


def _wait_for_mocks(
    process: subprocess.Popen[bytes], ports: dict[str, int], timeout_s: float = 30
) -> None:
    """Wait until every implemented mock answers its health check on its port."""
    import httpx

    from mocks import MOCKS

    waiting = {port for name, port in ports.items() if MOCKS[name].factory is not None}
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


def _demo_client(settings: Settings) -> str:
    """Create (or re-key) the `demo` client that may call everything, for a first look."""
    from sqlmodel import Session, delete, select

    from hub.core.models import ApiKey, Client
    from hub.security.auth import create_client

    if settings.environment == "production":
        raise click.ClickException("`hub up` is for development; use `hub serve` in production")
    with database(settings) as engine:
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


def _demo_user(settings: Settings) -> str:
    """(Re)create the development console user, operator and auditor; returns its password."""
    from sqlmodel import Session, delete, select

    from hub.console.users import create_user, new_password
    from hub.core.models import ConsoleSession, ConsoleUser

    password = new_password()
    with database(settings) as engine:
        with Session(engine) as session:
            old = session.exec(select(ConsoleUser).where(ConsoleUser.name == DEMO_USER)).first()
            if old is not None:
                session.exec(delete(ConsoleSession).where(ConsoleSession.user_id == old.id))  # type: ignore
                session.delete(old)
                session.commit()
        create_user(engine, DEMO_USER, ["operator", "auditor"], password)
    return password


@click.group()
def mocks() -> None:
    """The mock national systems."""


@mocks.command("serve")
@click.argument("names", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--fault", "faults", multiple=True, help="Start-up fault, e.g. latency=200, error=0.1"
)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65535 - 4),
    default=None,
    metavar="BASE",
    help="Ports BASE..BASE+4 for the mocks (population first, payment last) instead of 8101-8105.",
)
@click.option(
    "--hub-url",
    default=None,
    metavar="URL",
    help="The hub the judicial-records mock pushes to and the payment mock sends its IPNs to "
    "(default http://127.0.0.1:8000).",
)
def mocks_serve(
    names: tuple[str, ...],
    host: str,
    faults: tuple[str, ...],
    base_port: int | None,
    hub_url: str | None,
) -> None:
    """Serve the named mocks (all by default) on their fixed ports 8101-8105."""
    command = _mocks_command(names, host=host, faults=faults, base_port=base_port, hub_url=hub_url)
    os.execv(sys.executable, command)
