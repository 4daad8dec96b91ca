"""The console in a real browser: Debian's Chromium driven by Playwright, against `hub up`
(the hub and every mock on free ports, as a user starts them), logged in with the password
`hub up` prints. Each step waits with Playwright's own expectations; each page's screenshot
goes to docs/console/, so the pictures in the docs stay true.

Where Chromium is missing these tests fail when CI is set (CI installs it: .ci/run), and
skip with the reason on a laptop.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks import mock_ports
from tests.conftest import database_url, reset_database
from tests.test_servers import HUB, free_port, free_ports_in_a_row, start, stop, wait_until_up

pytestmark = pytest.mark.server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).parents[2] / "docs" / "console"
WAIT_MS = 20_000


def _need_chromium() -> None:
    problem = None
    if not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests: {problem}")
    pytest.skip(problem)


class Up:
    """`hub up` on free ports: its URLs, the demo API key and the console password."""

    def __init__(self, proc: subprocess.Popen, hub: str, population: str) -> None:
        self.proc, self.hub, self.population = proc, hub, population
        self.key = self.password = ""
        self.output: list[str] = []

    def read_banner(self) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        password_next = False
        while time.monotonic() < deadline and not self.password:
            line = self.proc.stdout.readline()
            self.output.append(line)
            if "export HUB_KEY=" in line:
                self.key = line.split("export HUB_KEY=", 1)[1].strip()
            elif "Console:" in line:
                password_next = True
            elif password_next and line.strip():
                self.password = line.strip()
        assert self.key and self.password, "".join(self.output)
        # keep reading, so the hub never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def call(self, personal_id: str) -> int:
        headers = {"authorization": f"Bearer {self.key}", "x-purpose": "demo"}
        return httpx.get(
            f"{self.hub}/v1/citizens/{personal_id}", headers=headers, timeout=10
        ).status_code


@contextlib.contextmanager
def hub_up(folder: Path) -> Iterator[tuple[Up, dict[str, str]]]:
    """`hub up` on free ports with its own database and archive folder; its environment."""
    url = database_url(folder)
    reset_database(url)
    hub_port, mock_base = free_port(), free_ports_in_a_row(5)
    env = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "browser-test-secret",
        "HUB_AUDIT_ARCHIVE_DIR": str(folder / "archive"),
        "HUB_UPSTREAM_TIMEOUT_S": "2",
        "HUB_RETRY_ATTEMPTS": "1",
        "HUB_CIRCUIT_CONSECUTIVE_FAILURES": "3",
        "HUB_CIRCUIT_COOLDOWN_S": "1",
        "HUB_CIRCUIT_MAX_COOLDOWN_S": "2",
        "HUB_HEALTH_CACHE_S": "0",
    }
    command = [*HUB, "up", "--port", str(hub_port), "--mock-ports", str(mock_base)]
    proc = start([*command, "--log-level", "warning"], env)
    population = f"http://127.0.0.1:{mock_ports(mock_base)['population']}"
    running = Up(proc, f"http://127.0.0.1:{hub_port}", population)
    try:
        running.read_banner()
        wait_until_up(proc, f"{running.hub}/health", timeout=60)
        wait_until_up(proc, f"{population}/_mock/health")
        yield running, env
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    _need_chromium()
    with hub_up(tmp_path_factory.mktemp("console-up")) as (running, _env):
        yield running


@pytest.fixture(scope="module")
def chromium_browser(up: Up) -> Iterator[Any]:
    """Debian's Chromium, headless, with a fresh profile of its own (Playwright's launch)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any, up: Up, **options: Any) -> Any:
    """A fresh context: no cookies, the hub as base URL (each test is a new person)."""
    return browser.new_context(base_url=up.hub, viewport={"width": 1100, "height": 760}, **options)


@pytest.fixture
def chromium(chromium_browser: Any, up: Up) -> Iterator[Any]:
    context = new_context(chromium_browser, up)
    try:
        yield context
    finally:
        context.close()


def log_in(tab: Any, up: Up) -> None:
    from playwright.sync_api import expect

    tab.goto("/console/")
    expect(tab.locator("input[name=name]")).to_be_visible(timeout=WAIT_MS)
    tab.fill("input[name=name]", "dev")
    tab.fill("input[name=password]", up.password)
    tab.click("form[action='/console/login'] button[type=submit]")
    expect(tab.locator("header .user")).to_contain_text("dev", timeout=WAIT_MS)


