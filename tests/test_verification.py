"""A verification is not an oracle (issue 18, finding 2): one overall verdict by default
(tests/test_population_e2e.py), throttled per client and per person with defaults, and
enumeration patterns alerted in a log line and a metric that carry nothing personal.

The windows are the rate limiter's store: Redis in CI's second pass (HUB_TEST_REDIS_URL),
process memory in the first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.population import PopulationAdapter
from adapters.population.models import CitizenVerification, CitizenVerificationResult
from hub.adapter import Adapter, operation
from hub.core.config import Settings
from mocks.data import load_citizens
from tests.conftest import RunningHub, running_hub
from tests.test_pipeline import assert_problem
from tests.test_ratelimit import Clock


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.inner, self.calls = httpx.ASGITransport(app=app), 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await self.inner.handle_async_request(request)


@pytest.fixture(scope="module")
def citizen() -> Any:
    return next(iter(load_citizens()))


@contextlib.asynccontextmanager
async def _verifying(settings: Settings, population_mock: Any) -> AsyncIterator[RunningHub]:
    settings.adapters = {"population": {"base_url": "http://population.mock"}}
    upstream = CountingTransport(population_mock)
    async with running_hub(
        settings, adapters=[PopulationAdapter], transports={"population": upstream}
    ) as hub:
        hub.hub.gateway.limiter.clock = hub.clock = Clock()  # type: ignore[attr-defined]
        hub.upstream = upstream  # type: ignore[attr-defined]
        yield hub


@pytest.fixture
async def verifying(settings, population_mock) -> AsyncIterator[RunningHub]:
    async with _verifying(settings, population_mock) as hub:
        yield hub


def stated(citizen: Any, day: dt.date | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "date_of_birth": (day or citizen.date_of_birth).isoformat(),
        **changes,
    }


async def verify(hub: RunningHub, key: str, body: dict[str, Any]) -> httpx.Response:
    return await hub.http.post("/v1/citizens/verify", json=body, headers=hub.headers(key))


def alerts(metrics: str, pattern: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("hub_verify_alerts_total{") and f'pattern="{pattern}"' in line:
            return float(line.split()[-1])
    return 0.0


async def test_the_date_of_birth_attack_is_stopped_by_the_default_throttle(
    verifying, citizen, caplog
):
    """The probe's attack: every day of the birth year (the year is in the ID) until the
    verdict says match. With the defaults, a client verifies one person 5 times a day."""
    caplog.set_level(logging.WARNING, "hub.verification")
    hub = verifying
    assert hub.settings.verify_per_subject == 5
    key = hub.client(allow=["population:verify"])
    year = citizen.date_of_birth.year
    days = [dt.date(year, 1, 1) + dt.timedelta(days=n) for n in range(114)]
    if citizen.date_of_birth in days:
        days.remove(citizen.date_of_birth)
    days.insert(60, citizen.date_of_birth)  # the true date, well past the allowance
    answers = [await verify(hub, key, stated(citizen, day)) for day in days]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert all(a.json()["data"] == {"match": False} for a in answers[:5])
    for refused in answers[5:]:
        assert_problem(refused, 429, "RATE_LIMITED")
        assert int(refused.headers["retry-after"]) > 3600  # the day's window
    assert hub.upstream.calls == 5  # the refused ones never reached upstream
    codes = [r["code"] for r in hub.audit_rows()]
    assert codes.count("OK") == 5 and codes.count("RATE_LIMITED") == 109  # all audited

    # The alerts: a run of no-match answers, then the throttle; nothing personal in them.
    metrics = (await hub.http.get("/metrics")).text
    assert alerts(metrics, "mismatches") == 3  # the 3rd, 4th and 5th no-match
    assert alerts(metrics, "subject-repeat") == 109
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.verification"]
    assert lines and all("verification alert" in line for line in lines)
    text = "\n".join(lines) + metrics
    for personal in (citizen.personal_id, citizen.full_name, citizen.date_of_birth.isoformat()):
        assert personal not in text
    assert hub.hub.gateway.pseudonym(citizen.personal_id) in lines[0]

    # A day later the window has moved on; another client was never held back.
    other = hub.client(allow=["population:verify"])
    assert (await verify(hub, other, stated(citizen))).json()["data"] == {"match": True}
    hub.clock.now += 86_400
    assert (await verify(hub, key, stated(citizen))).json()["data"] == {"match": True}


async def test_a_client_enumerating_people_is_throttled_per_minute(settings, population_mock):
    settings.verify_per_minute = 4
    async with _verifying(settings, population_mock) as hub:
        key = hub.client(allow=["population:verify"])
        people = list(load_citizens())[:6]
        answers = [(await verify(hub, key, stated(c))).status_code for c in people]
        assert answers == [200] * 4 + [429] * 2
        metrics = (await hub.http.get("/metrics")).text
        assert alerts(metrics, "client-rate") == 2
        hub.clock.now += 60
        assert (await verify(hub, key, stated(people[5]))).status_code == 200


async def test_the_throttles_are_settings_and_can_be_turned_off(settings, population_mock):
    settings.verify_per_subject = 0
    settings.verify_per_minute = 0
    settings.verify_mismatch_alert = 0
    async with _verifying(settings, population_mock) as hub:
        key = hub.client(allow=["population:verify"])
        person = next(iter(load_citizens()))
        wrong = stated(person, person.date_of_birth + dt.timedelta(days=1))
        assert [(await verify(hub, key, wrong)).status_code for _ in range(8)] == [200] * 8
        metrics = (await hub.http.get("/metrics")).text
        assert "hub_verify_alerts_total{" not in metrics


def test_a_verification_must_name_its_subject_and_a_verdict_of_its_output():
    with pytest.raises(TypeError, match="verification"):

        class NoVerdict(Adapter):
            name, version = "no-verdict", "1"

            @operation(subject="personal_id", verification="verdict")
            async def check(
                self, request: CitizenVerification, ctx: Any
            ) -> CitizenVerificationResult:
                raise NotImplementedError
