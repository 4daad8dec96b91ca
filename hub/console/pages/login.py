"""Logging in and out, the language switch, and the console's front door."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.api.deps import get_hub
from hub.api.middleware import request_id_of
from hub.console import web
from hub.console.i18n import LANGUAGES
from hub.console.sessions import end_session, start_session
from hub.console.users import ROLES, LoginRefused, User, authenticate
from hub.core.gateway import CallerHeaders
from hub.core.state import Hub
from hub.errors import Forbidden, HubError, RateLimited, Unauthenticated
from hub.security.ratelimit import RateLimiter

router = APIRouter(include_in_schema=False)

#: The audit records' client for a login attempt naming no known user.
ANONYMOUS = "console"
#: Longest name and password read from the form (the rest is not a login).
MAX_FIELD = 1024


@router.get(web.PREFIX)
async def bare() -> Response:
    return RedirectResponse(web.PREFIX + "/", status_code=308)


@router.get(web.PREFIX + "/")
@web.page(*ROLES)
async def index(page: web.Page) -> Response:
    for path, _label, roles in web.NAV:
        if page.login.user.has(*roles):
            return RedirectResponse(web.PREFIX + path, status_code=303)
    raise Forbidden("your role has no page")


def _login_page(request: Request, hub: Hub, *, status_code: int = 200, error: str = "") -> Response:
    token = web.new_token()
    response = web.render(
        request,
        "login.html",
        status_code=status_code,
        title="Log in",
        csrf=token,
        next=web.safe_next(request.query_params.get("next")),
        error=error,
    )
    web.set_cookie(response, hub, web.LOGIN_COOKIE, token, max_age=3600)
    return response


@router.get(web.PREFIX + "/login")
async def login_form(request: Request) -> Response:
    return _login_page(request, get_hub(request))


async def _audit_login(
    hub: Hub, request: Request, user: User | None, error: HubError | None, operation: str = "login"
) -> None:
    caller = CallerHeaders(
        request_id=request_id_of(request.scope),
        authorization=None,
        officer_id=user.name if user else None,  # never the name typed for an unknown user:
    )  # it may be a password typed in the wrong box
    await hub.gateway.record_event(
        caller, user.id if user else ANONYMOUS, web.SERVICE, operation, error=error
    )


def _login_limiter(request: Request, hub: Hub) -> RateLimiter | None:
    """The login attempts' own limiter, over the API's counters (Redis when configured): not
    the API's, which would count logins against the hub's global limit and label its
    metrics with addresses. One per app, so its fallback counts survive a Redis outage."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "console_login_limiter", None)
    if limiter is None and hub.gateway.limiter is not None:
        limiter = state.console_login_limiter = RateLimiter(
            hub.gateway.limiter.counters, global_per_minute=None
        )
    return limiter


def _address_key(hub: Hub, address: str) -> str:
    """The counter's name for an address: a pseudonym, so Redis holds no address in clear."""
    return "console-login:" + (hub.gateway.pseudonym(address) or "-")


@router.post(web.PREFIX + "/login")
async def login(request: Request) -> Response:
    hub = get_hub(request)
    try:
        form = await web.read_form(request)
    except HubError as exc:
        return web.error_page(request, exc, None)
    expected = request.cookies.get(web.LOGIN_COOKIE, "")
    submitted = form.get("csrf", "")
    if not expected or not hmac.compare_digest(expected, submitted):
        return web.error_page(
            request, Forbidden("the form's security token is missing or wrong: reload"), None
        )
    address = request.client.host if request.client else "-"
    limiter = _login_limiter(request, hub)
    try:
        if limiter is not None:
            await limiter.check(_address_key(hub, address), hub.settings.console_login_per_minute)
    except RateLimited as exc:
        await _audit_login(hub, request, None, exc)
        return _login_page(request, hub, status_code=429, error="Too many attempts: wait a minute.")
    name, password = form.get("name", "")[:MAX_FIELD], form.get("password", "")[:MAX_FIELD]
    try:
        user = await asyncio.to_thread(
            authenticate, hub.engine, name.strip(), password, form.get("code", "")[:16]
        )
    except LoginRefused as refused:
        await _audit_login(hub, request, refused.user, Unauthenticated("console login refused"))
        return _login_page(
            request,
            hub,
            status_code=401,
            error="Wrong name, password or code, or the account is locked for a while.",
        )
    token, _login = await asyncio.to_thread(start_session, hub.engine, user)
    await _audit_login(hub, request, user, None)
    response = RedirectResponse(web.safe_next(form.get("next")), status_code=303)
    web.set_cookie(response, hub, web.COOKIE, token, max_age=None)
    response.delete_cookie(web.LOGIN_COOKIE, path=web.PREFIX)
    return response


@router.post(web.PREFIX + "/logout")
@web.page(*ROLES, action="logout")
async def logout(page: web.Page) -> Response:
    await asyncio.to_thread(end_session, page.hub.engine, page.login.session_key)
    await _audit_login(page.hub, page.request, page.login.user, None, "logout")
    response = RedirectResponse(web.PREFIX + "/login", status_code=303)
    response.delete_cookie(web.COOKIE, path=web.PREFIX)
    return response


@router.get(web.PREFIX + "/lang")
async def switch_language(request: Request) -> Response:
    chosen = request.query_params.get("to", "")
    response = RedirectResponse(web.safe_next(request.query_params.get("next")), status_code=303)
    if chosen in LANGUAGES:
        web.set_cookie(response, get_hub(request), web.LANG_COOKIE, chosen, max_age=365 * 86400)
    return response
