"""Issue 18, finding 1: records cut off the end of the audit chain. The writer keeps where it
left the chain (and every hub process leaves it in the head row); a hub that finds the end
cut off stops: an alarm, a metric, /ready 503, every call 503 AUDIT_UNAVAILABLE, and no id is
written twice. A timer signs the newest records within `audit_checkpoint_interval_s`, idle
or not, so `hub audit verify` names the cut even when the head row was rewritten with it."""

from __future__ import annotations

import datetime as dt
import logging

import httpx
from sqlalchemy import text

from hub.audit.checkpoints import read_witness
from hub.audit.verify import verify
from hub.core.db import make_engine
from tests.conftest import eventually, running_hub
from tests.test_audit_chain import key_of, some_calls, sql
from tests.test_pipeline import PID, EchoAdapter, assert_problem, call, echo, upstream  # noqa: F401


def ids(engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM audit_records ORDER BY id"))]


def signed(engine) -> list[int]:
    with engine.connect() as conn:
        query = text("SELECT record_id FROM audit_checkpoints ORDER BY record_id")
        return [r[0] for r in conn.execute(query)]


def hub_with(settings, upstream, **changes):  # noqa: F811
    settings.adapters = {"echo": {"base_url": "http://echo.upstream"}}
    for name, value in changes.items():
        setattr(settings, name, value)
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    return running_hub(settings, adapters=[EchoAdapter], transports=transports)


async def test_a_cut_off_end_stops_the_running_hub_and_verify_names_it(
    settings,
    upstream,  # noqa: F811
    caplog,
):
    async with hub_with(settings, upstream, audit_checkpoint_interval_s=0.1) as running:
        engine, key = running.hub.engine, running.client()
        await some_calls(running, 6)
        # the timer signs record 6 with no further call
        await eventually(lambda: 6 in signed(engine), "the timer signed record 6")
        caplog.set_level(logging.CRITICAL, logger="hub.audit")
        sql(engine, "DELETE FROM audit_records WHERE id > 3")
        # idle, the hub finds the cut at its next tick: out of the pool before any call
        await eventually(lambda: running.hub.audit.broken is not None, "the tick saw the cut")
        ready = await running.http.get("/ready")
        assert ready.status_code == 503 and ready.json()["audit"]["ok"] is False
        assert_problem(await call(running, key), 503, "AUDIT_UNAVAILABLE")
        assert ids(engine) == [1, 2, 3]  # nothing written over the cut: no id used twice
        assert any("AUDIT CHAIN BROKEN" in r.getMessage() for r in caplog.records)
        assert "record 3" in caplog.text and PID not in caplog.text
        metrics = (await running.http.get("/metrics")).text
        assert "hub_audit_chain_broken 1.0" in metrics
        assert_problem(await call(running, key), 503, "AUDIT_UNAVAILABLE")  # it stays stopped
        witness = running.settings.audit_witness_path
    # at shutdown it signs nothing over the cut
    assert max(signed(engine)) == 6
    found = verify(engine, key_of(running), witness_file=witness)
    assert found.problems[0].startswith("records after 3 were removed")


async def test_the_head_rewritten_with_the_cut_is_still_caught(settings, upstream):  # noqa: F811
    """The attacker also sets the head row to the new end: this process remembers its own
    last record, and the witnessed checkpoint names the cut."""
    async with hub_with(settings, upstream, audit_checkpoint_interval_s=0.1) as running:
        engine, key = running.hub.engine, running.client()
        await some_calls(running, 6)
        await eventually(lambda: 6 in signed(engine), "the timer signed record 6")
        sql(engine, "DELETE FROM audit_records WHERE id > 3")
        sql(engine, "DELETE FROM audit_checkpoints")
        sql(
            engine,
            "UPDATE audit_head SET record_id = 3, "
            "hash = (SELECT hash FROM audit_records WHERE id = 3)",
        )
        assert_problem(await call(running, key), 503, "AUDIT_UNAVAILABLE")
        assert ids(engine) == [1, 2, 3]
        witness = running.settings.audit_witness_path
    assert 6 in [int(e["record_id"]) for e in read_witness(witness)]
    found = verify(engine, key_of(running), witness_file=witness)
    # the first witnessed checkpoint past the cut (the timer may have signed 4 or 5 as well)
    [problem] = found.problems
    assert problem.startswith("records after 3 were removed: a witnessed checkpoint signed"), (
        problem
    )


async def test_a_cut_into_another_processes_records_stops_this_one(settings, upstream):  # noqa: F811
    """Two hub processes share the chain: records only the other one wrote are cut off; this
    one, whose own last record is still there, finds the cut through the head row."""
    async with (
        hub_with(settings, upstream) as first,
        running_hub(
            first.settings,
            adapters=[EchoAdapter],
            transports={"echo": httpx.MockTransport(upstream.async_handler)},
        ) as second,
    ):
        engine = first.hub.engine
        await some_calls(first, 3)  # records 1-3
        await some_calls(second, 3)  # records 4-6
        sql(engine, "DELETE FROM audit_records WHERE id > 4")
        assert_problem(await call(first, first.client()), 503, "AUDIT_UNAVAILABLE")
        assert_problem(await call(second, second.client()), 503, "AUDIT_UNAVAILABLE")
        assert ids(engine) == [1, 2, 3, 4]


async def test_a_cut_made_while_the_hub_was_down_stops_it_at_start(settings, upstream):  # noqa: F811
    async with hub_with(settings, upstream) as running:
        await some_calls(running, 4)
    engine = make_engine(settings.database_url)
    sql(engine, "DELETE FROM audit_records WHERE id > 2")
    async with hub_with(settings, upstream) as restarted:
        assert_problem(await call(restarted, restarted.client()), 503, "AUDIT_UNAVAILABLE")
        assert ids(engine) == [1, 2]
    engine.dispose()


async def test_an_idle_hub_signs_its_newest_records_within_the_window(settings, upstream):  # noqa: F811
    async with hub_with(
        settings, upstream, audit_checkpoint_interval_s=0.2, audit_checkpoint_every=1000
    ) as running:
        engine = running.hub.engine
        await some_calls(running, 3)
        # no call after record 3: the timer alone signs and witnesses it
        await eventually(lambda: max(signed(engine)) == 3, "the idle hub signed record 3")

        def witnessed() -> list[int]:  # the witness line follows the checkpoint's commit
            return [int(e["record_id"]) for e in read_witness(running.settings.audit_witness_path)]

        await eventually(lambda: max(witnessed(), default=0) == 3, "record 3 witnessed")
        count = len(signed(engine))
        await some_calls(running, 1)
        await eventually(lambda: max(signed(engine)) == 4, "record 4 signed")
        assert len(signed(engine)) == count + 1  # nothing new, nothing signed again
    assert max(signed(engine)) == 4  # shutdown: record 4 signed already
    assert verify(engine, key_of(running)).ok


async def test_archived_records_are_not_a_cut(settings, upstream, tmp_path):  # noqa: F811
    from hub.audit.archive import archive

    async with hub_with(settings, upstream) as running:
        engine, key = running.hub.engine, running.client()
        await some_calls(running, 4)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        archived = archive(engine, key_of(running), tmp_path, later)
        assert archived and ids(engine) == []
        assert (await call(running, key)).status_code == 200
        assert ids(engine) == [5]
        assert running.hub.audit.broken is None


async def test_a_correctly_signed_fork_is_caught_without_a_unique_prev_hash(settings, upstream):  # noqa: F811
    """prev_hash is not a unique index since migration 0010: a second record following
    record 3, signed with the real key (a writer that skipped the chain lock), is named by
    verify, and the running hub stops rather than chaining onto it."""
    from hub.audit.chain import CHAINED, record_hash

    async with hub_with(settings, upstream) as running:
        engine, key = running.hub.engine, running.client()
        await some_calls(running, 6)
        [third] = [r for r in running.audit_rows() if r["id"] == 3]
        fork = {name: third[name] for name in CHAINED} | {"id": 7, "request_id": "fork"}
        digest = record_hash(key_of(running), third["hash"], fork)
        sql(
            engine,
            "INSERT INTO audit_records (id, at, request_id, client_id, service, operation, "
            "status, code, duration_ms, upstream_ms, subject_id, purpose, fields, prev_hash, "
            "hash) SELECT 7, at, 'fork', client_id, service, operation, status, code, "
            "duration_ms, upstream_ms, subject_id, purpose, fields, prev_hash, :h "
            "FROM audit_records WHERE id = 3",
            h=digest,
        )
        sql(engine, "UPDATE audit_records SET prev_hash = :p WHERE id = 7", p=third["hash"])
        found = verify(engine, key_of(running))
        assert found.problems[0].startswith("record 7: does not follow record 6"), found.problems
        assert_problem(await call(running, key), 503, "AUDIT_UNAVAILABLE")
