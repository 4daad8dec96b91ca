"""Audit records name every data subject an answer disclosed: the further ones (beyond
`subject_id`) in the record's own hashed `subjects` column, indexed by person in
`audit_subjects` for the access report (hub.audit.subjects). Records written before this
revision have no further subjects: their `subjects` is null, which is also what their
hash covered.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subjects", sa.Text(), nullable=True))
    op.create_table(
        "audit_subjects",
        sa.Column("subject_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "record_id"),
    )
    op.create_index(
        op.f("ix_audit_subjects_record_id"), "audit_subjects", ["record_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_subjects_record_id"), table_name="audit_subjects")
    op.drop_table("audit_subjects")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_column("subjects")
