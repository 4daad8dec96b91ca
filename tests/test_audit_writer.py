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
