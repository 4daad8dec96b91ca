"""Subscriptions under policy and bad input, and delivery's faults: grants and purposes as
for a call, field grants cutting the payload, callbacks the hub may not send to, acks of
someone else's events, a PULL storm, an agency endpoint failing until dead letter and the
re-drive, province filters, a feed answering garbage, a grant withdrawn before delivery."""

from __future__ import annotations

import orjson
from sqlmodel import Session

from hub.core.models import Client
from tests.events.conftest import DEATHS, EventStack


async def test_subscribing_needs_the_event_types_grant_and_a_granted_purpose(events: EventStack):
    agency = events.agency()
    unknown = await events.subscribe(
        agency, event_type="civil-status:nobody-cares", delivery="pull"
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_EVENT_TYPE")
    assert unknown.headers["content-type"] == "application/problem+json"
    other = await events.subscribe(agency, event_type="population:moved", delivery="pull")
    assert other.status_code == 404
    outsider = events.agency(allow=["population"])
    refused = await events.subscribe(outsider, delivery="pull")
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    narrow = events.agency(allow=["civil-status:birth-registered"])
    assert (await events.subscribe(narrow, delivery="pull")).status_code == 403
    purpose = await events.hub.http.post(
        "/v1/subscriptions",
        json={"event_type": DEATHS, "delivery": "pull"},
        headers=events.headers(agency, purpose="curiosity"),
    )
    assert (purpose.status_code, purpose.json()["code"]) == (403, "PURPOSE_NOT_ALLOWED")
    none = await events.hub.http.post(
        "/v1/subscriptions",
        json={"event_type": DEATHS, "delivery": "pull"},
        headers=events.headers(agency, purpose=None),
    )
    assert (none.status_code, none.json()["code"]) == (400, "PURPOSE_REQUIRED")
    anonymous = await events.hub.http.post("/v1/subscriptions", json={"event_type": DEATHS})
    assert anonymous.status_code == 401
    listed = await events.hub.http.get("/v1/subscriptions", headers=events.headers(agency))
    assert listed.json()["data"]["subscriptions"] == [], "nothing half-written"


async def test_bad_subscriptions_are_refused_with_a_problem(events: EventStack):
    agency = events.agency()
    for body, status, code in (
        ({"delivery": "push"}, 400, "BAD_REQUEST"),  # no callback
        ({"delivery": "pull", "callback_url": "http://agency.test/hook"}, 400, "BAD_REQUEST"),
        ({"delivery": "push", "callback_url": "ftp://agency.test/x"}, 400, "INVALID_CALLBACK_URL"),
        (
            {"delivery": "push", "callback_url": "http://u:p@agency.test/"},
            400,
            "INVALID_CALLBACK_URL",
        ),
        ({"delivery": "carrier-pigeon"}, 422, "VALIDATION_ERROR"),
        ({"delivery": "pull", "provinces": ["999"]}, 422, "VALIDATION_ERROR"),
        ({"delivery": "pull", "ttl_s": 1}, 422, "VALIDATION_ERROR"),
        ({"delivery": "pull", "colour": "red"}, 422, "VALIDATION_ERROR"),
    ):
        answer = await events.subscribe(agency, **body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), body
    garbage = await events.hub.http.post(
        "/v1/subscriptions", content=b"{nope", headers=events.headers(agency)
    )
    assert garbage.status_code == 400
    assert (await events.subscribe(agency, delivery="pull")).status_code == 201
    twice = await events.subscribe(agency, delivery="pull")
    assert (twice.status_code, twice.json()["code"]) == (409, "SUBSCRIPTION_EXISTS")


async def test_no_client_reaches_another_clients_subscription_or_events(events: EventStack):
    mine, theirs = events.agency(), events.agency()
    sid = (await events.subscribe(theirs, delivery="pull")).json()["data"]["id"]
    await events.register_death(await events.someone())
    await events.tick(2)
    event = (
        await events.hub.http.get(
            f"/v1/subscriptions/{sid}/events/next", headers=events.headers(theirs)
        )
    ).json()["data"]
    for method, path in (
        ("GET", f"/v1/subscriptions/{sid}"),
        ("GET", f"/v1/subscriptions/{sid}/events/next"),
        ("POST", f"/v1/subscriptions/{sid}/events/{event['id']}/ack"),
        ("PATCH", f"/v1/subscriptions/{sid}"),
        ("DELETE", f"/v1/subscriptions/{sid}"),
    ):
        answer = await events.hub.http.request(
            method, path, headers=events.headers(mine), json={} if method == "PATCH" else None
        )
        assert answer.status_code == 404, (method, path)
        assert event["id"] not in answer.text
    own = (await events.subscribe(mine, delivery="pull")).json()["data"]["id"]
    foreign_ack = await events.hub.http.post(
        f"/v1/subscriptions/{own}/events/{event['id']}/ack", headers=events.headers(mine)
    )
    assert (foreign_ack.status_code, foreign_ack.json()["code"]) == (404, "UNKNOWN_EVENT")
    still = await events.hub.http.get(
        f"/v1/subscriptions/{sid}/events/next", headers=events.headers(theirs)
    )
    assert still.json()["data"]["id"] == event["id"], "their event is still theirs to take"


async def test_field_grants_cut_the_payload(events: EventStack):
    agency = events.agency(fields={"civil-status": ["personal_id", "record.date_of_death"]})
    sid = (await events.subscribe(agency, delivery="pull")).json()["data"]["id"]
    person = await events.someone()
    await events.register_death(person)
    await events.tick(2)
    pulled = await events.hub.http.get(
        f"/v1/subscriptions/{sid}/events/next", headers=events.headers(agency)
    )
    data = pulled.json()["data"]["data"]
    assert data["personal_id"] == person
    assert set(data) == {"personal_id", "record"} and set(data["record"]) == {"date_of_death"}
    audited = [r for r in events.hub.audit_rows() if r["operation"] == "pull:death-registered"]
    assert [orjson.loads(r["fields"]) for r in audited] == [["personal_id", "record.date_of_death"]]


async def test_a_pull_storm_is_rate_limited(events: EventStack):
    agency = events.agency(rate_per_minute=5)
    sid = (await events.subscribe(agency, delivery="pull")).json()["data"]["id"]
    statuses = [
        (
            await events.hub.http.get(
                f"/v1/subscriptions/{sid}/events/next", headers=events.headers(agency)
            )
        ).status_code
        for _ in range(8)
    ]
    assert statuses[:4] == [204] * 4 and statuses[-1] == 429


async def test_a_failing_agency_is_retried_then_dead_lettered_in_order_and_re_driven(
    events: EventStack,
):
    events.hub.hub.events.sender.max_attempts = 2  # type: ignore[union-attr]
    agency = events.agency()
    sid = (
        await events.subscribe(agency, delivery="push", callback_url="http://agency.test/hook")
    ).json()["data"]["id"]
    first, second = await events.someone(0), await events.someone(1)
    await events.register_death(first)
    await events.register_death(second)
    events.receiver.statuses = [500, 503]  # the first event fails twice, then all is well
    await events.tick(6)
    ids = [orjson.loads(raw)["data"]["personal_id"] for _, raw in events.receiver.received]
    assert ids == [first, first, second], "FIFO: the second waits for the first to end"
    state = await events.hub.http.get(f"/v1/subscriptions/{sid}", headers=events.headers(agency))
    assert state.json()["data"]["backlog"] == 0
    dead_id = orjson.loads(events.receiver.received[0][1])["id"]
    dead = await events.hub.http.get(
        f"/v1/subscriptions/{sid}/events/{dead_id}", headers=events.headers(agency)
    )
    assert dead.json()["data"]["status"] == "dead" and dead.json()["data"]["attempts"] == 2
    # re-drive: replay from the dead event's sequence number
    replayed = await events.hub.http.patch(
        f"/v1/subscriptions/{sid}",
        json={"replay_from": dead.json()["data"]["sequence"]},
        headers=events.headers(agency),
    )
    assert replayed.status_code == 200 and replayed.json()["data"]["backlog"] == 2
    await events.tick(2)
    ids = [orjson.loads(raw)["data"]["personal_id"] for _, raw in events.receiver.received]
    assert ids == [first, first, second, first, second]


async def test_a_province_filter_lets_only_its_provinces_through(events: EventStack):
    person = await events.someone()
    listing = (await events.mock_call("GET", "/_mock/records?limit=20")).json()
    records = {p["personal_id"]: p for p in listing["persons"]}
    assert person in records
    registered = (await events.register_death(person)).json()
    province = registered["hoTich"]["noiDangKy"]["maTinh"]
    elsewhere = "001" if province != "001" else "079"
    here, there = events.agency(), events.agency()
    sub_here = (await events.subscribe(here, delivery="pull", provinces=[province])).json()
    sub_there = (await events.subscribe(there, delivery="pull", provinces=[elsewhere])).json()
    await events.tick(2)
    got_here = await events.hub.http.get(
        f"/v1/subscriptions/{sub_here['data']['id']}/events/next", headers=events.headers(here)
    )
    got_there = await events.hub.http.get(
        f"/v1/subscriptions/{sub_there['data']['id']}/events/next", headers=events.headers(there)
    )
    assert got_here.status_code == 200 and got_there.status_code == 204


async def test_a_feed_answering_garbage_stores_nothing_and_counts_an_error(events: EventStack):
    agency = events.agency()
    sid = (await events.subscribe(agency, delivery="pull")).json()["data"]["id"]
    await events.register_death(await events.someone())
    fault = await events.mock_call("PUT", "/_mock/faults", json={"malformed": True})
    assert fault.status_code in (200, 204)
    await events.tick(2)
    metrics = (await events.hub.http.get("/metrics")).text
    assert 'hub_event_feed_errors_total{kind="UPSTREAM_BAD_RESPONSE",service="civil-status"}' in (
        metrics
    )
    nothing = await events.hub.http.get(
        f"/v1/subscriptions/{sid}/events/next", headers=events.headers(agency)
    )
    assert nothing.status_code == 204
    await events.mock_call("DELETE", "/_mock/faults")
    await events.tick(2)
    later = await events.hub.http.get(
        f"/v1/subscriptions/{sid}/events/next", headers=events.headers(agency)
    )
    assert later.status_code == 200, "the cursor did not move past the garbage: nothing lost"


async def test_a_grant_withdrawn_before_delivery_stops_it(events: EventStack):
    agency = events.agency()
    await events.subscribe(agency, delivery="push", callback_url="http://agency.test/hook")
    with Session(events.hub.hub.engine) as session:
        client = session.get(Client, agency.client_id)
        assert client is not None
        client.purposes = ["something-else"]
        session.add(client)
        session.commit()
    await events.register_death(await events.someone())
    await events.tick(3)
    assert events.receiver.received == []
    assert not [r for r in events.hub.audit_rows() if r["operation"].startswith("push:")]


async def test_metrics_per_subscription_backlog_age_and_failures(events: EventStack):
    agency = events.agency()
    pull = (await events.subscribe(agency, delivery="pull")).json()["data"]["id"]
    other = events.agency()
    push = (
        await events.subscribe(other, delivery="push", callback_url="http://agency.test/hook")
    ).json()["data"]["id"]
    events.receiver.statuses = [500]
    await events.register_death(await events.someone())
    await events.tick(3)
    metrics = (await events.hub.http.get("/metrics")).text
    assert f'hub_event_backlog{{subscription="{pull}"}} 1.0' in metrics
    assert f'hub_event_backlog{{subscription="{push}"}} 1.0' in metrics  # backing off
    assert f'hub_event_deliveries_total{{outcome="failed",subscription="{push}"}} 1.0' in metrics
    assert f'hub_event_oldest_undelivered_seconds{{subscription="{pull}"}}' in metrics
    gone = await events.hub.http.delete(f"/v1/subscriptions/{pull}", headers=events.headers(agency))
    assert gone.status_code == 204
    await events.tick(1)
    metrics = (await events.hub.http.get("/metrics")).text
    assert f'hub_event_backlog{{subscription="{pull}"}}' not in metrics


async def test_a_refused_pull_is_audited_and_discloses_nothing(events: EventStack):
    agency = events.agency()
    sid = (await events.subscribe(agency, delivery="pull")).json()["data"]["id"]
    await events.register_death(await events.someone())
    await events.tick(2)
    with Session(events.hub.hub.engine) as session:
        client = session.get(Client, agency.client_id)
        assert client is not None
        client.allow = ["population"]  # the event type's grant withdrawn
        session.add(client)
        session.commit()
    refused = await events.hub.http.get(
        f"/v1/subscriptions/{sid}/events/next", headers=events.headers(agency)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    assert "personal_id" not in refused.text
    rows = [
        r for r in events.hub.audit_rows() if r["operation"] in ("pull", "pull:death-registered")
    ]
    assert [(r["operation"], r["status"], r["fields"]) for r in rows] == [("pull", 403, None)]
