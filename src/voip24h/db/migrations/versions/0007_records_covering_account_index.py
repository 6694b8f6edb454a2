"""the tenant-by-time call_records index also holds what a seed answer reads (covering)

getDate for a tenant partner then reads its window from one run of index entries,
already in the answer's order (user_ext breaks ties within a call), instead of one
table row per record scattered over the table. Rebuilding the index takes about a
minute per 10 million records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 15:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NAME = "ix_records_account_ts"
BEFORE = ["accountcode", "call_ts", "callid"]
AFTER = [*BEFORE, "user_ext", "user_num", "phone_number", "call_type", "call_status", "call_date"]


def _rebuild(columns: list[str]) -> None:
    # An initial load that was cut short has it dropped (db/indexes.py): not there.
    present = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("call_records")}
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        if NAME in present:
            batch_op.drop_index(NAME)
        batch_op.create_index(NAME, columns, unique=False)


def upgrade() -> None:
    _rebuild(AFTER)


def downgrade() -> None:
    _rebuild(BEFORE)
