"""`hub events list/replay/redrive` and `hub subscriptions list`, on the hub's database:
the operator sees states and counts, never a personal ID, and re-drives a dead letter."""

from __future__ import annotations

import json

import orjson
import pytest
from click.testing import CliRunner

from hub.cli import main
from tests.events.conftest import EventStack


async def test_an_operator_lists_and_re_drives_without_seeing_personal_data(
    events: EventStack, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HUB_DATABASE_URL", events.hub.settings.database_url)
    events.hub.hub.events.sender.max_attempts = 1  # type: ignore[union-attr]
    agency = events.agency()
    sid = (
        await events.subscribe(agency, delivery="push", callback_url="http://agency.test/hook")
    ).json()["data"]["id"]
    person = await events.someone()
    await events.register_death(person)
    events.receiver.statuses = [500]
    await events.tick(2)
    runner = CliRunner()

    listed = runner.invoke(main, ["subscriptions", "list"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["id"], row["deliveries"]) == (sid, {"dead": 1})
    shown = runner.invoke(main, ["events", "list", "--type", "civil-status:death-registered"])
    assert shown.exit_code == 0, shown.output
    [event] = json.loads(shown.output)
    assert event["subjects"] == 1 and event["deliveries"] == {"dead": 1}
    assert person not in shown.output and person not in listed.output

    redriven = runner.invoke(main, ["events", "redrive", sid])
    assert redriven.exit_code == 0 and "1 dead letter" in redriven.output
    await events.tick(1)
    assert [orjson.loads(b)["data"]["personal_id"] for _, b in events.receiver.received] == [
        person,
        person,
    ]
    replayed = runner.invoke(main, ["events", "replay", sid, "--from", "1"])
    assert replayed.exit_code == 0 and "1 event(s)" in replayed.output
    await events.tick(1)
    assert len(events.receiver.received) == 3
    unknown = runner.invoke(main, ["events", "redrive", "sub_nope"])
    assert unknown.exit_code != 0 and "no such subscription" in unknown.output


async def test_events_past_retention_go_unless_a_delivery_is_pending(events: EventStack):
    import datetime as dt

    from sqlalchemy import text

    from hub.capabilities.events.admin import prune

    agency = events.agency()
    await events.subscribe(agency, delivery="pull")
    await events.register_death(await events.someone(0))
    await events.tick(1)
    engine = events.hub.hub.engine
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET created_at = :t"), {"t": old})
    assert prune(engine, 30) == 0, "its delivery is still pending"
    with engine.begin() as conn:
        conn.execute(text("UPDATE event_deliveries SET status = 'delivered'"))
    assert prune(engine, 30) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM events")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM event_deliveries")).scalar() == 0
