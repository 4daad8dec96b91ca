"""Alembic's environment for the hub: always run from hub.core.db with a live connection.

The hub drives Alembic through its API (`hub db upgrade`, start-up), never through an
alembic.ini: the connection comes in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from hub.core import models  # noqa: F401 - the tables, for autogenerate

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only hub.core.db runs migrations
    raise RuntimeError("the hub's migrations run through hub.core.db (hub db upgrade)")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
