"""cdr.row_key is unique through an index (ux_cdr_row_key) instead of a constraint

An index can be dropped and built again: an initial load builds it at its end (a
sort) instead of inserting ten million random keys one by one (db/indexes.py). On
SQLite the table is copied once to drop the old constraint (a couple of minutes per ten
million rows); elsewhere only the index is built.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _constraint(bind: sa.Connection) -> str | None:
    """The name of the unique constraint on cdr.row_key (each backend names it)."""
    for found in sa.inspect(bind).get_unique_constraints("cdr"):
        if found["column_names"] == ["row_key"]:
            return found["name"] or "uq_cdr_row_key"
    return None


def upgrade() -> None:
    bind = op.get_bind()
    name = _constraint(bind)
    if bind.dialect.name == "sqlite":
        # SQLite cannot drop a constraint: batch mode copies the table without it.
        with op.batch_alter_table("cdr", naming_convention=NAMING, recreate="always") as batch:
            if name:
                batch.drop_constraint(name, type_="unique")
            batch.create_index("ux_cdr_row_key", ["row_key"], unique=True)
        return
    op.create_index("ux_cdr_row_key", "cdr", ["row_key"], unique=True)
    if name:
        op.drop_constraint(name, "cdr", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("cdr", naming_convention=NAMING) as batch:
        batch.drop_index("ux_cdr_row_key")
        batch.create_unique_constraint("uq_cdr_row_key", ["row_key"])
