"""per-partner rate limits and the audit trail

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_per_second", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("rows_per_minute", sa.Integer(), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", Id, nullable=True),
        sa.Column("partner", sa.String(length=100), nullable=True),
        sa.Column("request_type", sa.String(length=40), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("rows_returned", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=40), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_partner_at", ["partner", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_partner_at")
        batch_op.drop_index("ix_audit_at")
    op.drop_table("audit_log")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("rows_per_minute")
        batch_op.drop_column("rate_per_second")
