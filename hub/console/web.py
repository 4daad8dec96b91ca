"""The console's request plumbing, shared by every page: templates in the reader's language,
the session cookie, CSRF, roles, forms, audit of actions, and error pages.

A page is one module under hub/console/pages with its own routes, each declared with
`@page(...)`, and one template extending base.html; the navigation is `NAV`.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.api.deps import get_hub, read_bytes
from hub.api.middleware import request_id_of
from hub.console.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalogues
from hub.console.sessions import Login, csrf_ok, find_session
from hub.core.gateway import CallerHeaders
from hub.core.state import Hub
from hub.errors import BadRequest, Forbidden, HubError, PayloadTooLarge
from hub.security.auth import Principal

PREFIX = "/console"
COOKIE = "hub_console"
LOGIN_COOKIE = "hub_console_login"  # the login form's CSRF token, before any session
LANG_COOKIE = "hub_console_lang"
SERVICE = "console"  # the audit records' service
MAX_FORM_BYTES = 65536
MAX_FORM_FIELDS = 200

#: Pages in the navigation: (path under /console, label, roles that see it).
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("/services", "Services", ("operator", "viewer")),
    ("/traffic", "Traffic", ("operator", "viewer")),
    ("/clients", "Clients", ("operator",)),
    ("/work", "Work in flight", ("operator",)),
    ("/reused", "Data reused", ("operator", "viewer")),
    ("/audit", "Audit", ("auditor",)),
]

#: Console pages may load only the console's own files: no inline script, no other origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_HERE = Path(__file__).parent


@functools.cache
def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{PREFIX}/static/{name}"
    env.globals["url"] = lambda path: PREFIX + path
    return env


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE, DEFAULT_LANGUAGE)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def secure_cookies(hub: Hub) -> bool:
    return hub.settings.environment == "production"


def set_cookie(response: Response, hub: Hub, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(hub),
    )


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    login: Login | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the reader's language; every value is escaped by the template engine."""
    lang = language(request)
    translations = catalogues()[lang]
    nav = []
    if login is not None:
        nav = [(PREFIX + p, label) for p, label, roles in NAV if login.user.has(*roles)]
    html = (
        templates()
        .get_template(template)
        .render(
            _=translations.gettext,
            lang=lang,
            languages=LANGUAGES,
            login=login,
            nav=nav,
            path=request.url.path,
            here=_here(request),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["content-security-policy"] = CSP
    return response


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """A redirect target inside the console, never another site (`//evil`, `/\\evil`)."""
    if value and value.startswith(PREFIX + "/") and "\\" not in value and "//" not in value:
        return value
    return PREFIX + "/"


def error_page(request: Request, exc: HubError, login: Login | None) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code=exc.status,
        login=login,
        title=exc.title,
        code=exc.code,
        detail=exc.detail,
        request_id=request_id_of(request.scope),
    )


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body, bounded (the last of repeated fields wins; `getlist` style
    fields are read by `form_list`)."""
    return dict(await read_form_pairs(request))


async def read_form_pairs(request: Request) -> list[tuple[str, str]]:
    body = await read_bytes(request, MAX_FORM_BYTES)
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read") from None


@dataclass
class Page:
    """What a page handler gets: the hub, the reader's login and (on POST) the form."""

    request: Request
    hub: Hub
    login: Login
    form: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status_code=status_code, login=self.login, **context)

    def caller(self, purpose: str | None = None) -> CallerHeaders:
        return CallerHeaders(
            request_id=request_id_of(self.request.scope),
            authorization=None,
            purpose=purpose,
            officer_id=self.login.user.name,
        )

    async def audited(
        self,
        operation: str,
        work: Callable[[], Awaitable[tuple[dict[str, Any], str | None]]],
        *,
        purpose: str | None = None,
        personal_data: bool = False,
    ) -> dict[str, Any]:
        """Run a console action as the admin API runs its calls: one audit record under the
        user (client id = the user's id, officer = the user's name), refusals included.
        `work` returns the data and the data subject's personal ID, if any."""
        user = self.login.user
        principal = Principal(user.id, user.name, frozenset(), frozenset())

        async def run(_: Principal) -> tuple[dict[str, Any], str | None]:
            return await work()

        result = await self.hub.gateway.local(
            self.caller(purpose),
            SERVICE,
            operation,
            run,
            personal_data=personal_data,
            principal=principal,
            authorize=False,
        )
        return result.data

    async def refused(self, operation: str, error: HubError) -> None:
        """Audit an action refused before it ran (a role, a CSRF token)."""
        await self.hub.gateway.record_event(
            self.caller(), self.login.user.id, SERVICE, operation, error=error
        )


Handler = Callable[[Page], Awaitable[Response]]


def login_redirect(request: Request) -> Response:
    """To the login page, and back here after it. A page's htmx refresh gets htmx's own
    redirect instead, so the whole page goes to the login rather than the table alone."""
    target = quote(_here(request), safe="/")
    if request.headers.get("hx-request") == "true":
        page = safe_next(urlsplit(request.headers.get("hx-current-url", "")).path)
        login = f"{PREFIX}/login?next={quote(page, safe='/')}"
        return Response(status_code=204, headers={"hx-redirect": login})
    return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)


def page(
    *roles: str, action: str | None = None
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Declare a console route: the session must be live and hold one of `roles`. A POST
    (`action`: the audit record's operation for a refusal) must carry the session's CSRF
    token in its form; otherwise a clean 403 page and nothing changed."""

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            hub = get_hub(request)
            login = await _login(request, hub)
            if login is None:
                return login_redirect(request)
            current = Page(request, hub, login)
            try:
                if request.method == "POST":
                    current.pairs = await read_form_pairs(request)
                    current.form = dict(current.pairs)
                    if not csrf_ok(login, current.form.get("csrf")):
                        error = Forbidden("the form's security token is missing or wrong: reload")
                        await current.refused(action or "form", error)
                        raise error
                if not login.user.has(*roles):
                    error = Forbidden("your role does not allow this page")
                    if request.method == "POST":
                        await current.refused(action or "form", error)
                    raise error
                return await handler(current)
            except HubError as exc:
                return error_page(request, exc, login)

        # not functools.wraps: FastAPI would read the handler's signature through __wrapped__
        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        return endpoint

    return decorate


async def _login(request: Request, hub: Hub) -> Login | None:
    import asyncio

    settings = hub.settings
    return await asyncio.to_thread(
        find_session,
        hub.engine,
        request.cookies.get(COOKIE),
        idle_s=settings.console_idle_timeout_s,
        max_s=settings.console_session_max_s,
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def form_list(pairs: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in pairs if key == name]


def lines(value: str | None) -> list[str]:
    """A textarea or comma-separated field as a list of its non-blank entries."""
    return [part.strip() for part in (value or "").replace(",", "\n").splitlines() if part.strip()]


def one_of(form: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = form.get(name, "")
    if value not in choices:
        raise BadRequest(f"{name} must be one of " + ", ".join(choices))
    return value


__all__ = ["NAV", "Page", "PayloadTooLarge", "page", "render"]