@pytest.fixture
def page(chromium: Any, up: Up) -> Iterator[Any]:
    """A tab, logged in as `hub up`'s development user."""
    tab = chromium.new_page()
    log_in(tab, up)
    try:
        yield tab
    finally:
        tab.close()


def shoot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"))


def a_subject(up: Up) -> str:
    return httpx.get(f"{up.population}/_mock/records?limit=1").json()["records"][0]["personal_id"]


def test_log_in_with_the_printed_password(chromium: Any, up: Up) -> None:
    from playwright.sync_api import expect

    tab = chromium.new_page()
    tab.goto("/console/services")
    expect(tab).to_have_url(re.compile(r"/console/login\?next="), timeout=WAIT_MS)
    shoot(tab, "login")
    tab.fill("input[name=name]", "dev")
    tab.fill("input[name=password]", "not the password at all")
    tab.click("form[action='/console/login'] button[type=submit]")
    expect(tab.locator(".problem")).to_be_visible(timeout=WAIT_MS)
    tab.fill("input[name=name]", "dev")
    tab.fill("input[name=password]", up.password)
    tab.click("form[action='/console/login'] button[type=submit]")
    expect(tab).to_have_url(re.compile(r"/console/services$"), timeout=WAIT_MS)
    expect(tab.locator("h1")).to_have_text("Dịch vụ", timeout=WAIT_MS)  # Vietnamese first
    tab.close()


def test_create_a_client_and_see_its_key_once(page: Any, up: Up) -> None:
    from playwright.sync_api import expect

    page.goto("/console/clients")
    form = page.locator("#new-client")
    form.locator("input[name=name]").fill("mot-cua-tinh")
    form.locator("input[name=agency]").fill("Sở Tư pháp <b>")
    form.locator("textarea[name=allow]").fill("population")
    form.locator("textarea[name=purposes]").fill("demo")
    shoot(page, "clients")
    form.locator("button[type=submit]").click()
    key = page.locator("#api-key")
    expect(key).to_have_text(re.compile(r"^hub_[A-Za-z0-9_-]{43}$"), timeout=WAIT_MS)
    api_key = key.inner_text()
    # the picture in the docs shows where the key is, not a key (secret scanners, copy-paste)
    key.evaluate("(element, text) => { element.textContent = text; }", api_key[:10] + "…")
    shoot(page, "client-key-once")
    subject = a_subject(up)
    headers = {"authorization": f"Bearer {api_key}", "x-purpose": "demo"}
    assert httpx.get(f"{up.hub}/v1/citizens/{subject}", headers=headers).status_code == 200
    page.goto("/console/clients")
    row = page.locator("#clients tr", has_text="mot-cua-tinh")
    expect(row).to_contain_text("Sở Tư pháp <b>", timeout=WAIT_MS)  # shown as text, inert
    assert api_key not in page.content() and api_key[:10] in page.content()


def test_take_the_population_mock_down_and_see_it_red_then_recover(page: Any, up: Up) -> None:
    from playwright.sync_api import expect

    subject = a_subject(up)
    page.goto("/console/services")
    circuit = page.locator("#service-population .circuit")
    expect(circuit).to_have_class(re.compile(r"\bok\b"), timeout=WAIT_MS)
    faults = page.locator("#faults-population")
    faults.locator("select[name=kind]").select_option("down")
    faults.locator("form[action$='/fault'] button[type=submit]").click()
    expect(page.locator("#service-population .faults")).to_contain_text("http_503", timeout=WAIT_MS)
    for _ in range(4):  # a help desk's look-ups fail, and the circuit opens
        assert up.call(subject) == 503
    row = page.locator("#service-population")
    expect(circuit).to_have_class(re.compile(r"\bbad\b"), timeout=WAIT_MS)  # htmx refreshes it
    expect(row).to_have_attribute("data-healthy", "no", timeout=WAIT_MS)
    shoot(page, "services-down")
    page.locator("#faults-population form[action$='/fault/clear'] button").click()
    expect(page.locator("#service-population .faults")).not_to_contain_text(
        "http_503", timeout=WAIT_MS
    )
    deadline = time.monotonic() + 30  # the circuit lets a trial through after its cool-down
    while up.call(subject) != 200:
        assert time.monotonic() < deadline, "the population service never recovered"
        time.sleep(0.3)
    expect(circuit).to_have_class(re.compile(r"\bok\b"), timeout=WAIT_MS)
    expect(row).to_have_attribute("data-healthy", "yes", timeout=WAIT_MS)
    shoot(page, "services")


