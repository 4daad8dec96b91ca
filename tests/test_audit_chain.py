"""The tamper-evident audit trail: every call chained, `hub audit verify` catching an edited,
a deleted, an inserted, a forged and a cut-off record, signed checkpoints, archives past
retention, several writers on one chain, and a burst of 200 concurrent calls with exactly one
record each."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import itertools
import json

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from hub.audit import GENESIS, archive, checkpoint, signing_key, verify
from hub.cli import main
from hub.db import make_engine, upgrade
from tests.conftest import running_hub
from tests.test_pipeline import PID, EchoAdapter, assert_problem, call, echo, upstream  # noqa: F401


def key_of(running) -> bytes:
    return signing_key(running.settings.secret_key.get_secret_value().encode())


def sql(engine, statement: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


async def some_calls(echo, n: int = 6) -> None:  # noqa: F811
    echo_key = echo.client()
    for i in range(n):
        body = {"personal_id": PID, "note": str(i)} if i % 3 else {"personal_id": "123"}
        await call(echo, echo_key, body)


@pytest.fixture
def cli(echo, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("HUB_DATABASE_URL", echo.settings.database_url)
    monkeypatch.setenv("HUB_SECRET_KEY", echo.settings.secret_key.get_secret_value())
    monkeypatch.setenv("HUB_AUDIT_ARCHIVE_DIR", str(tmp_path / "archive"))

    def run(*args: str):
        return CliRunner().invoke(main, ["audit", *args])

    return run


async def test_every_call_is_chained_and_the_chain_verifies(echo, upstream, cli):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo)
    rows = echo.audit_rows()
    assert [r["id"] for r in rows] == list(range(1, 7))
    assert rows[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    found = verify(echo.hub.engine, key_of(echo))
    assert found.ok and found.records == 6 and found.last_id == 6
    result = cli("verify")
    assert result.exit_code == 0 and "intact" in result.output, result.output


async def test_the_fields_returned_are_in_the_record(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await call(echo, echo.client())
    await call(echo, echo.client(fields={"echo": ["value"]}))
    await call(echo, echo.client(), {"personal_id": "123"})
    full, trimmed, refused = echo.audit_rows()
    assert json.loads(full["fields"]) == ["personal_id", "value"]
    assert json.loads(trimmed["fields"]) == ["value"]
    assert refused["fields"] is None


TAMPERING = {
    "edited": (
        ["UPDATE audit_records SET subject_id = '001085099999' WHERE id = 3"],
        "record 3: altered",
    ),
    "deleted": (["DELETE FROM audit_records WHERE id = 3"], "record 4: does not follow record 2"),
    "inserted": (
        [
            "UPDATE audit_records SET id = id + 1000 WHERE id >= 3",
            "UPDATE audit_records SET id = id - 999 WHERE id >= 1000",
            "INSERT INTO audit_records (id, at, request_id, client_id, service, operation, "
            "status, code, duration_ms, prev_hash, hash) VALUES (3, :at, 'forged', 'cl_x', "
            "'echo', 'get', 200, 'OK', 1.0, :p, :h)",
        ],
        "record 3: does not follow record 2",
    ),
    "forged at the end": (
        [
            "INSERT INTO audit_records (id, at, request_id, client_id, service, operation, "
            "status, code, duration_ms, prev_hash, hash) SELECT 7, :at, 'forged', 'cl_x', "
            "'echo', 'get', 200, 'OK', 1.0, hash, :h FROM audit_records WHERE id = 6",
        ],
        "record 7: altered or forged",
    ),
    "cut off at the end": (
        ["DELETE FROM audit_records WHERE id >= 5"],
        "records after 4 were removed",
    ),
    "checkpoint forged": (
        ["UPDATE audit_checkpoints SET record_id = 5"],
        "checkpoint at record 5: bad signature",
    ),
}


@pytest.mark.parametrize("how", list(TAMPERING))
async def test_verify_names_the_first_broken_record(echo, upstream, cli, how):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo)
    assert checkpoint(echo.hub.engine, key_of(echo)) == 6
    statements, expected = TAMPERING[how]
    for statement in statements:
        sql(echo.hub.engine, statement, at=dt.datetime.now(dt.UTC), p="f" * 64, h="e" * 64)
    found = verify(echo.hub.engine, key_of(echo))
    assert not found.ok and found.problems[0].startswith(expected), found.problems
    result = cli("verify")
    assert result.exit_code == 1
    assert f"BROKEN: {expected}" in result.output


async def test_a_rewritten_chain_does_not_match_its_signed_checkpoint(echo, upstream):  # noqa: F811
    """Someone with write access to the database (but not the server secret) who rewrites a
    record and every hash after it with a key of their own is still caught."""
    from hub.audit import record_hash

    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo)
    checkpoint(echo.hub.engine, key_of(echo))
    rows = echo.audit_rows()
    rows[1]["subject_id"] = "001085099999"
    prev = rows[0]["hash"]
    for row in rows[1:]:
        row["prev_hash"], row["hash"] = prev, record_hash(b"guessed key", prev, row)
        prev = row["hash"]
    sql(echo.hub.engine, "UPDATE audit_records SET prev_hash = NULL")
    for row in rows[1:]:
        sql(
            echo.hub.engine,
            "UPDATE audit_records SET subject_id = :s, prev_hash = :p, hash = :h WHERE id = :i",
            s=row["subject_id"],
            p=row["prev_hash"],
            h=row["hash"],
            i=row["id"],
        )
    sql(echo.hub.engine, "UPDATE audit_records SET prev_hash = :p WHERE id = 1", p=GENESIS)
    found = verify(echo.hub.engine, key_of(echo))
    assert found.problems[0].startswith("record 2: altered")


async def test_the_hub_signs_the_chain_as_it_writes_and_when_it_stops(settings, upstream):  # noqa: F811
    import httpx

    settings.adapters = {"echo": {"base_url": "http://echo.upstream"}}
    settings.audit_checkpoint_every = 4
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(settings, adapters=[EchoAdapter], transports=transports) as running:
        echo_key = running.client()
        for _ in range(10):
            await call(running, echo_key)
        engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        signed = [r[0] for r in conn.execute(text("SELECT record_id FROM audit_checkpoints"))]
    # the first record is signed at once (no checkpoint yet), then every 4, then at shutdown
    assert signed == [1, 5, 9, 10]
    assert verify(engine, signing_key(settings.secret_key.get_secret_value().encode())).ok
    engine.dispose()


async def test_200_concurrent_calls_have_exactly_one_record_each(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    echo_key = echo.client()
    ids = [f"burst-{i:03d}" for i in range(200)]
    answers = await asyncio.gather(*(call(echo, echo_key, **{"X-Request-ID": rid}) for rid in ids))
    assert all(a.status_code == 200 for a in answers)
    rows = echo.audit_rows()
    assert sorted(r["request_id"] for r in rows) == ids
    assert verify(echo.hub.engine, key_of(echo)).ok


async def test_two_hubs_writing_one_chain_keep_it_valid(echo, upstream, settings):  # noqa: F811
    """Two apps (as two processes would) on one database, writing at once: their commits
    take turns on the chain and it never forks."""
    import httpx

    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    transports = {"echo": httpx.MockTransport(upstream.async_handler)}
    async with running_hub(settings, adapters=[EchoAdapter], transports=transports) as other:
        echo_key = echo.client()
        answers = await asyncio.gather(
            *(call(hub, echo_key) for _ in range(60) for hub in (echo, other))
        )
    assert all(a.status_code == 200 for a in answers)
    rows = echo.audit_rows()
    assert len(rows) == 120 and [r["id"] for r in rows] == list(range(1, 121))
    assert verify(echo.hub.engine, key_of(echo)).ok


async def test_archives_past_retention_verify_with_the_database(echo, upstream, cli, tmp_path):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    engine, key, folder = echo.hub.engine, key_of(echo), tmp_path / "archive"
    await some_calls(echo)
    done = archive(engine, key, folder, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert done is not None and (done.first_id, done.last_id, done.count) == (1, 6, 6)
    assert echo.audit_rows() == []
    lines = gzip.decompress((folder / done.file).read_bytes()).splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [1, 2, 3, 4, 5, 6]
    await some_calls(echo, 3)  # the chain goes on from the archive's end
    assert echo.audit_rows()[0]["id"] == 7
    found = verify(engine, key, folder)
    assert found.ok and (found.archived, found.records) == (6, 3), found.problems
    assert "intact" in cli("verify").output

    data = bytearray(gzip.decompress((folder / done.file).read_bytes()))
    altered = data.replace(b'"code":"OK"', b'"code":"XX"', 1)
    (folder / done.file).write_bytes(gzip.compress(bytes(altered)))
    assert verify(engine, key, folder).problems == [f"archive {done.file}: the file was altered"]
    assert cli("verify").exit_code == 1
    # without the files, the signed manifests still chain to the database's records
    assert verify(engine, key).ok
    sql(engine, "DELETE FROM audit_archives")
    assert verify(engine, key).problems[0].startswith("record 7: does not follow record 0")


async def test_the_hub_archives_by_itself(echo, upstream, tmp_path):  # noqa: F811
    from hub.audit import AuditRetention

    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo, 4)
    retention = AuditRetention(
        echo.hub.engine, key_of(echo), str(tmp_path / "a"), days=1e-9, interval_s=3600
    )
    assert await retention.run_once() == 4
    await some_calls(echo, 2)
    assert await retention.run_once() == 0  # not again within the interval
    assert [p.name for p in (tmp_path / "a").iterdir()] != []
    assert verify(echo.hub.engine, key_of(echo), tmp_path / "a").ok


def test_records_from_before_the_chain_are_counted_and_the_chain_starts_after(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0003")
    sql(
        engine,
        "INSERT INTO audit_records (at, request_id, client_id, service, operation, status, "
        "code, duration_ms) VALUES (:at, 'old', 'cl_x', 'echo', 'get', 200, 'OK', 1.0)",
        at=dt.datetime(2026, 1, 1),
    )
    upgrade(engine)
    key = signing_key(b"k" * 32)
    from hub.audit import AuditWriter

    async def write() -> None:
        writer = AuditWriter(engine, key=key)
        writer.start()
        row = {
            "at": dt.datetime.now(dt.UTC),
            "request_id": "new",
            "client_id": "cl_x",
            "service": "echo",
            "operation": "get",
            "status": 200,
            "code": "OK",
            "duration_ms": 1.0,
        }
        await writer.record(row)
        await writer.aclose()

    asyncio.run(write())
    found = verify(engine, key)
    assert found.ok and (found.unchained, found.records, found.last_id) == (1, 2, 2)
    engine.dispose()
