"""The audit trail: one record per authenticated call, durable before the answer leaves, and
tamper-evident.

Writes are group-committed: every call hands its record to one writer task and waits for the
commit that contains it. Under load one commit carries many records (one fsync for all), so
durability costs little throughput; when idle a record is committed alone, at once. If the
database cannot take the batch, every waiting call fails with 503 AUDIT_UNAVAILABLE: a call
whose record could be lost never gets a 2xx.

The chain. Each record carries `prev_hash`, the hash of the record before it, and `hash`,
HMAC-SHA256 (keyed with a key derived from the server secret) over `prev_hash` and the
record's canonical form: its id and every column, in a fixed order (`record_hash`). Ids are
given by the writer, consecutive, under a lock every hub process takes for the length of its
commit (a PostgreSQL advisory lock; SQLite's write lock, taken at BEGIN IMMEDIATE), and
`prev_hash` is unique, so two processes can never fork the chain. Altering a record breaks
its hash; removing or inserting one breaks the next record's `prev_hash`; and without the
secret nobody can compute the hashes a forged record or a rewritten chain would need. What a
chain cannot show by itself is its end being cut off: the signed checkpoints do. Every
`checkpoint_every` records, every `checkpoint_interval_s` seconds of writing and at shutdown,
the writer signs the id and hash the chain has reached; records removed after a checkpoint,
or a database restored to an older copy and written again, no longer match it. Each
checkpoint is also witnessed outside the database (`witness`): a file on other storage and
the process log, since one kept only in the database could be deleted with its records.

Retention moves records older than the retention period to gzip-compressed JSON-lines files
with a signed manifest (`archive`), and `verify` checks the database and those files as one
chain. The chain is written by the hub itself rather than by a ledger library: the few that
exist (immudb, Trillian) are servers to run beside the hub, against the two-command start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import Connection, Text, cast, select
from sqlalchemy.engine import Engine

from hub.core.models import AuditArchive, AuditCheckpoint, AuditRecord, utcnow
from hub.errors import HubUnavailable

log = logging.getLogger("hub.audit")

#: The `prev_hash` of the first record ever written.
GENESIS = "0" * 64

#: The hashes an archive manifest carries for records from before the chain existed.
UNCHAINED = "unchained"

#: The columns a record's hash covers, in the order they are hashed. Adding a column to the
#: record means adding it here at the end (records written before then hash it as null).
CHAINED = (
    "id",
    "at",
    "request_id",
    "client_id",
    "service",
    "operation",
    "purpose",
    "officer_id",
    "dossier_id",
    "subject_id",
    "status",
    "code",
    "duration_ms",
    "upstream_ms",
    "fields",
)

_PG_CHAIN_LOCK = 7407460912  # pg_advisory_xact_lock key of the audit chain


def signing_key(secret: bytes) -> bytes:
    """The checkpoint and archive signing key, derived from the server secret (the secret
    itself also keys API-key hashes; one key per use)."""
    return hmac.digest(secret, b"lgsp-hub audit signing key v1", hashlib.sha256)


def sign(key: bytes, *parts: Any) -> str:
    return hmac.new(key, "|".join(str(p) for p in parts).encode(), hashlib.sha256).hexdigest()


def canonical_time(value: dt.datetime | str) -> str:
    """UTC, microseconds, `Z`: the same text whatever the database handed back (SQLite gives
    naive UTC datetimes, or text from a raw query; PostgreSQL aware ones in its time zone)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: How a time is stored as text: by the writer on SQLite (naive UTC), and in archive files
#: (canonical). Text in any other form (an offset, fewer digits) was not written by the hub:
#: the same instant written as "…-23:00" would sort a day away in time-filtered searches.
_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\.\d{6}Z?")


class NotCanonical(ValueError):
    """A stored value no writer of the hub produces: the record was altered."""


