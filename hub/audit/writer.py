"""The audit writer: one record per authenticated call, durable before the answer leaves.

Writes are group-committed: every call hands its record to one writer task and waits for the
commit that contains it. Under load one commit carries many records (one fsync for all), so
durability costs little throughput; when idle a record is committed alone, at once. If the
database cannot take the batch, every waiting call fails with 503 AUDIT_UNAVAILABLE: a call
whose record could be lost never gets a 2xx. Each commit extends the chain
(`hub.audit.chain`) and, when one is due, signs a checkpoint (`hub.audit.checkpoints`); a
timer signs whatever is still unsigned every `checkpoint_interval_s`, so the newest records
stay unsigned for at most that long, written or idle.

Before each append (and at each tick of that timer) the writer checks that the chain still
ends where the last commit left it: the head row every hub process updates in its commit,
and the record this process wrote last. If not (records cut off the end), it stops for good:
an alarm in the log, `hub_audit_chain_broken` 1, /ready 503, and every call 503
AUDIT_UNAVAILABLE, rather than carrying on from the shortened chain with reused ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import operator
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from hub.audit.chain import (
    ChainBroken,
    aware,
    canonical_time,
    checked_end,
    lock_chain,
    record_hash,
    write_head,
)
from hub.audit.checkpoints import sign_end, witness, write_checkpoint
from hub.audit.store import ChainStore, DriverConnection
from hub.audit.subjects import index_subjects
from hub.core.models import AuditRecord, utcnow
from hub.errors import AuditUnavailable

log = logging.getLogger("hub.audit")


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
        on_broken: Any = None,
        fsync: bool = True,
    ) -> None:
        self._engine = engine
        self._store = ChainStore(engine, fsync=fsync)
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
        self._on_broken = on_broken  # metrics hook: called once, when the chain is found cut
        #: Where this process's last commit left the chain: (record id, hash).
        self._head: tuple[int, str] | None = None
        #: Why the writer stopped for good (the chain no longer ends where it was left).
        self.broken: str | None = None
        self._tick_due = False
        self._timer: asyncio.Task[None] | None = None
        self._sql, self._shape = _driver_insert(engine)
        #: Every column, None: a record's columns not given stay null.
        self._blank = dict.fromkeys(c.name for c in AuditRecord.__table__.columns)  # type: ignore[attr-defined]
        # The last checkpoint this process knows of: (record id, monotonic time). Another
        # process may have signed a later one; the database is asked before signing.
        self._checkpoint_seen: tuple[int, float] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-audit-writer")
        self._timer = asyncio.create_task(self._ticks(), name="hub-audit-checkpoints")

    async def record(self, row: dict[str, Any]) -> None:
        """Queue a record and wait until it is committed (raises AuditUnavailable)."""
        if self._task is None or self._task.done() or self._closing or self.broken:
            raise AuditUnavailable("the audit writer is not running")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wakeup.set()
        # Awaited as it is, no shield: a caller that goes away cancels its own future only,
        # and its record stays queued and is committed with the others (the writer skips a
        # future that is done). A shield cost one more future and two more callbacks a call.
        await future

    async def _run(self) -> None:
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._batch_max]
                del self._pending[: self._batch_max]
                await self._commit(batch)
            if self._tick_due and not self.broken:
                self._tick_due = False
                await self._tick()

    async def _ticks(self) -> None:
        # The writer's own task does the work, so a tick never runs beside a batch.
        while not self._closing:
            await asyncio.sleep(self._checkpoint_interval_s)
            self._tick_due = True
            self._wakeup.set()

    async def _tick(self) -> None:
        """Check the chain's end and sign it if records are unsigned (idle or not)."""
        try:
            await self._on_thread(self._sign_end)
        except ChainBroken as exc:
            self._break(str(exc))
        except Exception as exc:  # the database is away: the next batch will tell the calls
            log.warning("audit checkpoint on the timer failed: %s", type(exc).__name__)

    async def _on_thread(self, work: Any, *args: Any) -> Any:
        # The writer's one thread, where its connection lives (not the default executor,
        # which the hub's other database reads share and could queue a commit behind).
        return await asyncio.get_running_loop().run_in_executor(self._store.executor, work, *args)

    def _sign_end(self) -> None:
        conn = self._store.connection()
        try:
            entry, end = sign_end(conn, self._key, self._head)
            conn.commit()
        except BaseException:
            self._store.failed()
            raise
        if entry is not None:
            self._checkpoint_seen = (end[0], time.monotonic())
            witness(self._witness, entry)

    def _break(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
            log.critical(
                "AUDIT CHAIN BROKEN: %s. Records were removed from the end of the audit trail "
                "(or its head rewritten). This hub writes no more audit records and answers "
                "503 AUDIT_UNAVAILABLE; run `hub audit verify`, then restart it.",
                reason,
            )
            if self._on_broken is not None:
                self._on_broken()
        for _, future in self._pending:
            if not future.done():
                future.set_exception(AuditUnavailable())
        self._pending.clear()

    async def _commit(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        started = time.perf_counter()
        try:
            await self._on_thread(self._insert, [row for row, _ in batch])
        except ChainBroken as exc:
            self._break(str(exc))
            for _, future in batch:
                if not future.done():
                    future.set_exception(AuditUnavailable())
            return
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
        conn = self._store.connection()
        try:
            lock_chain(conn)
            (last_id, prev), known = checked_end(conn, self._head)
            first_id = last_id + 1
            params = []
            key, blank, shape = self._key, self._blank, self._shape
            for row in rows:
                last_id += 1
                at = canonical_time(row["at"])  # once, for the hash and the insert
                chained = {**blank, **row, "id": last_id, "at": at, "prev_hash": prev}
                prev = chained["hash"] = record_hash(key, prev, chained, at=at)
                params.append(shape(chained, row["at"]))
            conn.executemany(self._sql, params)
            index_subjects(conn, first_id, rows)  # the further subjects, same transaction
            write_head(conn, (last_id, prev), known=known)
            signed = None
            if self._checkpoint_due(conn, last_id):
                signed = write_checkpoint(conn, self._key, last_id, prev)
                self._checkpoint_seen = (last_id, time.monotonic())
            conn.commit()
        except BaseException:
            self._store.failed()
            raise
        self._head = (last_id, prev)
        if signed is not None:
            witness(self._witness, signed)

    def _checkpoint_due(self, conn: DriverConnection, last_id: int) -> bool:
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
        age = (utcnow() - aware(latest[1])).total_seconds()
        self._checkpoint_seen = (int(latest[0]), time.monotonic() - max(age, 0.0))
        return (
            last_id - int(latest[0]) >= self._checkpoint_every or age >= self._checkpoint_interval_s
        )

    async def checkpoint(self) -> int | None:
        """Sign where the chain is now (at shutdown); raises ChainBroken if it is cut off."""
        return await self._on_thread(self._sign_end_now)  # type: ignore[no-any-return]

    def _sign_end_now(self) -> int | None:
        conn = self._store.connection()
        try:
            entry, _ = sign_end(conn, self._key, self._head)
            conn.commit()
        except BaseException:
            self._store.failed()
            raise
        if entry is None:
            return None
        witness(self._witness, entry)
        return int(entry["record_id"])

    async def aclose(self) -> None:
        """Commit what is queued, sign the chain's end, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if self._task is not None:
            await self._task
            if not self.broken:  # never sign a chain cut short
                try:
                    await self.checkpoint()
                except ChainBroken as exc:
                    self._break(str(exc))
                except Exception as exc:  # the records are safe; only the signature is missing
                    log.warning("audit checkpoint at shutdown failed: %s", type(exc).__name__)
        await self._on_thread(self._store.close)
        self._store.executor.shutdown(wait=False)


def _driver_insert(engine: Engine) -> tuple[str, Any]:
    """INSERT text in the driver's parameter style, and a function from a record (every
    column a key, `at` as `canonical_time` text) and its time as given to its parameters."""
    columns = [c.name for c in AuditRecord.__table__.columns]  # type: ignore[attr-defined]
    style = engine.dialect.paramstyle
    marks = {
        "qmark": ["?"] * len(columns),
        "numeric": [f":{i + 1}" for i in range(len(columns))],
        "named": [f":{c}" for c in columns],
        "format": ["%s"] * len(columns),
        "pyformat": ["%s"] * len(columns),  # psycopg takes positional %s in either style
    }[style]
    sql = f"INSERT INTO audit_records ({', '.join(columns)}) VALUES ({', '.join(marks)})"
    sqlite = engine.dialect.name == "sqlite"
    at = columns.index("at")
    values = operator.itemgetter(*columns)  # one C call instead of a generator per row

    def shape(row: dict[str, Any], moment: dt.datetime) -> Any:
        params = list(values(row))
        # SQLite: as SQLAlchemy stores its datetimes, naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff"
        # (the canonical text's digits); elsewhere the time itself.
        params[at] = f"{params[at][:10]} {params[at][11:26]}" if sqlite else moment
        return dict(zip(columns, params, strict=True)) if style == "named" else params

    return sql, shape
