"""The ``call_records`` table: rebuilt from ``cdr`` rows, read by the partner API.

Scope is part of every read statement, so a partner's query can only ever touch
rows of its own accountcodes and extensions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    false,
    insert,
    or_,
    select,
    true,
)

from voip24h.db.schema import call_records as t
from voip24h.partners import Scope
from voip24h.records import CallRecord

# The six seed fields, in wire order.
SEED_COLUMNS = (
    t.c.callid,
    t.c.user_ext,
    t.c.phone_number,
    t.c.call_type,
    t.c.call_status,
    t.c.call_date,
)


def replace_records(conn: Connection, callids: Sequence[str], records: Iterable[CallRecord]) -> int:
    """Replace the records of the given calls by ``records``; return how many were written."""
    ids = list(dict.fromkeys(callids))
    for start in range(0, len(ids), 500):
        conn.execute(delete(t).where(t.c.callid.in_(ids[start : start + 500])))
    return insert_records(conn, records)


def insert_records(conn: Connection, records: Iterable[CallRecord]) -> int:
    rows = [_row(record) for record in records]
    if rows:
        conn.execute(insert(t), rows)
    return len(rows)


def delete_all(conn: Connection) -> None:
    conn.execute(delete(t))


def _row(record: CallRecord) -> dict[str, object]:
    row = asdict(record)
    row["user_ext"] = row.pop("user")
    return row


def scope_clause(scope: Scope) -> ColumnElement[bool]:
    """The WHERE condition that keeps a query inside a partner's scope."""
    conditions: list[ColumnElement[bool]] = []
    if scope.accountcodes:
        conditions.append(t.c.accountcode.in_(sorted(scope.accountcodes)))
    if scope.extensions:
        allowed: list[ColumnElement[bool]] = []
        if scope.extensions.names:
            allowed.append(t.c.user_ext.in_(sorted(scope.extensions.names)))
        for lo, hi in scope.extensions.ranges:
            allowed.append(t.c.user_num == lo if lo == hi else t.c.user_num.between(lo, hi))
        conditions.append(or_(*allowed) if allowed else false())
    return and_(true(), *conditions)


def select_records(
    scope: Scope, *, by_user: bool, by_window: bool, columns: Sequence[ColumnElement] = SEED_COLUMNS
) -> Select:
    """Records newest first, filtered by bind parameters ``user``, ``start``/``end``, ``limit``.

    The statement's shape depends only on its arguments, so it can be compiled
    once and executed with new parameter values.
    """
    stmt = select(*columns).where(scope_clause(scope))
    if by_user:
        stmt = stmt.where(t.c.user_ext == bindparam("user", required=False))
    if by_window:
        stmt = stmt.where(
            t.c.call_ts >= bindparam("start", required=False),
            t.c.call_ts < bindparam("end", required=False),
        )
    newest_first = stmt.order_by(t.c.call_ts.desc(), t.c.callid.desc())
    return newest_first.limit(bindparam("limit", required=False))
