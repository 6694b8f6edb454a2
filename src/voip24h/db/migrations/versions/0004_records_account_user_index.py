"""index call_records (accountcode, user_ext, call_ts, callid) for tenant-scoped getUser

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 07:40:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_records_account_user_ts",
            ["accountcode", "user_ext", "call_ts", "callid"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_account_user_ts")
