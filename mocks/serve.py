"""Run mock servers: several uvicorn servers in one event loop, one port each.

`serve_mocks()` is what `python -m mocks` and the hub's CLI call. Signals are handled here,
not by uvicorn: each uvicorn.Server would otherwise install its own SIGINT handler over the
previous one's, and only the last server started would hear Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import signal
import sys
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any

import uvicorn

from mocks import MOCKS, MockSpec, create_mock_app, mock_names
from mocks.faults import parse_fault_options

__all__ = ["hub_options", "serve_mocks", "uvicorn_speedups"]


def uvicorn_speedups() -> dict[str, Any]:
    """`loop`/`http` settings for uvicorn: uvloop and httptools when installed."""
    options: dict[str, Any] = {}
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        options["http"] = "httptools"
    return options


def hub_options(hub_url: str) -> dict[str, str]:
    """The options that make the mocks call the hub at `hub_url` instead of `hub up`'s
    default one, http://127.0.0.1:8000: where the judicial-records mock pushes its results
    and the payment mock sends its IPNs (each mock takes its own; serve_mocks gives each
    only those)."""
    from mocks.judicial_records.push import PUSH_PATH
    from mocks.payment.ipn import IPN_PATH

    base = hub_url.rstrip("/")
    return {"push_url": base + PUSH_PATH, "ipn_url": base + IPN_PATH}


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to serve_mocks."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def factory_options(spec: MockSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of shared options (user, secret, …) this mock's factory accepts."""
    accepted = inspect.signature(spec.load_factory()).parameters
    return {key: value for key, value in options.items() if key in accepted}


def _selected(names: Iterable[str] | None) -> list[MockSpec]:
    specs = []
    for name in mock_names() if names is None else names:
        if name not in MOCKS:
            raise LookupError(f"unknown mock {name!r} (known: {', '.join(mock_names())})")
        if MOCKS[name].factory is None:
            print(f"mocks: {name} is not implemented yet, skipped", file=sys.stderr)
            continue
        specs.append(MOCKS[name])
    return specs


async def _run(name: str, server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit:
        # uvicorn exits the process when it cannot bind; that must not kill sibling servers
        # abruptly, so it becomes an ordinary error after they have been stopped.
        raise RuntimeError(f"the {name} mock could not start (port in use?)") from None


async def serve_mocks(
    names: list[str] | None,
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    fault_options: Sequence[str] = (),
    log_level: str = "warning",
    options: Mapping[str, Any] | None = None,
) -> None:
    """Serve the named mocks (all when None) until cancelled, SIGINT or SIGTERM.

    `ports` overrides default ports by name; `fault_options` are start-up faults
    (`"latency=200"`) applied to every mock; `options` (e.g. user, secret) go to each
    mock whose factory takes them.
    """
    faults = parse_fault_options(fault_options)
    servers: list[tuple[str, uvicorn.Server]] = []
    for spec in _selected(names):
        port = (ports or {}).get(spec.name, spec.default_port)
        # A mock that links to itself (the payment mock's pay page) must name its real port.
        kwargs = factory_options(spec, {"public_url": f"http://{host}:{port}", **(options or {})})
        app = create_mock_app(spec.name, faults=faults, **kwargs)
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, lifespan="on", **uvicorn_speedups()
        )
        servers.append((spec.name, _Server(config)))
        print(f"mocks: {spec.name} on http://{host}:{port}", file=sys.stderr)
    if not servers:
        return

    def stop() -> None:
        for _, server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)
            handled.append(sig)
    tasks = [asyncio.create_task(_run(name, server)) for name, server in servers]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        stop()  # on cancellation, a failure, or one server ending: stop them all
        await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        for sig in handled:
            loop.remove_signal_handler(sig)
