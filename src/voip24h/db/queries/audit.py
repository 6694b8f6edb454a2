"""The ``audit_log`` table: one row per partner request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, delete, insert, select

from voip24h.db.schema import audit_log as a


def create_table(conn: Connection) -> None:
    """Create the table and its indexes where missing: for an audit database of its
    own (the main database gets them from the migrations), same definition."""
    a.create(conn, checkfirst=True)


# The columns an appended row holds, in the table's order, which is the order of the
# compiled INSERT's parameters (the id is the database's).
COLUMNS: tuple[str, ...] = tuple(c.name for c in a.columns if c.name != "id")


def append_statement() -> Insert:
    """The INSERT of one row given as a tuple in ``COLUMNS`` order (for db/drivers'
    appenders: a positional executemany, or a COPY of the same columns)."""
    return insert(a).values({name: bindparam(name) for name in COLUMNS})


def insert_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write a batch of audit rows (by column name) in one statement, on ``conn``."""
    if rows:
        conn.execute(insert(a), list(rows))


def prune(conn: Connection, before: datetime) -> int:
    """Delete rows older than ``before``; how many went."""
    return int(conn.execute(delete(a).where(a.c.at < before)).rowcount or 0)


def find(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    partner: str | None = None,
    status: int | None = None,
    request_type: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest rows first, filtered by time, partner, HTTP status and request type."""
    query = select(a).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(a.c.at >= since)
    if until is not None:
        query = query.where(a.c.at < until)
    if partner is not None:
        query = query.where(a.c.partner == partner)
    if status is not None:
        query = query.where(a.c.status == status)
    if request_type is not None:
        query = query.where(a.c.request_type == request_type)
    return [dict(row) for row in conn.execute(query).mappings()]
