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
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from hub.audit.archive import archive
from hub.audit.chain import GENESIS, signing_key
from hub.audit.checkpoints import checkpoint
from hub.audit.verify import verify
from hub.cli import main
from hub.core.db import make_engine, upgrade
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
    monkeypatch.setenv("HUB_AUDIT_ARCHIVE_DIR", echo.settings.audit_archive_dir)

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
    from hub.audit.chain import record_hash

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
    engine, key, folder = echo.hub.engine, key_of(echo), Path(echo.settings.audit_archive_dir)
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
    from hub.audit.archive import AuditRetention

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
    from hub.audit.writer import AuditWriter

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


# -- what a database-only attacker cannot hide (the witness file) ------------------------------


def witness_of(running):
    return running.settings.audit_witness_path


async def test_cutting_off_the_end_with_its_checkpoints_is_caught_by_the_witness(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo)
    assert checkpoint(echo.hub.engine, key_of(echo), witness_of(echo)) == 6
    sql(echo.hub.engine, "DELETE FROM audit_records WHERE id > 3")
    sql(echo.hub.engine, "DELETE FROM audit_checkpoints")
    # the head row still names record 6 ...
    assert verify(echo.hub.engine, key_of(echo)).problems == [
        "records after 3 were removed: the last commit ended the chain at record 6"
    ]
    sql(
        echo.hub.engine,
        "UPDATE audit_head SET record_id = 3, hash = (SELECT hash FROM audit_records WHERE id = 3)",
    )
    # ... rewritten with it, the database alone cannot tell ...
    assert verify(echo.hub.engine, key_of(echo)).ok
    # ... the witness can
    found = verify(echo.hub.engine, key_of(echo), witness_file=witness_of(echo))
    assert found.problems == [
        "records after 3 were removed: a witnessed checkpoint signed record 6"
    ]


async def test_removing_every_hash_is_caught_by_the_witness(echo, upstream):  # noqa: F811
    """'Downgrading' the chain to records from before it existed, to edit them freely."""
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo, 4)
    checkpoint(echo.hub.engine, key_of(echo), witness_of(echo))
    sql(echo.hub.engine, "UPDATE audit_records SET hash = NULL, prev_hash = NULL")
    sql(echo.hub.engine, "DELETE FROM audit_checkpoints")
    sql(echo.hub.engine, "UPDATE audit_records SET subject_id = '001085099999' WHERE id = 2")
    found = verify(echo.hub.engine, key_of(echo), witness_file=witness_of(echo))
    # the hub signed record 1 as soon as it was written (and the end at each checkpoint)
    assert found.problems[0].startswith("record 1: its hash was removed")


async def test_the_hub_witnesses_its_checkpoints_and_a_forged_line_is_caught(echo, upstream, cli):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo, 2)  # the first record was signed at once (no checkpoint before)
    lines = witness_of(echo).read_bytes().splitlines()
    assert [orjson.loads(line)["record_id"] for line in lines] == [1]
    result = cli("verify")
    assert result.exit_code == 0 and "1 witnessed" in result.output, result.output
    forged = orjson.loads(lines[0]) | {"record_id": 2}
    with open(witness_of(echo), "ab") as out:
        out.write(orjson.dumps(forged) + b"\n")
    found = verify(echo.hub.engine, key_of(echo), witness_file=witness_of(echo))
    assert found.problems == ["witness line 2: bad signature"]


async def test_values_no_writer_produces_are_caught(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await call(echo, echo.client())
    await call(echo, echo.client(), {"personal_id": "123"})  # refused: no upstream time
    engine = echo.hub.engine
    if engine.dialect.name == "sqlite":  # the same instant, written a day away
        [row] = [r for r in echo.audit_rows() if r["id"] == 1]
        at = dt.datetime.fromisoformat(str(row["at"])).replace(tzinfo=dt.UTC)
        shifted = at.astimezone(dt.timezone(-dt.timedelta(hours=23))).isoformat(" ")
        sql(engine, "UPDATE audit_records SET at = :t WHERE id = 1", t=shifted)
        assert verify(engine, key_of(echo)).problems[0].startswith("record 1: altered")
        sql(engine, "UPDATE audit_records SET at = :t WHERE id = 1", t=str(row["at"]))
        assert verify(engine, key_of(echo)).ok
    sql(engine, "UPDATE audit_records SET upstream_ms = :x WHERE id = 2", x=float("inf"))
    assert verify(engine, key_of(echo)).problems[0].startswith("record 2: altered")


async def test_verify_while_the_hub_writes_sees_one_moment(echo, upstream, monkeypatch):  # noqa: F811
    """Records scanned, then another process commits records and a checkpoint before the
    checkpoints are read: no false alarm."""
    import threading

    import hub.audit.verify as verification
    from hub.audit.writer import AuditWriter

    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo, 3)
    engine, key = echo.hub.engine, key_of(echo)
    original = verification.walk

    def walk_then_another_process_writes(*args, **kwargs):
        result = original(*args, **kwargs)

        async def one() -> None:
            other = make_engine(echo.settings.database_url)
            writer = AuditWriter(other, key=key)
            writer.start()
            row = {"at": dt.datetime.now(dt.UTC), "request_id": "x", "client_id": "c",
                   "service": "echo", "operation": "get", "status": 200, "code": "OK",
                   "duration_ms": 1.0}  # fmt: skip
            await writer.record(row)
            await writer.aclose()  # signs a checkpoint at the new end
            other.dispose()

        thread = threading.Thread(target=lambda: asyncio.run(one()))
        thread.start()
        thread.join()
        return result

    monkeypatch.setattr(verification, "walk", walk_then_another_process_writes)
    found = verify(engine, key)
    monkeypatch.undo()
    assert found.ok, found.problems
    assert verify(engine, key).ok and verify(engine, key).last_id == 4