def _canonical(row: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for name in CHAINED:
        value = row.get(name)
        if value is None:
            values.append(None)
        elif name == "at":
            if isinstance(value, str) and not _STORED_TIME.fullmatch(value):
                raise NotCanonical(name)
            values.append(canonical_time(value))
        elif name in ("duration_ms", "upstream_ms"):
            number = float(value)  # 3 and 3.0 must hash alike
            if not math.isfinite(number):  # orjson writes NaN and infinities as null
                raise NotCanonical(name)
            values.append(number)
        elif name in ("id", "status"):
            if isinstance(value, float) and not value.is_integer():
                raise NotCanonical(name)
            values.append(int(value))
        else:
            values.append(str(value))
    return values


def record_hash(key: bytes, prev_hash: str, row: dict[str, Any]) -> str:
    """The hash of a record, given the hash of the one before it: HMAC-SHA256 keyed with the
    audit key, so that nobody without the server secret can compute a valid one."""
    body = orjson.dumps(_canonical(row))
    # hmac.digest: one call in C, the same value as hmac.new(...).hexdigest() at a third of
    # the cost (the writer computes one per record).
    return hmac.digest(key, prev_hash.encode() + b"\n" + body, hashlib.sha256).hex()


class AuditUnavailable(HubUnavailable):
    code, title = "AUDIT_UNAVAILABLE", "The audit trail cannot be written"


def _lock_chain(conn: Connection) -> None:
    """Take the chain's write lock for this transaction (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})")
    elif conn.dialect.name == "sqlite":
        # pysqlite begins a transaction lazily, at the first write: after we had read the
        # chain's end. BEGIN IMMEDIATE takes the write lock before that read.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _chain_end(conn: Connection) -> tuple[int, str]:
    """The id and hash the chain has reached (records archived away count too)."""
    last = conn.exec_driver_sql(
        "SELECT id, hash FROM audit_records ORDER BY id DESC LIMIT 1"
    ).first()
    if last is not None:
        # A record from before the chain existed (migration 0004) has no hash: start anew.
        return int(last[0]), GENESIS if last[1] is None else str(last[1])
    archived = conn.exec_driver_sql(
        "SELECT last_id, last_hash FROM audit_archives ORDER BY last_id DESC LIMIT 1"
    ).first()
    if archived is not None:
        return int(archived[0]), GENESIS if archived[1] == UNCHAINED else str(archived[1])
    return 0, GENESIS


class AuditWriter:
    """Group-commits audit records; `await record(row)` returns once the row is committed."""

    def __init__(
        self,
        engine: Engine,
        *,
        key: bytes,
        batch_max: int = 500,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 300.0,
        witness: Path | None = None,
        on_commit: Any = None,
    ) -> None:
        self._engine = engine
        self._key = key
        self._witness = witness
        self._batch_max = batch_max
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval_s = checkpoint_interval_s
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._on_commit = on_commit  # metrics hook: called with (seconds, batch size)
        self._sql, self._shape = _driver_insert(engine)
        # The last checkpoint this process knows of: (record id, monotonic time). Another
        # process may have signed a later one; the database is asked before signing.
        self._checkpoint_seen: tuple[int, float] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-audit-writer")

    async def record(self, row: dict[str, Any]) -> None:
        """Queue a record and wait until it is committed (raises AuditUnavailable)."""
        if self._task is None or self._task.done() or self._closing:
            raise AuditUnavailable("the audit writer is not running")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wakeup.set()
        # shield: a caller that goes away must not cancel the commit others wait on.
        await asyncio.shield(future)

    async def _run(self) -> None:
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._batch_max]
                del self._pending[: self._batch_max]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._insert, [row for row, _ in batch])
        except Exception as exc:
            # Only the type: a database error's text quotes the row (officer, dossier, the
            # subject's personal ID), and this goes to the process log.
            log.error("audit batch of %d records failed: %s", len(batch), type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(AuditUnavailable())
            return
        if self._on_commit is not None:
            self._on_commit(time.perf_counter() - started, len(batch))
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        # The driver's own executemany (C in sqlite3, pipelined in psycopg 3): SQLAlchemy
        # Core's insert processed each row's parameters in Python and measured ~25% of the
        # hub's CPU under load. The statement and parameter shape follow the dialect.
        with self._engine.connect() as conn:
            _lock_chain(conn)
            last_id, prev = _chain_end(conn)
            params = []
            for row in rows:
                last_id += 1
                chained = {**row, "id": last_id, "prev_hash": prev}
                prev = chained["hash"] = record_hash(self._key, prev, chained)
                params.append(self._shape(chained))
            conn.exec_driver_sql(self._sql, params)  # type: ignore[arg-type]
            signed = None
            if self._checkpoint_due(conn, last_id):
                signed = _write_checkpoint(conn, self._key, last_id, prev)
                self._checkpoint_seen = (last_id, time.monotonic())
            conn.commit()
        if signed is not None:
            witness(self._witness, signed)

    def _checkpoint_due(self, conn: Connection, last_id: int) -> bool:
        seen = self._checkpoint_seen
        if seen is not None:
            record_id, when = seen
            if (
                last_id - record_id < self._checkpoint_every
                and time.monotonic() - when < self._checkpoint_interval_s
            ):
                return False
        latest = conn.exec_driver_sql(
            "SELECT record_id, at FROM audit_checkpoints ORDER BY record_id DESC LIMIT 1"
        ).first()
        if latest is None:
            return True
        age = (utcnow() - _aware(latest[1])).total_seconds()
        self._checkpoint_seen = (int(latest[0]), time.monotonic() - max(age, 0.0))
        return (
            last_id - int(latest[0]) >= self._checkpoint_every or age >= self._checkpoint_interval_s
        )

    async def checkpoint(self) -> int | None:
        """Sign where the chain is now (at shutdown, or `hub audit checkpoint`)."""
        return await asyncio.to_thread(checkpoint, self._engine, self._key, self._witness)

    async def aclose(self) -> None:
        """Commit what is queued, sign the chain's end, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            try:
                await self.checkpoint()
            except Exception as exc:  # the records are safe; only the last signature is missing
                log.warning("audit checkpoint at shutdown failed: %s", type(exc).__name__)


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _write_checkpoint(conn: Connection, key: bytes, record_id: int, digest: str) -> dict[str, Any]:
    at = utcnow()
    entry = {
        "record_id": record_id,
        "hash": digest,
        "at": canonical_time(at),
        "signature": sign(key, "checkpoint", record_id, digest, canonical_time(at)),
    }
    table = AuditCheckpoint.__table__  # type: ignore[attr-defined]
    conn.execute(table.insert().values(**{**entry, "at": at}))
    return entry


def witness(path: Path | None, entry: dict[str, Any]) -> None:
    """Put a signed checkpoint where a database-only attacker cannot reach it: appended and
    synced to the witness file (kept beside the archives, on other storage than the
    database), and into the process log, which production ships to central logging. A
    checkpoint kept only in the database could be deleted with the records it vouches for.

    A failure here loses only this copy: the records and the database's checkpoint are
    committed already, so it is logged and the call goes on."""
    log.info("audit checkpoint at record %d", entry["record_id"], extra={"checkpoint": entry})
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(entry) + b"\n"
        # O_APPEND: several hub processes append whole lines without interleaving them.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("audit checkpoint not witnessed in %s: %s", path, type(exc).__name__)


def read_witness(path: Path) -> list[dict[str, Any]]:
    """The checkpoints a witness file holds (a torn last line, from a crash, is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for line in data.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def checkpoint(engine: Engine, key: bytes, witness_file: Path | None = None) -> int | None:
    """Sign the chain's current end unless it is signed already; the record id, or None
    when there is nothing (new) to sign."""
    with engine.connect() as conn:
        _lock_chain(conn)
        last_id, digest = _chain_end(conn)
        latest = conn.exec_driver_sql("SELECT MAX(record_id) FROM audit_checkpoints").scalar()
        if last_id == 0 or (latest is not None and int(latest) >= last_id):
            conn.rollback()
            return None
        entry = _write_checkpoint(conn, key, last_id, digest)
        conn.commit()
    witness(witness_file, entry)
    return last_id


def _driver_insert(engine: Engine) -> tuple[str, Any]:
    """INSERT text in the driver's parameter style, and a row -> parameters function."""
    columns = [c.name for c in AuditRecord.__table__.columns]  # type: ignore[attr-defined]
    style = engine.dialect.paramstyle
    marks = {
        "qmark": ["?"] * len(columns),
        "numeric": [f":{i + 1}" for i in range(len(columns))],
        "named": [f":{c}" for c in columns],
        "format": ["%s"] * len(columns),
        "pyformat": [f"%({c})s" for c in columns],
    }[style]
    sql = f"INSERT INTO audit_records ({', '.join(columns)}) VALUES ({', '.join(marks)})"
    sqlite = engine.dialect.name == "sqlite"

    def shape(row: dict[str, Any]) -> Any:
        if sqlite:  # stored as SQLAlchemy stores SQLite datetimes: naive UTC text
            row = {**row, "at": row["at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")}
        if style in ("named", "pyformat"):
            return {c: row.get(c) for c in columns}
        return tuple(row.get(c) for c in columns)

    return sql, shape


# -- verification ----------------------------------------------------------------------------


@dataclass
class Verification:
    """What `verify` found: counts, and the problems in chain order (the first is the first
    broken record)."""

    records: int = 0
    archived: int = 0
    checkpoints: int = 0
    #: Checkpoints read from the witness file (outside the database).
    witnessed: int = 0
    #: Records written before the hub chained its audit trail (migration 0004): kept, but
    #: nothing can show whether they were altered.
    unchained: int = 0
    last_id: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _chained_columns(conn: Connection) -> list[Any]:
    """The columns a record's hash covers, plus its links, as stored: on SQLite `at` is read
    as its stored text, not a parse of it (text in a form the writer never uses is an
    alteration the parse would hide)."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in (*CHAINED, "prev_hash", "hash")]
    if conn.dialect.name == "sqlite":
        columns[CHAINED.index("at")] = cast(table.c.at, Text).label("at")
    return columns


def _record_dict(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in (*CHAINED, "prev_hash", "hash")}


def _walk(
    rows: Iterator[dict[str, Any]],
    key: bytes,
    prev_id: int,
    prev_hash: str,
    where: str,
    found: Verification,
    wanted: set[int] | None = None,
) -> tuple[int, str, dict[int, str]]:
    """Check a run of records against the chain; returns its end and the hashes of the
    `wanted` ids (those checkpoints name)."""
    hashes: dict[int, str] = {}
    for row in rows:
        rid = int(row["id"])
        if found.problems:
            break
        try:
            digest = None if row["hash"] is None else record_hash(key, prev_hash, row)
        except (NotCanonical, ValueError, TypeError):
            digest = None
        if rid <= prev_id:
            found.problems.append(f"record {rid}{where}: out of order after record {prev_id}")
        elif row["prev_hash"] != prev_hash:
            found.problems.append(
                f"record {rid}{where}: does not follow record {prev_id} "
                "(a record between them was removed or inserted)"
            )
        elif digest is None or not hmac.compare_digest(digest, row["hash"]):
            found.problems.append(
                f"record {rid}{where}: altered or forged (its hash does not match its contents)"
            )
        prev_id, prev_hash = rid, str(row["hash"])
        if wanted is not None and rid in wanted:
            hashes[rid] = prev_hash
    return prev_id, prev_hash, hashes


def _snapshot(conn: Connection) -> None:
    """Read records, checkpoints and manifests as of one moment: a hub writing (or
    archiving) while verify runs must not look like tampering."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")  # a read transaction: one WAL snapshot throughout
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _checkpoint_signed(key: bytes, cp: dict[str, Any]) -> bool:
    try:
        expected = sign(
            key, "checkpoint", int(cp["record_id"]), cp["hash"], canonical_time(cp["at"])
        )
        return hmac.compare_digest(expected, str(cp["signature"]))
    except (KeyError, ValueError, TypeError):
        return False


