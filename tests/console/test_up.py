"""`hub up`'s console, without a browser: the printed password logs in, the console's
actions land in the audit trail, and `hub audit verify` finds the chain intact."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import hub_up
from tests.test_servers import HUB

pytestmark = pytest.mark.server


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def test_the_printed_password_logs_in_and_the_audit_chain_stays_intact(tmp_path: Path) -> None:
    with hub_up(tmp_path) as (up, env), httpx.Client(base_url=up.hub, timeout=10) as browser:
        wrong = browser.post(
            "/console/login",
            data={"name": "dev", "password": "guess", "csrf": csrf(browser.get("/console/login"))},
        )
        assert wrong.status_code == 401
        login = browser.post(
            "/console/login",
            data={
                "name": "dev",
                "password": up.password,
                "csrf": csrf(browser.get("/console/login")),
            },
        )
        assert login.status_code == 303
        services = browser.get("/console/services")
        assert services.status_code == 200 and 'id="service-population"' in services.text
        made = browser.post(
            "/console/clients",
            data={
                "csrf": csrf(services),
                "name": "up-test",
                "allow": "population",
                "purposes": "demo",
            },
        )
        assert made.status_code == 201
        subject = httpx.get(f"{up.population}/_mock/records?limit=1").json()["records"][0][
            "personal_id"
        ]
        assert up.call(subject) == 200
        report = browser.get(f"/console/audit/report?personal_id={subject}")
        assert report.status_code == 200 and "lookup" in report.text
        trail = browser.get("/console/audit?q=1&service=console&why=up-test")
        for operation in ("login", "create-client", "access-report"):
            assert f"<td>{operation}</td>" in trail.text, operation
        verified = subprocess.run(
            [*HUB, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
