"""The console's people and sessions without a browser: logins (audited, throttled, locked),
cookies, CSRF, roles, idle expiry, forged cookies, logout, and the `hub users` commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from hub.console.sessions import TOUCH_S
from hub.console.users import FREE_FAILURES, authenticate, create_user, list_users
from tests.conftest import RunningHub, eventually
from tests.console.helpers import (
    PASSWORD,
    browser,
    csrf_of,
    log_in,
    logged_in,
    make_user,
    post_form,
)


def console_rows(hub: RunningHub, operation: str) -> list[dict]:
    return [
        r for r in hub.audit_rows() if r["service"] == "console" and r["operation"] == operation
    ]


async def test_login_sets_a_strict_http_only_cookie_and_is_audited(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    make_user(hub, "lan", ["operator"])
    async with browser(hub) as client:
        answer = await log_in(client, "lan")
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("hub_console=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # development: plain http on the laptop
        page = await client.get("/console/services")
        assert page.status_code == 200 and "lan" in page.text
    await eventually(lambda: console_rows(hub, "login"), "the login's audit record")
    [row] = console_rows(hub, "login")
    assert row["code"] == "OK" and row["officer_id"] == "lan" and row["client_id"].startswith("us_")
    everything = str(hub.audit_rows()) + caplog.text
    assert PASSWORD not in everything


async def test_production_cookies_are_secure(hub: RunningHub) -> None:
    hub.settings.environment = "production"
    make_user(hub, "lan", ["viewer"])
    async with browser(hub, "https://hub.test") as client:  # a Secure cookie goes over https only
        answer = await log_in(client, "lan")
    assert answer.status_code == 303
    assert any("Secure" in c for c in answer.headers.get_list("set-cookie") if "hub_console=" in c)


async def test_wrong_passwords_are_refused_audited_and_lock_the_account(hub: RunningHub) -> None:
    make_user(hub, "lan", ["operator"])
    async with browser(hub) as client:
        for _ in range(FREE_FAILURES):
            answer = await log_in(client, "lan", "wrong password here")
            assert answer.status_code == 401 and "hub_console=" not in str(
                answer.headers.get_list("set-cookie")
            )
        locked = await log_in(client, "lan")  # the right password, but locked now
        assert locked.status_code == 401
    await eventually(lambda: len(console_rows(hub, "login")) == FREE_FAILURES + 1, "audit")
    rows = console_rows(hub, "login")
    assert {r["code"] for r in rows} == {"UNAUTHENTICATED"}
    assert {r["officer_id"] for r in rows} == {"lan"}
    assert "wrong password here" not in str(hub.audit_rows())


async def test_an_unknown_name_is_audited_without_the_name_typed(hub: RunningHub) -> None:
    async with browser(hub) as client:
        answer = await log_in(client, "hunter2-typed-in-the-name-box")
    assert answer.status_code == 401
    await eventually(lambda: console_rows(hub, "login"), "audit")
    [row] = console_rows(hub, "login")
    assert row["client_id"] == "console" and row["officer_id"] is None
    assert "hunter2" not in str(hub.audit_rows())


async def test_login_attempts_from_one_address_are_throttled(hub: RunningHub) -> None:
    hub.settings.console_login_per_minute = 3
    make_user(hub, "lan", ["operator"])
    async with browser(hub) as client:
        answers = [await log_in(client, "lan", "not it at all!") for _ in range(4)]
    assert [a.status_code for a in answers][-1] == 429
    # the login's own counters: no address in the metrics, nothing taken from API clients
    assert b"console-login" not in hub.hub.metrics.render()
    assert b"127.0.0.1" not in hub.hub.metrics.render()


async def test_login_without_its_csrf_token_is_refused(hub: RunningHub) -> None:
    make_user(hub, "lan", ["operator"])
    async with browser(hub) as client:
        await client.get("/console/login")
        answer = await client.post(
            "/console/login", data={"name": "lan", "password": PASSWORD, "csrf": "forged"}
        )
    assert answer.status_code == 403 and "hub_console=" not in str(answer.headers)


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(hub: RunningHub) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        for token in (None, "wrong-token"):
            data = {"name": "sneaky", "allow": "*", "purposes": "test"}
            if token:
                data["csrf"] = token
            answer = await client.post("/console/clients", data=data)
            assert answer.status_code == 403 and "text/html" in answer.headers["content-type"]
    with hub.hub.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM clients")).scalar() == 0
    await eventually(lambda: len(console_rows(hub, "create-client")) == 2, "the refusals audited")
    assert {r["code"] for r in console_rows(hub, "create-client")} == {"FORBIDDEN"}


async def test_a_viewer_posting_an_operator_form_is_refused(hub: RunningHub, mock_apps) -> None:
    client = await logged_in(hub, "vy", ["viewer"])
    async with contextlib.aclosing(client):
        answer = await post_form(
            client, "/console/services", "/console/services/population/fault", {"kind": "down"}
        )
        assert answer.status_code == 403
        assert (await client.get("/console/clients")).status_code == 403
        assert (await client.get("/console/audit")).status_code == 403
    assert not mock_apps["population"].state.faults.current.active  # nothing changed
    await eventually(lambda: console_rows(hub, "set-fault"), "the refusal audited")
    assert console_rows(hub, "set-fault")[0]["code"] == "FORBIDDEN"


async def test_forged_and_idle_sessions_go_back_to_the_login(hub: RunningHub) -> None:
    async with browser(hub) as forged:
        forged.cookies.set("hub_console", "forged-token", domain="hub.test", path="/console")
        answer = await forged.get("/console/services")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        assert (await client.get("/console/services")).status_code == 200
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(
            seconds=hub.settings.console_idle_timeout_s + TOUCH_S + 1
        )
        with hub.hub.engine.begin() as conn:
            conn.execute(text("UPDATE console_sessions SET last_seen_at = :t"), {"t": long_ago})
        answer = await client.get("/console/services")
        assert answer.status_code == 303
    with hub.hub.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM console_sessions")).scalar() == 0


async def test_logout_ends_the_session(hub: RunningHub) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        page = await client.get("/console/services")
        cookie = client.cookies.get("hub_console")
        answer = await client.post("/console/logout", data={"csrf": csrf_of(page)})
        assert answer.status_code == 303
    async with browser(hub) as replay:
        replay.cookies.set("hub_console", cookie, domain="hub.test", path="/console")
        assert (await replay.get("/console/services")).status_code == 303


async def test_redirects_after_login_stay_inside_the_console(hub: RunningHub) -> None:
    make_user(hub, "lan", ["operator"])
    async with browser(hub) as client:
        form = await client.get("/console/login")
        answer = await client.post(
            "/console/login",
            data={
                "name": "lan",
                "password": PASSWORD,
                "csrf": csrf_of(form),
                "next": "//evil.example/",
            },
        )
    assert answer.headers["location"] == "/console/"


def test_totp_is_required_once_enrolled(settings) -> None:
    import pyotp

    from hub.core.db import create_schema, make_engine

    engine = make_engine(settings.database_url)
    create_schema(engine)
    _user, uri = create_user(engine, "tam", ["auditor"], PASSWORD, totp=True)
    assert uri and uri.startswith("otpauth://totp/")
    secret = pyotp.parse_uri(uri).secret
    from hub.console.users import LoginRefused

    with pytest.raises(LoginRefused):
        authenticate(engine, "tam", PASSWORD, "000000")
    assert authenticate(engine, "tam", PASSWORD, pyotp.TOTP(secret).now()).name == "tam"
    stored = engine.connect().execute(text("SELECT password_hash FROM console_users")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    engine.dispose()


def test_the_users_commands(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.cli import main
    from hub.core.db import make_engine

    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    made = runner.invoke(main, ["users", "create", "hoa", "--role", "auditor", "--role", "viewer"])
    assert made.exit_code == 0, made.output
    password = made.output.split("password (shown once): ")[1].strip()
    listed = runner.invoke(main, ["users", "list"])
    assert '"name": "hoa"' in listed.output and "argon2" not in listed.output
    engine = make_engine(settings.database_url)
    assert authenticate(engine, "hoa", password).roles == {"auditor", "viewer"}
    assert runner.invoke(main, ["users", "disable", "hoa"]).exit_code == 0
    assert list_users(engine)[0]["active"] is False
    reset = runner.invoke(main, ["users", "reset-password", "hoa"], input="")
    assert reset.exit_code == 0 and "password (shown once)" in reset.output
    bad = runner.invoke(main, ["users", "create", "x", "--role", "admin"])
    assert bad.exit_code != 0
    engine.dispose()


async def test_disabling_a_user_or_a_new_password_ends_their_sessions(hub: RunningHub) -> None:
    from hub.console.users import reset_password, set_active

    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        assert (await client.get("/console/services")).status_code == 200
        set_active(hub.hub.engine, "lan", False)
        assert (await client.get("/console/services")).status_code == 303
        set_active(hub.hub.engine, "lan", True)
        assert (await log_in(client, "lan")).status_code == 303
        reset_password(hub.hub.engine, "lan", "another long password")
        assert (await client.get("/console/services")).status_code == 303
        assert (await log_in(client, "lan")).status_code == 401


async def test_a_session_ends_at_its_maximum_age_however_active(hub: RunningHub) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=hub.settings.console_session_max_s + 1)
        with hub.hub.engine.begin() as conn:
            conn.execute(text("UPDATE console_sessions SET created_at = :t"), {"t": old})
        assert (await client.get("/console/services")).status_code == 303


async def test_an_htmx_refresh_of_an_ended_session_sends_the_whole_page_to_the_login(
    hub: RunningHub,
) -> None:
    async with browser(hub) as client:
        answer = await client.get(
            "/console/services/live",
            headers={"hx-request": "true", "hx-current-url": "http://hub.test/console/services"},
        )
    assert answer.status_code == 204
    assert answer.headers["hx-redirect"] == "/console/login?next=/console/services"


ROLE_PAGES = {
    "/console/services": {"operator", "viewer"},
    "/console/services/population": {"operator", "viewer"},
    "/console/traffic": {"operator", "viewer"},
    "/console/reused": {"operator", "viewer"},
    "/console/reused.csv": {"operator", "viewer"},
    "/console/clients": {"operator"},
    "/console/work": {"operator"},
    "/console/audit": {"auditor"},
    "/console/audit/report": {"auditor"},
}


async def test_every_page_checks_the_role(hub: RunningHub) -> None:
    for role in ("operator", "auditor", "viewer"):
        client = await logged_in(hub, f"user-{role}", [role])
        async with contextlib.aclosing(client):
            for path, allowed in ROLE_PAGES.items():
                answer = await client.get(path)
                assert answer.status_code == (200 if role in allowed else 403), (role, path)
                if answer.status_code == 403:
                    assert "text/html" in answer.headers["content-type"]
            landing = await client.get("/console/", follow_redirects=True)
            assert landing.status_code == 200
