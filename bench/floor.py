"""The floor of any Python proxy on this machine: the benchmark's third mode.

    python bench/floor.py --port 18001 --upstream http://127.0.0.1:18101

A bare ASGI app on the hub's own server set-up (uvicorn, uvloop, httptools, one worker) that
answers `GET /v1/citizens/{id}` by sending the population mock the same SOAP request the
hub's adapter sends (envelope from a template, the C06-style auth header) through the hub's
own HTTP client (hub/core/http1.py), and returning the upstream's XML as it came. Nothing else:
no authentication, policy, validation, mapping, audit, metrics or error handling.

bench/run.py times it beside the direct call and the hub in the same run. What it costs is
what any Python service in front of the mock pays on this machine for the extra hop (a
server, a client, the bytes in and out twice); the hub's own pipeline is the difference
between it and the hub. Not a product: never deploy it, it checks nobody.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import soap_request  # the same request as the direct mode sends

from hub.core.http1 import Http1Backend

PREFIX = "/v1/citizens/"


def make_app(upstream: str) -> Any:
    url = f"{upstream}/dancu/ws"
    backend = Http1Backend(max_connections=100)
    timeout = httpx.Timeout(10.0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await backend.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        if path == "/health":
            status, body = 200, b"ok"
        elif path.startswith(PREFIX):
            content, headers = soap_request(path[len(PREFIX) :], url)
            answer = await backend.send(
                "POST", url, content=content, headers=headers, timeout=timeout
            )
            status, body = answer.status_code, answer.content
        else:
            status, body = 404, b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/xml; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