def test_search_the_audit_by_personal_id_and_open_the_access_report(page: Any, up: Up) -> None:
    from playwright.sync_api import expect

    subject = a_subject(up)
    assert up.call(subject) == 200
    page.goto("/console/audit")
    form = page.locator("#audit-search")
    form.locator("input[name=subject_id]").fill(subject)
    form.locator("input[name=why]").fill("khieu-nai-123")
    form.locator("button[type=submit]").click()
    results = page.locator("#audit-results tbody tr")
    expect(results.first).to_contain_text(subject, timeout=WAIT_MS)
    shoot(page, "audit")
    results.first.locator("a").first.click()
    expect(page.locator("#audit-record")).to_contain_text(subject, timeout=WAIT_MS)
    page.goto("/console/audit/report")
    page.locator("#report-form input[name=personal_id]").fill(subject)
    page.locator("#report-form button[type=submit]").click()
    expect(page.locator("#report-subject")).to_have_text(subject, timeout=WAIT_MS)
    expect(page.locator("#report-entries tbody tr").first).to_contain_text("demo", timeout=WAIT_MS)
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden(timeout=WAIT_MS)  # the print stylesheet
    shoot(page, "access-report")
    page.emulate_media(media="screen")


def test_switch_language(page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/console/services")
    expect(page.locator("h1")).to_have_text("Dịch vụ", timeout=WAIT_MS)
    page.locator(".langs a[lang=en]").click()
    expect(page.locator("h1")).to_have_text("Services", timeout=WAIT_MS)
    expect(page.locator("html")).to_have_attribute("lang", "en", timeout=WAIT_MS)
    shoot(page, "services-en")
    page.locator(".langs a[lang=vi]").click()
    expect(page.locator("h1")).to_have_text("Dịch vụ", timeout=WAIT_MS)


def test_traffic_charts_work_in_flight_and_data_reused(page: Any, up: Up) -> None:
    from playwright.sync_api import expect

    subject = a_subject(up)
    assert up.call(subject) == 200
    page.goto("/console/traffic")
    chart = page.locator("[data-chart=by_service]")
    expect(chart).to_have_attribute("data-drawn", "yes", timeout=WAIT_MS)  # uPlot, under the CSP
    expect(chart.locator("canvas")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#traffic-services")).to_contain_text("population", timeout=WAIT_MS)
    shoot(page, "traffic")
    page.goto("/console/work")
    expect(page.locator("#reconcile-form")).to_be_visible(timeout=WAIT_MS)
    shoot(page, "work")
    page.goto("/console/reused")
    expect(page.locator("#reused-system")).to_contain_text("population", timeout=WAIT_MS)
    shoot(page, "reused")


def test_reading_and_posting_forms_with_javascript_off(chromium_browser: Any, up: Up) -> None:
    from playwright.sync_api import expect

    context = new_context(chromium_browser, up, java_script_enabled=False)
    try:
        tab = context.new_page()
        log_in(tab, up)  # the login form posts normally
        tab.goto("/console/services")
        expect(tab.locator("#service-population .circuit")).to_be_visible(timeout=WAIT_MS)
        faults = tab.locator("#faults-population")
        faults.locator("select[name=kind]").select_option("slow")
        faults.locator("input[name=ms]").fill("30")
        faults.locator("form[action$='/fault'] button[type=submit]").click()
        expect(tab.locator("#service-population .faults")).to_contain_text(
            "latency_ms=30", timeout=WAIT_MS
        )
        tab.locator("#faults-population form[action$='/fault/clear'] button").click()
        expect(tab.locator("#service-population .faults")).not_to_contain_text(
            "latency", timeout=WAIT_MS
        )
        tab.goto("/console/traffic")  # the charts need JavaScript; the tables do not
        expect(tab.locator("#traffic-services")).to_be_visible(timeout=WAIT_MS)
        expect(tab.locator("[data-chart=by_service]")).not_to_have_attribute("data-drawn", "yes")
    finally:
        context.close()
