"""the per-user call_records indexes also hold what a seed answer reads (covering)

getUser/getUserDate then read a user's records from one run of index entries instead
of one table row each, scattered over the table: flat latency as the table grows.
Rebuilding the two indexes takes about a minute per 10 million records.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 12:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COVERED = ["user_num", "phone_number", "call_type", "call_status", "call_date"]
INDEXES = {
    "ix_records_user_ts": ["user_ext", "call_ts", "callid"],
    "ix_records_account_user_ts": ["accountcode", "user_ext", "call_ts", "callid"],
}


def _rebuild(extra: list[str]) -> None:
    # An initial load that was cut short has them dropped (db/indexes.py): not there.
    present = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("call_records")}
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            if name in present:
                batch_op.drop_index(name)
            batch_op.create_index(name, columns + extra, unique=False)


def upgrade() -> None:
    _rebuild(COVERED)


def downgrade() -> None:
    _rebuild([])