def verify(
    engine: Engine,
    key: bytes,
    archive_dir: Path | None = None,
    *,
    witness_file: Path | None = None,
) -> Verification:
    """Walk the whole chain: the archives (their manifests' signatures; with `archive_dir`,
    the files themselves, which must then be there), the database's records, then every
    signed checkpoint: those in the database and those in the witness file outside it."""
    found = Verification()
    # The witness first: every line in it was appended after its records were committed,
    # so all of them are in the snapshot taken next.
    witnessed = read_witness(witness_file) if witness_file is not None else []
    prev_id, prev_hash = 0, GENESIS
    with engine.connect() as conn:
        _snapshot(conn)
        manifests = AuditArchive.__table__  # type: ignore[attr-defined]
        archives = [
            SimpleNamespace(**row._mapping)
            for row in conn.execute(select(manifests).order_by(manifests.c.first_id))
        ]
        saved = AuditCheckpoint.__table__  # type: ignore[attr-defined]
        checkpoints = [
            {**row._mapping, "at": canonical_time(row.at)}
            for row in conn.execute(select(saved).order_by(saved.c.record_id))
        ]
        found.checkpoints, found.witnessed = len(checkpoints), len(witnessed)
        for number, entry in enumerate(witnessed, 1):
            if not _checkpoint_signed(key, entry):
                found.problems.append(f"witness line {number}: bad signature")
                return found
        for archive_row in archives:
            prev_id, prev_hash = _check_archive(
                archive_row, key, prev_id, prev_hash, archive_dir, found
            )
            if found.problems:
                return found
        archived_to = prev_id
        last_unchained = 0
        table = AuditRecord.__table__  # type: ignore[attr-defined]
        result = conn.execution_options(yield_per=2000).execute(
            select(*_chained_columns(conn)).order_by(table.c.id)
        )
        chained_before = any(a.last_hash != UNCHAINED for a in archives)

        def rows() -> Iterator[dict[str, Any]]:
            nonlocal last_unchained
            chained = chained_before
            for record in result:
                found.records += 1
                if record.hash is None and not chained:
                    found.unchained += 1  # written before the chain existed
                    last_unchained = int(record.id)
                    continue
                chained = True
                yield _record_dict(record)

        wanted = {int(cp["record_id"]) for cp in (*checkpoints, *witnessed)}
        prev_id, prev_hash, hashes = _walk(rows(), key, prev_id, prev_hash, "", found, wanted)
        result.close()
        found.last_id = prev_id
        if found.problems:
            return found
        ends = {a.last_id: a.last_hash for a in archives}
        for cp, source in sorted(
            [(cp, "checkpoint") for cp in checkpoints]
            + [(cp, "witnessed checkpoint") for cp in witnessed],
            key=lambda pair: int(pair[0]["record_id"]),
        ):
            rid = int(cp["record_id"])
            if source == "checkpoint" and not _checkpoint_signed(key, cp):
                found.problems.append(f"checkpoint at record {rid}: bad signature")
            elif rid <= archived_to:
                if rid in ends and ends[rid] not in (cp["hash"], UNCHAINED):
                    found.problems.append(
                        f"{source} at record {rid}: the archive ending there does not match it"
                    )
            elif rid <= last_unchained:
                found.problems.append(
                    f"record {rid}: its hash was removed, yet a {source} signed it "
                    "(the chain was made to look older than it is)"
                )
            elif rid > prev_id:
                found.problems.append(
                    f"records after {prev_id} were removed: a {source} signed record {rid}"
                )
            elif hashes.get(rid) != cp["hash"]:
                found.problems.append(
                    f"{source} at record {rid}: the chain no longer matches it "
                    "(records up to it were rewritten)"
                )
            if found.problems:
                break
    return found


