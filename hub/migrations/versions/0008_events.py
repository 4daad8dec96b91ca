"""Events to agencies: the events national systems publish, each change feed's cursor,
the clients' subscriptions and one delivery row per event and subscription.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString


def _when(name: str, *, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True, index=index)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", _S(length=40), nullable=False),
        sa.Column("type", _S(length=130), nullable=False),
        sa.Column("service", _S(length=64), nullable=False),
        sa.Column("subjects", sa.JSON(), nullable=False),
        sa.Column("province", _S(length=3), nullable=True),
        sa.Column("audience", _S(length=40), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        _when("occurred_at"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_events_id", "events", ["id"], unique=True)
    op.create_index("ix_events_type", "events", ["type"])
    op.create_table(
        "event_cursors",
        sa.Column("id", _S(length=64), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        _when("updated_at"),
        sa.Column("errors", sa.Integer(), nullable=False),
        _when("lease_until"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", _S(length=40), primary_key=True),
        sa.Column("client_id", _S(length=40), nullable=False),
        sa.Column("event_type", _S(length=130), nullable=False),
        sa.Column("delivery", _S(length=8), nullable=False),
        sa.Column("callback_url", _S(length=500), nullable=True),
        sa.Column("purpose", _S(length=64), nullable=True),
        sa.Column("provinces", sa.JSON(), nullable=False),
        sa.Column("ttl_s", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _when("updated_at"),
        _when("lease_until"),
        sa.UniqueConstraint("client_id", "event_type"),
    )
    op.create_index("ix_subscriptions_client_id", "subscriptions", ["client_id"])
    op.create_index("ix_subscriptions_event_type", "subscriptions", ["event_type"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", _S(length=40), nullable=False),
        sa.Column("event_id", _S(length=40), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("status", _S(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at"),
        _when("expires_at"),
        _when("delivered_at"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subscription_id", "event_id"),
    )
    op.create_index("ix_event_deliveries_subscription_id", "event_deliveries", ["subscription_id"])
    op.create_index("ix_event_deliveries_event_seq", "event_deliveries", ["event_seq"])
    op.create_index("ix_event_deliveries_status", "event_deliveries", ["status"])


def downgrade() -> None:
    op.drop_table("event_deliveries")
    op.drop_table("subscriptions")
    op.drop_table("event_cursors")
    op.drop_table("events")
