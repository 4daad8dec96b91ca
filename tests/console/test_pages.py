"""The console's pages through HTTP, without a browser: what each shows and changes, what
it audits, what it refuses, and that everything it prints is escaped."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx

from hub.console.i18n import catalogues
from hub.console.web import NAV
from tests.conftest import RunningHub, eventually
from tests.console.helpers import logged_in, post_form


def console_rows(hub: RunningHub, operation: str) -> list[dict]:
    return [
        r for r in hub.audit_rows() if r["service"] == "console" and r["operation"] == operation
    ]


async def a_subject(hub: RunningHub, mock_apps) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=mock_apps["population"]), base_url="http://m"
    ) as mock:
        return (await mock.get("/_mock/records?limit=1")).json()["records"][0]["personal_id"]


async def test_a_client_made_in_the_console_shows_its_key_once_and_the_key_works(
    hub: RunningHub, mock_apps
) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        made = await post_form(
            client,
            "/console/clients",
            "/console/clients",
            {"name": "one-stop-shop", "allow": "population", "purposes": "test\nhousehold"},
        )
        assert made.status_code == 201
        key = re.search(r'id="api-key">(hub_[^<]+)<', made.text).group(1)
        listing = await client.get("/console/clients")
        detail = await client.get("/console/clients/one-stop-shop")
        assert key not in listing.text and key not in detail.text
        assert key[:10] in detail.text  # the prefix tells keys apart
    subject = await a_subject(hub, mock_apps)
    answer = await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key))
    assert answer.status_code == 200
    await eventually(lambda: console_rows(hub, "create-client"), "the creation audited")
    [row] = console_rows(hub, "create-client")
    assert row["officer_id"] == "lan" and key not in str(hub.audit_rows())


async def test_bad_client_forms_are_refused_cleanly(hub: RunningHub) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        for form in (
            {"name": "", "allow": "*"},
            {"name": "x", "allow": ""},
            {"name": "x", "allow": "admin:clients"},  # hub grants are not the console's to give
            {"name": "x", "allow": "*", "fields": "population:no_such_field"},
            {"name": "x", "allow": "*", "rate_per_minute": "lots"},
        ):
            answer = await post_form(client, "/console/clients", "/console/clients", form)
            assert answer.status_code in (400, 403, 422), form
            assert "text/html" in answer.headers["content-type"] and "Traceback" not in answer.text
    with hub.hub.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM clients")).scalar() == 0


async def test_editing_rotating_and_revoking_a_client(hub: RunningHub) -> None:
    old_key = hub.client(allow=["population"], purposes=["test"])
    from hub.security.auth import describe_clients

    [described] = describe_clients(hub.hub.engine)
    name = described["name"]
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        page = f"/console/clients/{name}"
        edited = await post_form(
            client,
            page,
            page,
            {"allow": "population\ncivil-status", "purposes": "test", "rate_per_minute": "60"},
        )
        assert edited.status_code == 303
        [after] = describe_clients(hub.hub.engine)
        assert after["allow"] == ["civil-status", "population"] and after["rate_per_minute"] == 60
        rotated = await post_form(client, page, page + "/rotate", {"grace_hours": "0"})
        new_key = re.search(r'id="api-key">(hub_[^<]+)<', rotated.text).group(1)
        assert new_key != old_key
        revoked = await post_form(client, page, page + "/revoke", {})
        assert revoked.status_code == 303
        secret = await post_form(client, page, page + "/webhook-secret", {})
        assert re.search(r'id="webhook-secret">[0-9a-f]{64}<', secret.text)
    [gone] = describe_clients(hub.hub.engine)
    assert gone["active"] is False
    await eventually(lambda: console_rows(hub, "webhook-secret"), "audited")
    for operation in ("update-client", "rotate-key", "revoke"):
        assert console_rows(hub, operation)[0]["code"] == "OK"


async def test_injected_markup_in_a_client_name_or_an_audit_field_renders_inert(
    hub: RunningHub, mock_apps
) -> None:
    evil = "<script>alert(1)</script>"
    # An officer id is refused unless it is a code's shape (hub.core.caller), so the audit
    # field carrying markup is the purpose, which a client may be granted as free text.
    key = hub.client(purposes=[evil])
    from hub.security.auth import create_client

    create_client(
        hub.hub.engine, b"test-secret-key-0123456789", name=f"bad{evil}", allow=["*"], agency=evil
    )
    subject = await a_subject(hub, mock_apps)
    await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key, purpose=evil))
    await eventually(lambda: any(r["purpose"] == evil for r in hub.audit_rows()), "audited")
    client = await logged_in(hub, "lan", ["operator", "auditor"])
    async with contextlib.aclosing(client):
        pages = [
            await client.get("/console/clients"),
            await client.get(f"/console/audit?q=1&subject_id={subject}"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_fault_switch_takes_the_mock_down_and_the_circuit_opens(
    hub: RunningHub, mock_apps
) -> None:
    key = hub.client(purposes=["test"])
    subject = await a_subject(hub, mock_apps)
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        down = await post_form(
            client, "/console/services", "/console/services/population/fault", {"kind": "down"}
        )
        assert down.status_code == 303
        assert mock_apps["population"].state.faults.current.http_503
        for _ in range(hub.settings.circuit_consecutive_failures + 1):
            await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key))
        live = await client.get("/console/services/live")
        row = live.text[live.text.index('id="service-population"') :].split("</tr>")[0]
        assert 'data-healthy="no"' in row and "state circuit bad" in row and "http_503" in row
        assert "UPSTREAM" in row or "CIRCUIT" in row  # the last error's code
        cleared = await post_form(
            client, "/console/services", "/console/services/population/fault/clear", {}
        )
        assert cleared.status_code == 303
        assert not mock_apps["population"].state.faults.current.active
        bad = await post_form(
            client,
            "/console/services",
            "/console/services/population/fault",
            {"kind": "slow", "ms": "-5"},
        )
        assert bad.status_code == 400 and not mock_apps["population"].state.faults.current.active
        detail = await client.get("/console/services/population")
        assert "<code>lookup</code>" in detail.text and "&#34;properties&#34;" in detail.text
    await eventually(lambda: console_rows(hub, "clear-fault"), "audited")
    assert console_rows(hub, "set-fault")[0]["code"] == "OK"


async def test_an_audit_search_by_subject_is_itself_audited_about_that_subject(
    hub: RunningHub, mock_apps
) -> None:
    key = hub.client(purposes=["test"])
    subject = await a_subject(hub, mock_apps)
    await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key))
    client = await logged_in(hub, "thu", ["auditor"])
    async with contextlib.aclosing(client):
        await eventually(lambda: len(hub.audit_rows()) >= 2, "the look-up audited")
        found = await client.get(f"/console/audit?q=1&subject_id={subject}&why=complaint-42")
        assert found.status_code == 200 and found.text.count(subject) >= 2
        record_id = re.search(r"/console/audit/records/(\d+)", found.text).group(1)
        record = await client.get(f"/console/audit/records/{record_id}")
        assert record.status_code == 200 and subject in record.text
        report = await client.get(f"/console/audit/report?personal_id={subject}")
        assert report.status_code == 200 and 'id="report-entries"' in report.text
        assert 'media="print"' in report.text
        for bad in ("limit=100000", "subject_id=" + "9" * 65, "nonsense=1", "since=yesterday"):
            refused = await client.get(f"/console/audit?q=1&{bad}")
            assert refused.status_code == 400 and "Traceback" not in refused.text
        refused = await client.get("/console/audit/report?personal_id=12345")
        assert refused.status_code == 400
        verified = await client.post(
            "/console/audit/verify",
            data={"csrf": re.search(r'name="csrf" value="([^"]+)"', found.text).group(1)},
        )
        assert verified.status_code == 200 and 'class="state ok"' in verified.text
    await eventually(lambda: console_rows(hub, "audit-verify"), "audited")
    [search] = console_rows(hub, "audit-search")
    assert search["subject_id"] == subject and search["purpose"] == "complaint-42"
    assert search["officer_id"] == "thu"
    assert console_rows(hub, "access-report")[0]["subject_id"] == subject
    assert console_rows(hub, "audit-record")[0]["subject_id"] == subject


async def test_vietnamese_by_default_english_on_request(hub: RunningHub) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        vi = await client.get("/console/services")
        assert '<html lang="vi">' in vi.text and "Dịch vụ" in vi.text
        switched = await client.get("/console/lang?to=en&next=/console/services")
        assert switched.status_code == 303 and switched.headers["location"] == "/console/services"
        en = await client.get("/console/services")
        assert '<html lang="en">' in en.text and ">Services<" in en.text
        away = await client.get("/console/lang?to=en&next=https://evil.example/")
        assert away.headers["location"] == "/console/"


def test_every_message_of_the_templates_has_a_vietnamese_translation() -> None:
    templates = Path(__file__).parents[2] / "hub" / "console" / "templates"
    vi = catalogues()["vi"]
    messages = [label for _path, label, _roles in NAV]
    for template in templates.glob("*.html"):
        text = template.read_text()
        messages += [m.group(2) for m in re.finditer(r"""_\((["'])(.+?)\1\)""", text)]
        # labels the templates translate out of lists: ("key", "Label")
        messages += [m.group(1) for m in re.finditer(r"""\("[a-z_]+", "([^"]+)"\)""", text)]
    missing = [m for m in messages if vi.gettext(m) == m and m != "ms"]
    assert len(messages) > 150 and not missing, missing


async def test_the_assets_are_served_by_the_hub(hub: RunningHub) -> None:
    for asset in ("vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "console.css", "print.css"):
        answer = await hub.http.get(f"/console/static/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 100


async def test_verify_now_shows_and_audits_a_broken_chain(hub: RunningHub, mock_apps) -> None:
    from sqlalchemy import text

    key = hub.client(purposes=["test"])
    subject = await a_subject(hub, mock_apps)
    await hub.http.get(f"/v1/citizens/{subject}", headers=hub.headers(key))
    await eventually(lambda: hub.audit_rows(), "the look-up audited")
    with hub.hub.engine.begin() as conn:  # someone edits the trail behind the hub's back
        conn.execute(text("UPDATE audit_records SET purpose = 'altered' WHERE id = 1"))
    client = await logged_in(hub, "thu", ["auditor"])
    async with contextlib.aclosing(client):
        page = await client.get("/console/audit")
        verified = await client.post(
            "/console/audit/verify",
            data={"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)},
        )
        assert verified.status_code == 200 and 'class="state bad"' in verified.text
        await eventually(
            lambda: any(r["operation"] == "audit-verify" for r in hub.audit_rows()), "audited"
        )
        after = await client.get("/console/audit")
    assert 'id="last-verified"' in after.text and 'class="state bad"' in after.text
    [row] = console_rows(hub, "audit-verify")
    assert row["code"] == "AUDIT_CHAIN_BROKEN" and row["officer_id"] == "thu"


async def test_in_production_no_upstream_is_asked_whether_it_is_a_mock(
    hub: RunningHub, mock_apps
) -> None:
    client = await logged_in(hub, "lan", ["operator"])
    hub.settings.environment = "production"  # after the login: its cookie would be Secure
    async with contextlib.aclosing(client):
        page = await client.get("/console/services")
        assert page.status_code == 200 and 'id="faults-population"' not in page.text
        switched = await post_form(
            client, "/console/services", "/console/services/population/fault", {"kind": "down"}
        )
    assert switched.status_code == 400 and not mock_apps["population"].state.faults.current.active


async def test_the_clients_list_is_paged(hub: RunningHub, monkeypatch) -> None:
    from hub.console.pages import clients as clients_page

    monkeypatch.setattr(clients_page, "PAGE_SIZE", 2)
    for _ in range(3):
        hub.client()
    client = await logged_in(hub, "lan", ["operator"])
    async with contextlib.aclosing(client):
        first = await client.get("/console/clients")
        second = await client.get("/console/clients?offset=2")
        bad = await client.get("/console/clients?offset=-1")
    assert first.text.count("/console/clients/client-") == 2 and 'id="clients-next"' in first.text
    assert (
        second.text.count("/console/clients/client-") == 1
        and 'id="clients-next"' not in second.text
    )
    assert bad.status_code == 400
