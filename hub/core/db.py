"""Database engine set-up: SQLite by default, PostgreSQL (psycopg 3) in production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import create_engine

from hub.capabilities.events import models as event_models  # noqa: F401 - their tables too
from hub.core import models  # noqa: F401 - registers the tables on SQLModel.metadata


def make_engine(url: str) -> Engine:
    """An engine for `url`; plain `postgresql://` URLs get the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,  # error texts must not quote rows of personal data
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        parsed, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (auth look-ups) run while the audit writer commits; FULL sync keeps a
    # committed audit record across a power cut, which is what "durable" promises.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


#: The revision a database made by `create_all`, before migrations existed, is at.
BASELINE = "0001"


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "hub:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this hub carries."""
    script = ScriptDirectory.from_config(_alembic_config(None))  # type: ignore[arg-type]
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no migration ever ran)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrating process at a time on a SQLite file (several `hub serve --workers`
    start together): an exclusive lock on a file beside the database. SQLite takes its
    own write lock only at the first write, after each process has read that the schema
    is missing. PostgreSQL uses an advisory lock inside the transaction instead."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: one process at a time is the user's
        yield
        return
    with open(f"{database}-migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic). A database created by the hub before it
    had migrations (its tables, no alembic_version) is first stamped at the baseline.
    Hub processes starting together migrate once: PostgreSQL takes an advisory lock,
    SQLite a file lock."""
    with _migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7407460911)"))
        config = _alembic_config(connection)
        existing = set(inspect(connection).get_table_names())
        at = MigrationContext.configure(connection).get_current_revision()
        if at is None and "audit_records" in existing:
            command.stamp(config, BASELINE)
        command.upgrade(config, revision)


def create_schema(engine: Engine) -> None:
    """The schema at the newest migration (kept under this name for the app and tests)."""
    upgrade(engine)


class SchemaBehind(Exception):
    """The database is not at the revision this hub needs; `hub db upgrade` brings it."""


def prepare(engine: Engine, *, migrate: bool) -> None:
    """At start-up: migrate, or (in production) check the database is at this hub's head."""
    if migrate:
        upgrade(engine)
        return
    at, head = current_revision(engine), head_revision()
    if at != head:
        raise SchemaBehind(
            f"the database is at revision {at or 'none'}, this hub needs {head}: "
            "run `hub db upgrade` first"
        )
