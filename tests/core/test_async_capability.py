"""Asynchronous requests are a capability: any AsyncAdapter gets its job routes, none named
by the core.

A throwaway second asynchronous adapter (a land survey, defined here, declaring no routes
of its own) is served at `/v1/jobs/land-survey` beside the fake judicial-records adapter,
whose own resource routes and the generic ones reach the same jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest

from hub.adapter import AsyncAdapter, CallContext, Health, operation
from hub.app import create_app
from hub.canonical.common import CanonicalModel, PersonalIdStr
from hub.core.config import Settings
from hub.core.registry import AdapterLoadError
from hub.errors import InvalidSignature
from tests.conftest import RunningHub, running_hub
from tests.core import fakes
from tests.core.fakes import FakeJudicialAdapter, WebhookReceiver
from tests.core.test_jobs import APPLICATION

SURVEY_KEY = b"survey-key"


class SurveyRequest(CanonicalModel):
    personal_id: PersonalIdStr
    parcel: str


class SurveyReference(CanonicalModel):
    reference: str
    status: str


class SurveyQuery(CanonicalModel):
    reference: str


class SurveyState(CanonicalModel):
    reference: str
    status: str
    area_m2: float | None = None


class LandSurvey(AsyncAdapter):
    """A second asynchronous system, as an outside package would ship it."""

    name = "land-survey"
    version = "0.1.0"
    final_statuses = frozenset({"measured"})

    @operation(idempotent=False, subject="personal_id")
    async def submit(self, request: SurveyRequest, ctx: CallContext) -> SurveyReference:
        """Ask for a parcel to be measured."""
        return SurveyReference(reference="S-" + request.parcel, status="queued")

    @operation()
    async def status(self, request: SurveyQuery, ctx: CallContext) -> SurveyState:
        """A survey's state."""
        return SurveyState(reference=request.reference, status="queued")

    def parse_push(self, body: bytes, headers: Mapping[str, str]) -> SurveyState:
        signature = hmac.new(SURVEY_KEY, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-survey-signature", ""), signature):
            raise InvalidSignature()
        return SurveyState.model_validate(json.loads(body))

    async def health(self) -> Health:
        return Health(ok=True)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[RunningHub]:
    fakes.reset()
    settings.adapters = {
        "judicial-records": {"base_url": "http://unused.test"},
        "land-survey": {"base_url": "http://unused.test"},
    }
    async with running_hub(
        settings,
        adapters=[FakeJudicialAdapter, LandSurvey],
        webhook_transport=httpx.ASGITransport(app=WebhookReceiver().app()),
    ) as running:
        yield running


async def test_a_second_async_adapter_gets_submit_status_and_push(hub) -> None:
    key = hub.client()
    body = {"personal_id": "001085012345", "parcel": "P-17"}
    submitted = await hub.http.post("/v1/jobs/land-survey", json=body, headers=hub.headers(key))
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["data"]
    assert submitted.headers["location"] == f"/v1/jobs/land-survey/{job['id']}"
    assert submitted.json()["meta"]["operation"] == "submit"

    pushed_body = json.dumps({"reference": "S-P-17", "status": "measured", "area_m2": 412.5})
    signature = hmac.new(SURVEY_KEY, pushed_body.encode(), hashlib.sha256).hexdigest()
    forged = await hub.http.post(
        "/v1/jobs/land-survey/results", content=pushed_body, headers={"x-survey-signature": "0"}
    )
    assert forged.status_code == 401
    pushed = await hub.http.post(
        "/v1/jobs/land-survey/results",
        content=pushed_body,
        headers={"x-survey-signature": signature},
    )
    assert pushed.json()["data"] == {"id": job["id"], "status": "measured", "applied": True}

    read = await hub.http.get(submitted.headers["location"], headers=hub.headers(key))
    assert read.status_code == 200
    assert read.json()["data"]["status"] == "measured"
    assert read.json()["data"]["area_m2"] == 412.5  # the result, beside the job's own keys
    # Another client does not see it; the subject is in the audit trail.
    other = await hub.http.get(submitted.headers["location"], headers=hub.headers(hub.client()))
    assert other.status_code == 404
    requests = [r for r in hub.audit_rows() if r["operation"] == "request"]
    assert [(r["service"], r["subject_id"]) for r in requests] == [("land-survey", "001085012345")]


async def test_declared_and_generic_routes_reach_the_same_jobs(hub) -> None:
    key = hub.client()
    declared = await hub.http.post(
        "/v1/judicial-records/requests", json=APPLICATION, headers=hub.headers(key)
    )
    assert declared.status_code == 202
    job_id = declared.json()["data"]["id"]
    assert declared.headers["location"] == f"/v1/judicial-records/requests/{job_id}"
    generic = await hub.http.get(f"/v1/jobs/judicial-records/{job_id}", headers=hub.headers(key))
    assert generic.status_code == 200 and generic.json()["data"]["id"] == job_id
    # A job is read only through the service it belongs to.
    crossed = await hub.http.get(f"/v1/jobs/land-survey/{job_id}", headers=hub.headers(key))
    assert crossed.status_code == 404


async def test_services_that_are_not_asynchronous_are_404(hub) -> None:
    key = hub.client()
    for path in ("/v1/jobs/nowhere", "/v1/jobs/" + "x" * 300):
        answer = await hub.http.post(path, json={}, headers=hub.headers(key))
        assert answer.status_code == 404 and answer.json()["code"] == "UNKNOWN_SERVICE"
        assert "x" * 50 not in answer.text
    answer = await hub.http.get("/v1/jobs/nowhere/job_1", headers=hub.headers(key))
    assert answer.status_code == 404
    answer = await hub.http.post("/v1/jobs/nowhere/results", content=b"{}")
    assert answer.status_code == 404


def test_an_async_adapter_without_status_is_refused(settings) -> None:
    class NoStatus(AsyncAdapter):
        name = "no-status"
        version = "0.1.0"
        submit = LandSurvey.submit

    settings.adapters = {"no-status": {"base_url": "http://u.test"}}
    with pytest.raises(AdapterLoadError, match="'status' is required and missing"):
        create_app(settings, adapters=[NoStatus])