def _manifest_signature(key: bytes, archive: Any) -> str:
    return sign(
        key,
        "archive",
        archive.file,
        archive.first_id,
        archive.last_id,
        archive.count,
        archive.first_prev_hash,
        archive.last_hash,
        archive.sha256,
    )


def _check_archive(
    archive: Any,
    key: bytes,
    prev_id: int,
    prev_hash: str,
    archive_dir: Path | None,
    found: Verification,
) -> tuple[int, str]:
    where = f" (archive {archive.file})"
    unchained = archive.last_hash == UNCHAINED
    if not hmac.compare_digest(_manifest_signature(key, archive), archive.signature):
        found.problems.append(f"archive {archive.file}: bad manifest signature")
    elif archive.first_id <= prev_id or (
        (archive.first_prev_hash != prev_hash) if not unchained else (prev_hash != GENESIS)
    ):
        found.problems.append(
            f"archive {archive.file}: does not follow record {prev_id} "
            "(an archive or records before it are missing)"
        )
    if found.problems:
        return prev_id, prev_hash
    if unchained:
        found.unchained += archive.count
    else:
        found.archived += archive.count
    if archive_dir is None:
        return archive.last_id, prev_hash if unchained else archive.last_hash
    path = archive_dir / archive.file
    try:
        data = path.read_bytes()
    except OSError:
        found.problems.append(f"archive {archive.file}: file missing from {archive_dir}")
        return prev_id, prev_hash
    if hashlib.sha256(data).hexdigest() != archive.sha256:
        found.problems.append(f"archive {archive.file}: the file was altered")
        return prev_id, prev_hash
    rows = [orjson.loads(line) for line in gzip.decompress(data).splitlines() if line]
    if unchained:
        ids = [int(r["id"]) for r in rows]
        if len(rows) != archive.count or ids != sorted(ids) or ids[-1] != archive.last_id:
            found.problems.append(f"archive {archive.file}: does not hold its manifest's records")
        return archive.last_id, prev_hash
    end_id, end_hash, _ = _walk(iter(rows), key, prev_id, prev_hash, where, found)
    if not found.problems and (end_id, end_hash) != (archive.last_id, archive.last_hash):
        found.problems.append(f"archive {archive.file}: ends short of its manifest")
    return end_id, end_hash


