"""The schema comes from Alembic migrations: applied at start-up in development, by `hub db
upgrade` in production, where a hub refuses a database behind it. The migrations must
build exactly the tables the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from hub.core.db import BASELINE, current_revision, head_revision, make_engine, upgrade
from tests.conftest import database_url, reset_database

HUB = [sys.executable, "-m", "hub.cli"]


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def test_the_migrations_build_what_the_models_describe(tmp_path):
    """On the suite's database: SQLite by default, PostgreSQL in CI's second pass."""
    url = database_url(tmp_path)
    reset_database(url)  # PostgreSQL: migrated and emptied; SQLite: a fresh file
    engine = make_engine(url)
    try:
        upgrade(engine)  # as the app does at start-up
        assert current_revision(engine) == head_revision()
        assert differences(engine) == []
        upgrade(engine)  # again: nothing to do, nothing breaks
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_is_adopted_with_its_rows(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    try:
        # What create_all made before migrations existed: the 0001 schema, no version table.
        upgrade(engine, BASELINE)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO clients (id, name, allow, purposes, active, created_at) "
                    "VALUES ('cl_old', 'old-app', '[]', '[]', 1, '2026-11-01 00:00:00')"
                )
            )
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision() >= BASELINE
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM clients")).scalar() == "old-app"
        assert "alembic_version" in inspect(engine).get_table_names()
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_hub_db_commands_and_a_production_hub_behind_its_database(tmp_path):
    url = f"sqlite:///{tmp_path}/prod.db"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    behind = subprocess.run([*HUB, "db", "current"], env=env, capture_output=True, text=True)
    assert behind.returncode == 1 and f"database: none  hub: {head_revision()}" in behind.stdout

    production = {
        **env,
        "HUB_ENVIRONMENT": "production",
        "HUB_SECRET_KEY": "a-production-secret-of-more-than-32-characters",
        "HUB_ENABLED_ADAPTERS": "[]",  # the adapters' secrets would be refused first
    }
    refused = subprocess.run(
        [*HUB, "serve", "--port", "1"], env=production, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "run `hub db upgrade` first" in refused.stderr and "Traceback" not in refused.stderr

    upgraded = subprocess.run([*HUB, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database: empty -> {head_revision()}" in upgraded.stdout
    current = subprocess.run([*HUB, "db", "current"], env=env, capture_output=True, text=True)
    assert current.returncode == 0, current.stdout
    assert Path(tmp_path / "prod.db").exists()


def test_processes_starting_together_migrate_one_at_a_time(tmp_path):
    """Several `hub serve --workers` on a fresh SQLite file: each migrates or finds it done."""
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    runs = [
        subprocess.Popen(
            [*HUB, "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()[-2000:]
    engine = make_engine(env["HUB_DATABASE_URL"])
    try:
        assert current_revision(engine) == head_revision() and differences(engine) == []
    finally:
        engine.dispose()


def test_a_migration_waits_for_the_lock_another_process_holds(tmp_path):
    import fcntl
    import time

    db = tmp_path / "locked.db"
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{db}"}
    with open(f"{db}-migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is migrating
        waiting = subprocess.Popen([*HUB, "db", "upgrade"], env=env, stdout=subprocess.PIPE)
        time.sleep(3)  # ample for `hub db upgrade` to finish were it not waiting
        assert waiting.poll() is None, "it did not wait for the lock"
        assert not db.exists() or current_revision(make_engine(f"sqlite:///{db}")) is None
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and b"-> " in out
