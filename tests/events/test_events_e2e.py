"""The issue's "done when", end to end through the API against the civil-status mock: one
agency subscribes to deaths by PUSH, another by PULL; a death is registered in the mock;
both receive it (signature checked, acknowledged) and the deceased's access report lists
both deliveries."""

from __future__ import annotations

import datetime as dt

import orjson

from hub.capabilities.webhooks import verify, webhook_secret
from tests.events.conftest import DEATHS, EventStack


async def test_a_death_reaches_a_push_and_a_pull_subscriber_and_the_access_report(
    events: EventStack,
):
    insurance, police = events.agency(), events.agency()
    pushed = await events.subscribe(
        insurance, delivery="push", callback_url="http://agency.test/hook"
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["location"] == f"/v1/subscriptions/{pushed.json()['data']['id']}"
    pulled = await events.subscribe(police, delivery="PULL")
    assert pulled.status_code == 201, pulled.text
    pull_id = pulled.json()["data"]["id"]

    deceased = await events.someone()
    registered = await events.register_death(deceased)
    assert registered.status_code == 201
    await events.tick(2)  # read the feed, then push

    # PUSH: signed with the agency's webhook key, the stable event id to de-duplicate on
    assert len(events.receiver.received) == 1
    headers, raw = events.receiver.received[0]
    key = webhook_secret(
        events.hub.settings.secret_key.get_secret_value().encode(), insurance.client_id
    )
    assert verify(key, raw, headers["x-hub-signature"])
    body = orjson.loads(raw)
    assert headers["x-hub-event"] == DEATHS and headers["x-hub-delivery"] == body["id"]
    assert body["event_type"] == DEATHS
    assert body["data"]["personal_id"] == deceased
    assert body["data"]["record"]["kind"] == "death"
    assert body["data"]["record"]["number"] == registered.json()["maHoTich"]

    # PULL: the same event, until acknowledged
    first = await events.hub.http.get(
        f"/v1/subscriptions/{pull_id}/events/next", headers=events.headers(police)
    )
    assert first.status_code == 200, first.text
    event = first.json()["data"]
    assert event["id"] == body["id"] and event["data"]["personal_id"] == deceased
    # when it happened: the registry's instant (its clock is +07:00), whatever the database
    occurred = dt.datetime.fromisoformat(registered.json()["thoiDiem"])
    assert occurred.utcoffset() == dt.timedelta(hours=7)
    assert dt.datetime.fromisoformat(event["occurred_at"]) == occurred
    assert dt.datetime.fromisoformat(body["occurred_at"]) == occurred
    again = await events.hub.http.get(
        f"/v1/subscriptions/{pull_id}/events/next", headers=events.headers(police)
    )
    assert again.json()["data"]["id"] == event["id"]
    acked = await events.hub.http.post(
        f"/v1/subscriptions/{pull_id}/events/{event['id']}/ack", headers=events.headers(police)
    )
    assert acked.status_code == 204
    empty = await events.hub.http.get(
        f"/v1/subscriptions/{pull_id}/events/next", headers=events.headers(police)
    )
    assert empty.status_code == 204

    # The registry's own books show the death afterwards
    records = await events.hub.http.get(
        "/v1/civil-status/records", params={"personal_id": deceased}, headers=events.headers(police)
    )
    assert "death" in [r["kind"] for r in records.json()["data"]["records"]]

    # The deceased's access report: who was told, how, for what purpose
    portal = events.agency(allow=["audit:access-log"], purposes=["citizen-request"])
    report = await events.hub.http.get(
        f"/v1/citizens/{deceased}/access-log", headers=events.headers(portal, "citizen-request")
    )
    assert report.status_code == 200, report.text
    told = [
        (e["application"], e["operation"], e["purpose"], e["outcome"])
        for e in report.json()["data"]["entries"]
        if e["operation"].endswith(":death-registered")
    ]
    # one push attempt; two pulls (the event handed out twice before its acknowledgement)
    assert sorted(t[1:] for t in told) == [
        ("pull:death-registered", "social-insurance", "disclosed"),
        ("pull:death-registered", "social-insurance", "disclosed"),
        ("push:death-registered", "social-insurance", "disclosed"),
    ]
    pushers = {t[0] for t in told if t[1].startswith("push")}
    pullers = {t[0] for t in told if t[1].startswith("pull")}
    assert len(pushers) == len(pullers) == 1 and pushers != pullers, "two agencies were told"


async def test_nothing_new_means_nothing_sent_and_a_repeat_adds_nothing(events: EventStack):
    insurance = events.agency()
    created = await events.subscribe(insurance, delivery="pull")
    sid = created.json()["data"]["id"]
    await events.register_death(await events.someone(1))
    await events.tick(3)
    # the feed read again from the start (a cursor lost, a repeating upstream)
    from sqlmodel import Session

    from hub.capabilities.events.models import EventCursor, EventDelivery

    with Session(events.hub.hub.engine) as session:
        cursor = session.get(EventCursor, "civil-status")
        assert cursor is not None and cursor.cursor == "1"
        cursor.cursor = None
        session.add(cursor)
        session.commit()
    await events.tick(2)
    with Session(events.hub.hub.engine) as session:
        from sqlmodel import select

        rows = session.exec(select(EventDelivery).where(EventDelivery.subscription_id == sid)).all()
    assert len(rows) == 1
    metrics = (await events.hub.http.get("/metrics")).text
    assert 'hub_event_feed_repeats_total{service="civil-status"} 1.0' in metrics
    # stored once, counted once: the tick that stored it finished (no failed step)
    assert 'hub_events_published_total{type="civil-status:death-registered"} 1.0' in metrics