# -- retention, the hard cases -----------------------------------------------------------------


async def test_archive_refuses_to_sign_a_broken_run(echo, upstream, tmp_path):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo, 4)
    engine, key = echo.hub.engine, key_of(echo)
    sql(engine, "DELETE FROM audit_records WHERE id = 2")
    assert archive(engine, key, tmp_path / "a", dt.datetime.now(dt.UTC)) is None
    assert len(echo.audit_rows()) == 3  # nothing moved
    assert verify(engine, key).problems[0].startswith("record 3: does not follow record 1")


async def test_missing_archive_files_are_reported(echo, upstream, tmp_path, cli):  # noqa: F811
    import shutil

    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    folder = Path(echo.settings.audit_archive_dir)  # where `hub audit verify` looks
    await some_calls(echo, 3)
    done = archive(echo.hub.engine, key_of(echo), folder, dt.datetime.now(dt.UTC))
    assert done is not None
    shutil.rmtree(folder)
    result = cli("verify")
    assert result.exit_code == 1 and f"archive {done.file}: file missing" in result.output
    assert cli("verify", "--manifests-only").exit_code == 0


async def test_two_archivers_never_share_a_temporary_file(echo, upstream, tmp_path, monkeypatch):  # noqa: F811
    import os

    import hub.audit.archive as archiving

    upstream.get(f"/items/{PID}").respond(json={"value": 1})
    await some_calls(echo, 3)
    folder = tmp_path / "a"
    written = []
    real_replace = os.replace

    def replace(src, dst):
        written.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(archiving.os, "replace", replace)
    archive(echo.hub.engine, key_of(echo), folder, dt.datetime.now(dt.UTC))
    monkeypatch.undo()
    assert len(written) == 2 and all(str(os.getpid()) in name for name in written)
    assert sorted(p.name for p in folder.iterdir()) == [
        "audit-000000000001-000000000003.jsonl.gz",
        "audit-000000000001-000000000003.jsonl.gz.manifest.json",
    ]
    assert verify(echo.hub.engine, key_of(echo), folder).ok


def test_records_from_before_the_chain_are_archived_apart(tmp_path):
    from hub.audit.writer import AuditWriter

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0003")
    for n in range(2):
        sql(
            engine,
            "INSERT INTO audit_records (at, request_id, client_id, service, operation, status, "
            "code, duration_ms) VALUES (:at, :r, 'cl_x', 'echo', 'get', 200, 'OK', 1.0)",
            at=dt.datetime(2020, 1, 1), r=f"old-{n}",
        )  # fmt: skip
    upgrade(engine)
    key = signing_key(b"k" * 32)

    async def write() -> None:
        writer = AuditWriter(engine, key=key)
        writer.start()
        for n in range(2):
            row = {"at": dt.datetime(2020, 1, 2, tzinfo=dt.UTC), "request_id": f"new-{n}",
                   "client_id": "cl_x", "service": "echo", "operation": "get", "status": 200,
                   "code": "OK", "duration_ms": 1.0}  # fmt: skip
            await writer.record(row)
        await writer.aclose()

    asyncio.run(write())
    folder = tmp_path / "a"
    old = archive(engine, key, folder, dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    assert old is not None and (old.first_id, old.last_id) == (1, 2)
    assert old.last_hash == "unchained"
    new = archive(engine, key, folder, dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    assert new is not None and (new.first_id, new.last_id) == (3, 4)
    found = verify(engine, key, folder)
    assert found.ok, found.problems
    assert (found.unchained, found.archived, found.records) == (2, 2, 0)
    engine.dispose()
