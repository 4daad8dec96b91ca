"""The audit writer's own connection: its durability setting, and a new connection after an
error (a dropped connection must not stop the audit trail for good)."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.audit.chain import signing_key
from hub.audit.verify import verify
from hub.audit.writer import AuditWriter
from hub.core.config import Settings
from hub.core.db import make_engine, upgrade
from hub.errors import AuditUnavailable


def row(n: int) -> dict[str, object]:
    return {"at": dt.datetime.now(dt.UTC), "request_id": f"r{n}", "client_id": "cl_x",
            "service": "echo", "operation": "get", "status": 200, "code": "OK",
            "duration_ms": 1.0}  # fmt: skip


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def sync_level(writer: AuditWriter) -> str:
    conn = writer._store.connection()
    if conn.dialect.name == "sqlite":
        return {0: "off", 1: "normal", 2: "full"}[
            conn.exec_driver_sql("PRAGMA synchronous").scalar()
        ]
    return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())


@pytest.mark.parametrize("fsync", [True, False])
async def test_the_fsync_setting_reaches_the_writers_connection(engine, fsync):
    writer = AuditWriter(engine, key=signing_key(b"k"), fsync=fsync)
    writer.start()
    await writer.record(row(1))
    expected = {"sqlite": ("full", "normal"), "postgresql": ("on", "off")}[engine.dialect.name]
    assert await writer._on_thread(sync_level, writer) == expected[0 if fsync else 1]
    await writer.aclose()


def test_fsync_is_on_by_default_in_production_only():
    assert Settings(environment="production", secret_key="x" * 32).audit_fsync_on
    assert not Settings().audit_fsync_on
    assert not Settings(
        environment="production", secret_key="x" * 32, audit_fsync=False
    ).audit_fsync_on


async def test_a_dropped_connection_fails_its_batch_and_the_next_one_reconnects(engine):
    writer = AuditWriter(engine, key=signing_key(b"k"), fsync=False)
    writer.start()
    await writer.record(row(1))
    await writer._on_thread(lambda: writer._store.connection()._raw.close())
    with pytest.raises(AuditUnavailable):
        await writer.record(row(2))
    await writer.record(row(3))
    await writer.aclose()
    found = verify(engine, signing_key(b"k"))
    assert found.ok and found.records == 2 and found.last_id == 2


def test_the_hubs_request_ids_are_time_ordered_and_unguessable():
    """Time-ordered, they land at the end of the audit trail's request-id index."""
    import re
    import time

    from hub.api.middleware import new_request_id

    before = f"{time.time_ns() // 1_000_000:012x}"
    ids = [new_request_id() for _ in range(200)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids) and ids[0][:12] >= before
    assert len({i[12:] for i in ids}) == 200  # 80 random bits each


async def test_a_core_insert_runs_in_the_writers_transaction(engine):
    """Hooks written for SQLAlchemy's Connection.execute (an index of a record's further
    subjects) run on the writer's own connection, in the records' transaction."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, text

    extra = Table(
        "perf_probe", MetaData(), Column("subject_id", String(64)), Column("record_id", Integer)
    )
    extra.drop(engine, checkfirst=True)
    extra.create(engine)
    writer = AuditWriter(engine, key=signing_key(b"k"), fsync=False)

    def insert_and_commit() -> None:
        conn = writer._store.connection()
        conn.exec_driver_sql("BEGIN" if conn.dialect.name == "sqlite" else "SELECT 1")
        conn.execute(
            extra.insert(),
            [{"record_id": 1, "subject_id": "a"}, {"record_id": 2, "subject_id": "b"}],
        )
        conn.execute(extra.insert(), {"subject_id": "c", "record_id": 3})
        conn.commit()

    await writer._on_thread(insert_and_commit)
    writer._store.close()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT subject_id, record_id FROM perf_probe ORDER BY record_id"))
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 2), ("c", 3)]
    extra.drop(engine)


def reference_hash(key: bytes, prev_hash: str, row: dict) -> str:
    """The chain's hash as docs/design/audit-chain.md states it, written plainly: HMAC-SHA256
    over `prev_hash`, a newline and the JSON list of CHAINED's columns in order (UTC times to
    the microsecond with `Z`, numbers as floats, ids as ints, the rest as text), trailing
    nulls of the columns added since the chain began left out."""
    import hashlib
    import hmac

    import orjson

    from hub.audit.chain import CHAINED

    values: list = []
    for name in CHAINED:
        value = row.get(name)
        if value is not None:
            if name == "at":
                value = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            elif name in ("duration_ms", "upstream_ms"):
                value = float(value)
            elif name in ("id", "status"):
                value = int(value)
            else:
                value = str(value)
        values.append(value)
    while len(values) > CHAINED.index("fields") + 1 and values[-1] is None:
        values.pop()
    message = prev_hash.encode() + b"\n" + orjson.dumps(values)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("key", [b"k", b"long key " * 10, signing_key(b"secret")])
def test_the_hash_is_the_documented_one_for_every_column(key):
    """The writer's column-by-column hash, its pre-keyed HMAC and its time formatting give
    the documented value, whichever columns are set (those added later, null, included)."""
    from hub.audit.chain import CHAINED, record_hash

    full = {**row(1), "id": 7, "purpose": "p", "officer_id": "o", "dossier_id": "d",
            "subject_id": "s", "upstream_ms": 2, "fields": '["a"]', "subjects": '["b"]',
            "at": dt.datetime(2026, 12, 7, 16, 0, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))}  # fmt: skip
    assert set(full) == set(CHAINED)
    for absent in (None, "subjects", "fields", "upstream_ms", "officer_id"):
        case = {k: v for k, v in full.items() if k != absent}
        assert record_hash(key, "p" * 64, case) == reference_hash(key, "p" * 64, case)


async def test_a_caller_that_goes_away_still_has_its_record_committed(engine):
    """Cancelling a call that waits on its record cancels only that wait: the record is
    committed with its batch, and the others in the batch are answered."""
    import asyncio

    from sqlalchemy import text

    writer = AuditWriter(engine, key=signing_key(b"k"), fsync=False)
    writer.start()
    gone = asyncio.ensure_future(writer.record(row(1)))
    others = [asyncio.ensure_future(writer.record(row(n))) for n in (2, 3)]
    await asyncio.sleep(0)  # all three queued
    gone.cancel()
    await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await gone
    await writer.aclose()
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT request_id FROM audit_records ORDER BY id")).scalars()
        assert list(ids) == ["r1", "r2", "r3"]
