"""`python -m mocks [NAMES...]`: serve mock upstreams on local ports (8101-8105).

Examples:
    python -m mocks                              # every implemented mock
    python -m mocks population --port 18101      # one mock on another port
    python -m mocks --base-port 18101 --hub-url http://127.0.0.1:18000   # beside `hub up`
    python -m mocks population --fault latency=200 --fault error=0.1
    python -m mocks population --workers 4       # several processes (per-worker fault state)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any

from mocks import MOCKS, mock_names, mock_ports


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mocks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"mocks to serve (default: all): {', '.join(mock_names())}",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="port (only with one NAME)")
    parser.add_argument(
        "--base-port",
        type=int,
        metavar="BASE",
        help="ports BASE, BASE+1, … for the mocks in --list order (default: 8101-8105)",
    )
    parser.add_argument(
        "--hub-url",
        metavar="URL",
        help="the hub the mocks call: judicial-records pushes its results and payment sends "
        "its IPNs there (default http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[=VALUE]",
        help="start-up fault, e.g. latency=200, error=0.1, timeout",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (only with one NAME)")
    parser.add_argument("--user", help="population: accepted user (default hub)")
    parser.add_argument(
        "--secret",
        help="the shared secret of every mock served that takes one: population "
        "(default population-secret) and payment (default payment-secret)",
    )
    parser.add_argument(
        "--events-per-minute",
        dest="event_rate_per_min",
        type=float,
        help="civil-status and business-registration: register births, deaths, marriages "
        "and status changes at this average rate (default: none, only POST /_mock/events)",
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--list", action="store_true", help="list the mocks and exit")
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from mocks.faults import FaultConfigError, parse_fault_options

    unknown = [name for name in args.names if name not in MOCKS]
    if unknown:
        parser.error(f"unknown mock(s): {', '.join(unknown)}; known: {', '.join(mock_names())}")
    if (args.port is not None or args.workers != 1) and len(args.names) != 1:
        parser.error("--port and --workers need exactly one NAME")
    if args.port is not None and args.base_port is not None:
        parser.error("give --port or --base-port, not both")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        parse_fault_options(args.fault)
    except FaultConfigError as exc:
        parser.error(f"--fault: {exc}")


def _hub_options(args: argparse.Namespace) -> dict[str, str]:
    from mocks.serve import hub_options

    return hub_options(args.hub_url) if args.hub_url else {}


def _run_workers(args: argparse.Namespace, options: dict[str, Any]) -> None:
    import uvicorn

    from mocks.serve import factory_options, uvicorn_speedups

    name = args.names[0]
    if MOCKS[name].factory is None:
        sys.exit(f"mocks: {name} is not implemented yet")
    port = args.port or mock_ports(args.base_port)[name]
    # As serve_mocks does: a mock that links to itself names its port, one that calls the
    # hub gets its URL.
    linked = {"public_url": f"http://{args.host}:{port}", **_hub_options(args)}
    options = {**factory_options(MOCKS[name], linked), **options}
    # Worker processes import the app themselves, so the options travel in the environment.
    os.environ["MOCKS_APP"] = name
    os.environ["MOCKS_OPTIONS"] = json.dumps({**options, "fault_options": args.fault})
    uvicorn.run(
        "mocks:app_from_env",
        factory=True,
        host=args.host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
        lifespan="off",
        **uvicorn_speedups(),
    )


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for name in mock_names():
            spec = MOCKS[name]
            state = "" if spec.factory else "  (not implemented yet)"
            print(f"{name:<22} {spec.default_port}  {spec.description}{state}")
        return
    _check(parser, args)
    options = {
        key: getattr(args, key)
        for key in ("user", "secret", "event_rate_per_min")
        if getattr(args, key)
    }
    if args.workers > 1:
        _run_workers(args, options)
        return
    from mocks.serve import serve_mocks

    names = args.names or None
    ports = {args.names[0]: args.port} if args.port is not None else mock_ports(args.base_port)
    coroutine = serve_mocks(
        names,
        host=args.host,
        ports=ports,
        fault_options=args.fault,
        log_level=args.log_level,
        options={**options, **_hub_options(args)},
    )
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    with contextlib.suppress(KeyboardInterrupt):
        if uvloop is not None:
            uvloop.run(coroutine)
        else:
            asyncio.run(coroutine)


if __name__ == "__main__":
    main()