# -- retention -------------------------------------------------------------------------------


def archive(
    engine: Engine,
    key: bytes,
    directory: Path,
    before: dt.datetime,
    *,
    max_records: int = 100_000,
) -> AuditArchive | None:
    """Move the records older than `before` (at most `max_records`, the oldest first) to a
    signed gzip file in `directory`, then out of the database. The file is written and
    synced before anything is deleted; a crash in between leaves a file that the next run
    writes again, identical. Returns the manifest, or None when nothing was due.

    The run is checked against the chain before it is signed (a broken run is refused and
    logged: signing it would hide the tampering behind a valid signature). Records from
    before the chain existed go to archives of their own, marked unchained."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        manifests = AuditArchive.__table__  # type: ignore[attr-defined]
        previous = conn.execute(
            select(manifests.c.last_id, manifests.c.last_hash)
            .order_by(manifests.c.last_id.desc())
            .limit(1)
        ).first()
        # The oldest records in chain order, up to the first one still within retention:
        # ids follow commit order, times follow each call's end, so a later id can carry an
        # earlier time; an archive is always a run of consecutive records, and either all
        # chained or all from before the chain.
        oldest = select(*_chained_columns(conn)).order_by(table.c.id).limit(max_records)
        for record in conn.execute(oldest):
            if _aware(record.at) >= before:
                break
            row = _record_dict(record)
            if rows and (row["hash"] is None) != (rows[0]["hash"] is None):
                break
            rows.append(row)
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    unchained = first["hash"] is None
    if not unchained:
        prev_id, prev_hash = 0, GENESIS
        if previous is not None:
            prev_id = int(previous[0])
            prev_hash = GENESIS if previous[1] == UNCHAINED else str(previous[1])
        checked = Verification()
        _walk(iter(rows), key, prev_id, prev_hash, "", checked)
        if not checked.ok:
            log.error("audit archive refused, the chain is broken: %s", checked.problems[0])
            return None
    lines = []
    for row in rows:
        row["at"] = canonical_time(row["at"])
        lines.append(orjson.dumps(row))
    data = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)  # mtime 0: same rows, same bytes
    name = f"audit-{first['id']:012d}-{last['id']:012d}.jsonl.gz"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = AuditArchive(
        created_at=utcnow(),
        file=name,
        first_id=first["id"],
        last_id=last["id"],
        count=len(rows),
        first_prev_hash=UNCHAINED if unchained else first["prev_hash"],
        last_hash=UNCHAINED if unchained else last["hash"],
        sha256=hashlib.sha256(data).hexdigest(),
        signature="",
    )
    manifest.signature = _manifest_signature(key, manifest)
    _write_durably(directory / name, data)
    sidecar = manifest.model_dump(mode="json", exclude={"id"})
    _write_durably(directory / (name + ".manifest.json"), orjson.dumps(sidecar))
    with engine.connect() as conn:
        _lock_chain(conn)
        still = conn.execute(
            select(table.c.id, table.c.hash)
            .where(table.c.id.between(manifest.first_id, manifest.last_id))
            .order_by(table.c.id)
        ).all()
        if len(still) != manifest.count or still[-1][1] != (None if unchained else last["hash"]):
            conn.rollback()  # another process archived them meanwhile
            return None
        archives = AuditArchive.__table__  # type: ignore[attr-defined]
        conn.execute(archives.insert().values(**manifest.model_dump(exclude={"id"})))
        conn.execute(table.delete().where(table.c.id <= manifest.last_id))
        checkpoints = AuditCheckpoint.__table__  # type: ignore[attr-defined]
        conn.execute(checkpoints.delete().where(checkpoints.c.record_id <= manifest.last_id))
        conn.commit()
    log.info("archived audit records %d-%d to %s", manifest.first_id, manifest.last_id, name)
    return manifest


def _write_durably(path: Path, data: bytes) -> None:
    """Write a file whole or not at all, and durably: under a name of this writer's own
    (two archivers never share a temporary file), synced, renamed into place, and the
    folder synced so that the rename itself survives a power cut."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class AuditRetention:
    """The background step that archives records past retention, at most once per interval
    in each process (processes racing for the same records write the same file; one of them
    moves the records)."""

    def __init__(
        self, engine: Engine, key: bytes, directory: str, days: float, interval_s: float
    ) -> None:
        self._engine, self._key, self._directory = engine, key, Path(directory)
        self._days, self._interval_s = days, interval_s
        self._next = 0.0

    async def run_once(self) -> int:
        if time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self._interval_s
        before = utcnow() - dt.timedelta(days=self._days)
        moved = 0
        while True:  # a backlog goes in several files of at most 100,000 records
            done = await asyncio.to_thread(
                archive, self._engine, self._key, self._directory, before
            )
            if done is None:
                return moved
            moved += done.count
