"""index call_records.linkedid for getCallData

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:20:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.create_index("ix_records_linkedid", ["linkedid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_linkedid")
