"""The GovStack IM PubSub paths over the same subscriptions: subscribe, pull, confirm,
patch, cancel, under the hub's member identity; anything else is 404."""

from __future__ import annotations

from tests.events.conftest import EventStack

ROOM = "/r1/VN/GOV/LGSP/civil-status"


async def test_govstack_subscribe_pull_confirm_and_cancel(events: EventStack):
    agency = events.agency()
    headers = events.headers(agency)
    types = await events.hub.http.get(f"{ROOM}/api/v1/eventType", headers=headers)
    assert types.json() == ["birth-registered", "death-registered", "marriage-registered"]
    schema = await events.hub.http.get(f"{ROOM}/api/v1/eventType/death-registered", headers=headers)
    assert schema.json()["schema"]["title"] == "DeathRegistered"

    added = await events.hub.http.post(
        f"{ROOM}/api/v1/subs/death-registered",
        json={"eventType": "death-registered", "delivery": "PULL", "options": {"TTL": 600}},
        headers=headers,
    )
    assert added.status_code == 200, added.text
    item = added.json()
    assert item["delivery"] == "PULL" and item["options"]["TTL"] == 600
    assert item["eventType"] == "death-registered"
    again = await events.hub.http.post(
        f"{ROOM}/api/v1/subs/death-registered", json={"delivery": "PULL"}, headers=headers
    )
    assert again.status_code == 409
    listed = await events.hub.http.get(f"{ROOM}/api/v1/subs", headers=headers)
    assert [s["id"] for s in listed.json()] == [item["id"]]

    none = await events.hub.http.get(f"{ROOM}/pull/v1/death-registered", headers=headers)
    assert none.status_code == 404
    person = await events.someone()
    await events.register_death(person)
    await events.tick(2)
    pulled = await events.hub.http.get(f"{ROOM}/pull/v1/death-registered", headers=headers)
    assert pulled.status_code == 200, pulled.text
    event = pulled.json()
    assert event["event"]["personal_id"] == person and event["sequence"] >= 1
    assert event["publisherId"]["applicationCode"] == "civil-status"
    wrong = await events.hub.http.delete(
        f"{ROOM}/pull/v1/death-registered/evt_{'0' * 32}", headers=headers
    )
    assert wrong.status_code == 404
    confirmed = await events.hub.http.delete(
        f"{ROOM}/pull/v1/death-registered/{event['id']}", headers=headers
    )
    assert confirmed.status_code == 204
    assert (
        await events.hub.http.get(f"{ROOM}/pull/v1/death-registered", headers=headers)
    ).status_code == 404

    patched = await events.hub.http.patch(
        f"{ROOM}/api/v1/subs/death-registered", json={"options": {"TTL": 900}}, headers=headers
    )
    assert patched.status_code == 201 and patched.json()["options"]["TTL"] == 900
    gone = await events.hub.http.delete(f"{ROOM}/api/v1/subs/death-registered", headers=headers)
    assert gone.status_code == 204
    missing = await events.hub.http.get(f"{ROOM}/api/v1/subs/death-registered", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "UNKNOWN_SUBSCRIPTION")


async def test_govstack_paths_of_another_member_or_room_are_404(events: EventStack):
    headers = events.headers(events.agency())
    for path in (
        "/r1/XX/GOV/LGSP/civil-status/api/v1/subs",
        "/r1/VN/COM/LGSP/civil-status/api/v1/subs",
        "/r1/VN/GOV/OTHER/civil-status/api/v1/subs",
        "/r1/VN/GOV/LGSP/population/api/v1/subs",
        f"{ROOM}/pull/v1/no-such-event",
    ):
        answer = await events.hub.http.get(path, headers=headers)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
    anonymous = await events.hub.http.get(f"{ROOM}/api/v1/subs")
    assert anonymous.status_code == 401
