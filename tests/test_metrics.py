"""/metrics shows the queues of background work the database holds for every hub process:
unfinished jobs by service, pending payments, queued webhooks."""

from __future__ import annotations

import re

from tests.test_async_e2e import applicant, open_payment, receiver, stack, wait_final  # noqa: F401


def gauge(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


async def test_the_backlog_of_background_work_is_in_the_metrics(stack):  # noqa: F811
    hub, judicial, _ = stack
    key = hub.client()
    before = (await hub.http.get("/metrics")).text
    assert gauge(before, "hub_payments_pending") == 0
    assert gauge(before, "hub_webhooks_queued") == 0

    people = (await applicant(judicial))["records"]
    person = {k: v for k, v in people[0].items() if k != "expected"}
    created = await hub.http.post(
        "/v1/judicial-records/requests",
        json={**person, "certificate_type": 1, "purpose_code": "01",
              "callback_url": "http://agency.test/hook"},
        headers=hub.headers(key),
    )  # fmt: skip
    assert created.status_code == 202, created.text
    opened = await open_payment(hub, key)
    assert opened.status_code == 201, opened.text

    during = (await hub.http.get("/metrics")).text
    assert gauge(during, "hub_jobs_unfinished", '{service="judicial-records"}') == 1
    assert gauge(during, "hub_payments_pending") == 1

    await wait_final(hub, key, created.json()["data"]["id"])
    after = (await hub.http.get("/metrics")).text
    assert gauge(after, "hub_jobs_unfinished", '{service="judicial-records"}') == 0
    assert gauge(after, "hub_webhooks_queued") == 1  # the job's webhook, not yet sent
    await hub.hub.worker.run_once()
    assert gauge((await hub.http.get("/metrics")).text, "hub_webhooks_queued") == 0
