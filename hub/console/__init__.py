"""The console: operators, auditors and viewers see and steer the hub in a browser at
`/console/` (docs/console.md).

Server-rendered pages (Jinja2), a little progressive JavaScript (htmx, vendored) and every
asset shipped in this package: the hub runs in closed networks, nothing comes from a CDN.
Each page is one module in `pages/` and one template; `web` holds what they share.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from hub.console import web
from hub.console.pages import audit, clients, login, reused, services, traffic, work

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Serve the console at /console/ on the hub's app."""
    for module in (login, services, traffic, clients, work, reused, audit):
        app.include_router(module.router)
    app.mount(
        web.PREFIX + "/static",
        StaticFiles(packages=[("hub.console", "static")]),
        name="console-static",
    )
