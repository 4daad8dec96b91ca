"""The audit writer's own database connection: a bare DBAPI connection on one thread.

The writer commits one batch at a time, so it holds one connection of its own for its whole
life instead of taking one from the pool per batch. Measured with callgrind
(bench/audit_writer.py), SQLAlchemy's per-batch checkout, `Connection` and result objects
cost more than the batch's own SQL: about 840,000 instructions per commit, which a hub at
concurrency 1 pays on every call. The chain's SQL (`hub.audit.chain`, `.checkpoints`) is
written against the two methods of SQLAlchemy's `Connection` it uses (`exec_driver_sql`,
`commit`) and `dialect`, which `DriverConnection` provides over the DBAPI connection.

Durability. A commit returns once the database has the records in its log: on SQLite in WAL
mode with `synchronous=NORMAL`, in the WAL file in the OS's page cache; on PostgreSQL with
`synchronous_commit=off`, in the server's WAL buffers. Either survives `kill -9` of the
hub (the hub holds nothing the database does not). A power loss (or an OS or PostgreSQL
crash) can take the last commits not yet flushed (SQLite: those since the last WAL
checkpoint's sync; PostgreSQL: up to 3 × `wal_writer_delay`, 600 ms by default), never
leaving a broken chain. `fsync=True` (`HUB_AUDIT_FSYNC`, on by default in production)
makes each commit wait for the disk: SQLite `synchronous=FULL`, PostgreSQL
`synchronous_commit=on`.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine


class _Result:
    """The part of SQLAlchemy's result the chain's SQL reads: `first()` and `scalar()`."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def first(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]


class DriverConnection:
    """`exec_driver_sql`, `commit`, `rollback` and `dialect` over a bare DBAPI connection."""

    def __init__(self, engine: Engine, *, fsync: bool) -> None:
        self.dialect = engine.dialect
        # Out of the pool for good: its settings below must not reach other users.
        fairy = engine.raw_connection()
        raw: Any = fairy.driver_connection
        fairy.detach()
        self._fairy = fairy
        name = engine.dialect.name
        cursor = raw.cursor()
        if name == "sqlite":
            # Autocommit mode: the chain's SQL says BEGIN IMMEDIATE and COMMIT itself.
            raw.isolation_level = None
            cursor.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        elif name == "postgresql":
            cursor.execute(f"SET synchronous_commit = {'on' if fsync else 'off'}")
            raw.commit()
        self._raw = raw
        self._cursor = cursor
        self._sqlite = name == "sqlite"

    def exec_driver_sql(self, sql: str, params: Any = ()) -> _Result:
        self._cursor.execute(sql, params)
        return _Result(self._cursor)

    def executemany(self, sql: str, params: list[Any]) -> None:
        self._cursor.executemany(sql, params)

    def execute(self, statement: Any, params: Any = None) -> None:
        """A SQLAlchemy Core insert or update with plain values (str, int, float, None: no
        type processing), as hooks written for `Connection.execute` run it in the writer's
        transaction: compiled for the dialect, then the driver's executemany."""
        rows = params if isinstance(params, list) else [params or {}]
        if not rows:
            return
        compiled = statement.compile(dialect=self.dialect, column_keys=list(rows[0]))
        if compiled.positiontup is not None:  # qmark, format: values in the marks' order
            values: list[Any] = [tuple(row[n] for n in compiled.positiontup) for row in rows]
        else:
            values = [{n: row.get(n) for n in compiled.params} for row in rows]
        self._cursor.executemany(str(compiled), values)

    def commit(self) -> None:
        if self._sqlite:
            if self._raw.in_transaction:
                self._cursor.execute("COMMIT")
        else:
            self._raw.commit()

    def rollback(self) -> None:
        if self._sqlite:
            if self._raw.in_transaction:
                self._cursor.execute("ROLLBACK")
        else:
            self._raw.rollback()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a connection that broke: nothing to close
            self._fairy.close()


class ChainStore:
    """The writer's connection (opened at first use, again after an error) and the one
    thread every use of it runs on."""

    def __init__(self, engine: Engine, *, fsync: bool) -> None:
        self._engine = engine
        self._fsync = fsync
        self._conn: DriverConnection | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="hub-audit-writer")

    def connection(self) -> DriverConnection:
        if self._conn is None:
            self._conn = DriverConnection(self._engine, fsync=self._fsync)
        return self._conn

    def failed(self) -> None:
        """After an error: roll back, and drop the connection (it may be broken)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closed below either way
                self._conn.rollback()
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """On the writer's thread, after its last use."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
