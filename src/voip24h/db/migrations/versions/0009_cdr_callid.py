"""cdr.callid: the conversation a row belongs to (linkedid, else uniqueid, else derived)

Adds the column, empty, and its index. The values are filled by `voip24h db
upgrade` after this migration, in batches it can resume after a kill
(ingest/rebuild.py), and the call records are then rebuilt from them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cdr") as batch:
        batch.add_column(
            sa.Column("callid", sa.String(length=150), nullable=False, server_default="")
        )
    op.create_index("ix_cdr_callid", "cdr", ["callid"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cdr_callid", table_name="cdr")
    with op.batch_alter_table("cdr") as batch:
        batch.drop_column("callid")
