"""The ``call_records`` table: rebuilt from ``cdr`` rows, read by the partner API.

Scope is part of every read statement, so a partner's query can only ever touch
rows of its own accountcodes and extensions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)

from voip24h.db import bulk
from voip24h.db.schema import call_records as t
from voip24h.db.schema import cdr
from voip24h.domain.mapping import CallRecord
from voip24h.domain.partners import Scope

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
    """Replace the records of the given calls by ``records``; return how many records the
    table gained (those written less those they replace)."""
    ids = list(dict.fromkeys(callids))
    replaced = 0
    for start in range(0, len(ids), 500):
        done = conn.execute(delete(t).where(t.c.callid.in_(ids[start : start + 500])))
        replaced += done.rowcount or 0
    return insert_records(conn, records) - replaced


def insert_records(conn: Connection, records: Iterable[CallRecord]) -> int:
    return insert_record_values(conn, [record_values(record) for record in records])


def insert_record_values(conn: Connection, values: Sequence[tuple[Any, ...]]) -> int:
    """Insert records given as ``record_values`` tuples (the table's column order)."""
    bulk.insert_encoded(conn, t, values)
    return len(values)


def records_of_calls(conn: Connection, callids: Sequence[str]) -> list[dict[str, Any]]:
    """The stored records of the given calls, as dicts by column name."""
    ids = list(dict.fromkeys(callids))
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        stmt = select(t).where(t.c.callid.in_(ids[start : start + 500]))
        found.extend(dict(row._mapping) for row in conn.execute(stmt))
    return found


def value_dicts(values: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """``record_values`` tuples as dicts by column name."""
    names = bulk.column_names(t)
    return [dict(zip(names, value, strict=True)) for value in values]


def delete_all(conn: Connection) -> None:
    conn.execute(delete(t))


# A record's fields are the table's columns, in order (``user`` is ``user_ext``): its
# values need no conversion on any backend, so they go to the driver as they are.
record_values = attrgetter(*CallRecord.__dataclass_fields__)


def _row(record: CallRecord) -> dict[str, object]:
    """A record as a dict by column name."""
    return dict(zip(bulk.column_names(t), record_values(record), strict=True))


def _param(name: str) -> BindParameter[Any]:
    """A bind parameter set at execution; not required at compile time, because
    statements are compiled once (with their expanding IN lists rendered) and reused."""
    return bindparam(name, required=False)


def scope_clause(scope: Scope, table: Table = t) -> ColumnElement[bool]:
    """The WHERE condition that keeps a query inside a partner's scope."""
    c = table.c
    conditions: list[ColumnElement[bool]] = []
    if scope.accountcodes:
        conditions.append(c.accountcode.in_(sorted(scope.accountcodes)))
    if scope.extensions:
        allowed: list[ColumnElement[bool]] = []
        if scope.extensions.names:
            allowed.append(c.user_ext.in_(sorted(scope.extensions.names)))
        for lo, hi in scope.extensions.ranges:
            allowed.append(c.user_num == lo if lo == hi else c.user_num.between(lo, hi))
        conditions.append(or_(*allowed) if allowed else false())
    return and_(true(), *conditions)


# Newest first; user_ext breaks the tie between the two legs of an internal call,
# so the order is total and a keyset cursor can resume exactly after any row.
ORDER = (t.c.call_ts.desc(), t.c.callid.desc(), t.c.user_ext.desc())


def order_for(shape: Shape) -> tuple[ColumnElement, ...]:
    """ORDER, less user_ext where the shape fixes it: the same order, and MariaDB
    otherwise sorts a user's records instead of reading them in index order
    (several times the cost; SQLite and PostgreSQL see through it either way)."""
    return ORDER[:2] if shape.by_user else ORDER


def select_records(
    scope: Scope, *, by_user: bool, by_window: bool, columns: Sequence[ColumnElement] = SEED_COLUMNS
) -> Select:
    """Records newest first, filtered by bind parameters ``user``, ``start``/``end``, ``limit``.

    The statement's shape depends only on its arguments, so it can be compiled
    once and executed with new parameter values.
    """
    return select_shaped(scope, Shape(by_user=by_user, by_window=by_window), columns)


def select_records_json(
    scope: Scope, *, by_user: bool, by_window: bool, names: Sequence[str]
) -> Select:
    """SQLite only: the rows of ``select_records`` as one row (count, JSON array bytes),
    each record an object of the seed columns under ``names``, in the same order.

    SQLite's json1 builds the array while it reads the index, so a seed answer costs
    one step and one bytes object instead of a Python tuple and six strings per
    record (the sqlite3 module releases and retakes the GIL on every row). The
    subquery's LIMIT keeps it from being flattened into the aggregate, so the array
    follows its ORDER BY.
    """
    inner = select_records(scope, by_user=by_user, by_window=by_window).subquery()
    pairs: list[ColumnElement[Any]] = []
    for name, column in zip(names, inner.c, strict=True):
        pairs += [literal_column(f"'{name}'"), column]
    array = cast(func.json_group_array(func.json_object(*pairs)), LargeBinary)
    return select(func.count(), array).select_from(inner)


# Opt-in fields: wire name -> column. hasRecording is rendered from recordingfile.
EXTENDED_COLUMNS: dict[str, ColumnElement] = {
    "duration": t.c.duration,
    "billsec": t.c.billsec,
    "direction": t.c.direction,
    "disposition": t.c.call_status,
    "accountcode": t.c.accountcode,
    "did": t.c.did,
    "linkedid": t.c.linkedid,
    "hasRecording": t.c.recordingfile,
}
# Appended after the requested fields so the next page's cursor can be built.
KEY_COLUMNS = (t.c.call_ts, t.c.callid, t.c.user_ext)


@dataclass(frozen=True)
class Shape:
    """Which conditions a records statement has; hashable, so it keys the compiled cache.

    Bind parameters: ``user``; ``start``/``end``; ``call`` (also as ``call_2``);
    ``status_0``..; ``call_type``; ``direction``; ``phone`` (exact) or ``phone_like``
    (prefix, ``/``-escaped);
    ``after_ts``/``after_id``/``after_user`` (keyset); ``limit``.
    """

    by_user: bool = False
    by_window: bool = False
    by_call: bool = False
    statuses: int = 0
    by_call_type: bool = False
    by_direction: bool = False
    phone: str | None = None  # "exact" or "prefix"
    after: bool = False


def conditions(scope: Scope, shape: Shape) -> list[ColumnElement[bool]]:
    """Scope plus every filter the shape asks for."""
    c = t.c
    where: list[ColumnElement[bool]] = [scope_clause(scope)]
    if shape.by_user:
        where.append(c.user_ext == _param("user"))
    if shape.by_window:
        where += [c.call_ts >= _param("start"), c.call_ts < _param("end")]
    if shape.by_call:
        where.append(_call_clause(scope))
    if shape.statuses:
        where.append(c.call_status.in_([_param(f"status_{n}") for n in range(shape.statuses)]))
    if shape.by_call_type:
        where.append(c.call_type == _param("call_type"))
    if shape.by_direction:
        where.append(c.direction == _param("direction"))
    if shape.phone == "exact":
        where.append(c.phone_number == _param("phone"))
    elif shape.phone == "prefix":
        where.append(c.phone_number.like(_param("phone_like"), escape="/"))
    if shape.after:
        ts: BindParameter[int] = _param("after_ts")
        cid: BindParameter[str] = _param("after_id")
        user: BindParameter[str] = _param("after_user")
        # The leading `call_ts <= ts` lets every backend use the (call_ts, callid) index.
        where.append(c.call_ts <= ts)
        where.append(or_(c.call_ts < ts, c.callid < cid, and_(c.callid == cid, c.user_ext < user)))
    return where


def _call_clause(scope: Scope) -> ColumnElement[bool]:
    """The records of one conversation, named by its callId or by the uniqueid of any of
    its rows (what a partner holding one leg's id has). The scope clause beside this
    one still decides which of those records the partner sees."""
    legs = select(cdr.c.callid).where(cdr.c.uniqueid == _param("call_2"))
    return or_(t.c.callid == _param("call"), t.c.callid.in_(legs.scalar_subquery()))


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching values that start with ``prefix`` (escape character ``/``)."""
    escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


def select_shaped(
    scope: Scope, shape: Shape, columns: Sequence[ColumnElement] = SEED_COLUMNS
) -> Select:
    """Records of ``shape`` newest first (total order), at most ``limit`` of them."""
    stmt = select(*columns).where(*conditions(scope, shape)).order_by(*order_for(shape))
    stmt = stmt.limit(_param("limit"))
    index = index_for(scope, shape)
    if index is not None:
        stmt = stmt.with_hint(t, f"FORCE INDEX ({index})", "mysql")
    return stmt


def index_for(scope: Scope, shape: Shape) -> str | None:
    """The index MariaDB/MySQL is told to use for ``shape``, if any.

    A one-user read is best served by the user's run of (accountcode,) user_ext,
    call_ts entries, and the optimizer finds that too, but only after estimating a
    range on each of the table's four candidate indexes for every statement, which
    costs about as much as the read itself. Other backends ignore the hint; the
    reader runs the statement without it while an initial load has the index
    dropped (indexes.defer).
    """
    if not shape.by_user or shape.by_call:
        return None
    return "ix_records_account_user_ts" if scope.accountcodes else "ix_records_user_ts"


def select_unlimited(scope: Scope, shape: Shape, columns: Sequence[ColumnElement]) -> Select:
    """Like select_shaped without a limit: exports stream every matching row."""
    return select(*columns).where(*conditions(scope, shape)).order_by(*order_for(shape))


def select_recordings(scope: Scope, shape: Shape) -> Select:
    """(callid, user, recordingfile, call_ts) of the partner's records of one call."""
    return (
        select(t.c.callid, t.c.user_ext, t.c.recordingfile, t.c.call_ts)
        .where(*conditions(scope, shape), t.c.callid == _param("call"))
        .order_by(*ORDER)
        .limit(_param("limit"))
    )


def select_stats(scope: Scope, shape: Shape, *, hourly: bool) -> Select:
    """Per (user, local day or hour, status): count, answered-or-not talk time sum and max.

    The period is a prefix of call_date, which is already local time, so buckets
    follow the PBX's zone (DST included) on every backend.
    """
    width: ColumnElement[int] = literal_column("13" if hourly else "10")
    period = func.substr(t.c.call_date, literal_column("1"), width)
    return (
        select(
            t.c.user_ext,
            period,
            t.c.call_status,
            func.count(),
            func.coalesce(func.sum(t.c.billsec), 0),
            func.coalesce(func.max(t.c.billsec), 0),
        )
        .where(*conditions(scope, shape))
        .group_by(t.c.user_ext, period, t.c.call_status)
        .order_by(t.c.user_ext, period, t.c.call_status)
        .limit(_param("limit"))
    )


def known_accountcodes(conn: Connection, among: Sequence[str]) -> set[str]:
    """Which of ``among`` some call record carries (the account index answers each)."""
    if not among:
        return set()
    found = select(t.c.accountcode).where(t.c.accountcode.in_(list(among))).distinct()
    return set(conn.scalars(found))


def some_accountcodes(conn: Connection, limit: int = 20) -> list[str]:
    """Up to ``limit`` accountcodes the records carry, sorted (to name in a warning)."""
    found = (
        select(t.c.accountcode)
        .where(t.c.accountcode != "")
        .distinct()
        .order_by(t.c.accountcode)
        .limit(limit)
    )
    return list(conn.scalars(found))
