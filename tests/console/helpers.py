"""What the console's tests share: a console user, a browser-like HTTP client, its forms."""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

from hub.console.users import create_user
from tests.conftest import RunningHub

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_user(hub: RunningHub, name: str, roles: Iterable[str]) -> str:
    create_user(hub.hub.engine, name, roles, PASSWORD)
    return name


def browser(hub: RunningHub, base_url: str = "http://hub.test") -> httpx.AsyncClient:
    """A client of its own (its own cookie jar), as one person's browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=hub.app), base_url=base_url)


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"name": name, "password": password, "csrf": csrf_of(form), "next": "/console/"},
    )


async def logged_in(hub: RunningHub, name: str, roles: Iterable[str]) -> httpx.AsyncClient:
    make_user(hub, name, roles)
    client = browser(hub)
    answer = await log_in(client, name)
    assert answer.status_code == 303, answer.text
    return client


async def post_form(
    client: httpx.AsyncClient, page_path: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Post a form the way the browser does: with the CSRF token of the page it is on."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf": csrf_of(page), **data})
