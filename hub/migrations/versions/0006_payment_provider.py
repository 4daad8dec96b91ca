"""Payments name the provider they were opened through (any PaymentProvider adapter), now
that several can be installed. Every payment before this revision went through the one
provider there was, the national public-service payment platform's adapter, `payment`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    op.execute("UPDATE payments SET service = 'payment'")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.alter_column(
            "service", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("service")
