"""The audit chain's head (issue 18, finding 1): one row naming the record and hash the
chain ended at after the last commit, so that a writer finds the end cut off instead of
carrying on from the shortened chain. Databases from before start with no row; the first
commit after the upgrade writes it.

And one index fewer on the audit trail's hot path (issue 17): `prev_hash` is no longer
unique. The chain lock and the head row keep hub writers from forking the chain, and a fork
written by anyone else breaks a link that `hub audit verify` names; the unique index on a
random key cost about a fifth of the writer's CPU (bench/audit_writer.py). On SQLite the
table is rebuilt (batch mode), which takes a while on a large trail.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_records_prev_hash"), type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_records_prev_hash"), ["prev_hash"])
    op.drop_table("audit_head")
