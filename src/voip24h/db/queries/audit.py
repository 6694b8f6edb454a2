"""The ``audit_log`` table: one row per partner request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from voip24h.db.schema import audit_log as a


def create_table(conn: Connection) -> None:
    """Create the table and its indexes where missing: for an audit database of its
    own (the main database gets them from the migrations), same definition."""
    a.create(conn, checkfirst=True)


def insert_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write a batch of audit rows in one statement."""
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
