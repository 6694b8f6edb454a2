"""The ``cdr`` table: idempotent inserts, and rows by conversation (callid) for the mapping."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from voip24h.db import bulk
from voip24h.db.schema import cdr

_ROW_ORDER = (cdr.c.callid, cdr.c.calldate, cdr.c.sequence, cdr.c.id)


def _insert_ignoring_duplicates(dialect_name: str) -> Any:
    if dialect_name == "sqlite":
        return sqlite.insert(cdr).on_conflict_do_nothing(index_elements=["row_key"])
    if dialect_name == "postgresql":
        return postgresql.insert(cdr).on_conflict_do_nothing(index_elements=["row_key"])
    stmt = mysql.insert(cdr)
    return stmt.on_duplicate_key_update(row_key=stmt.inserted.row_key)


def insert_rows(
    conn: Connection,
    rows: Sequence[dict[str, Any]],
    known_callids: set[str] | None = None,
) -> int:
    """Insert normalized rows (callid set) whose row_key is new; return how many were."""
    return len(insert_encoded(conn, bulk.encode(conn.dialect, cdr, rows), known_callids))


KEY_AT = bulk.column_names(cdr).index("row_key")
CALLID_AT = bulk.column_names(cdr).index("callid")


def insert_encoded(
    conn: Connection,
    values: Sequence[tuple[Any, ...]],
    known_callids: set[str] | None = None,
    *,
    keys_indexed: bool = True,
) -> list[tuple[Any, ...]]:
    """Insert rows (``bulk.encode``d) whose row_key is new; return the rows inserted.

    Duplicates, within the batch or against the table, are skipped. A row key
    determines the row's conversation, so only rows of calls already in the table can
    be there already: their calls' stored keys are read through ix_cdr_callid.
    ``known_callids``: the batch's callids that have rows in the table, when the
    caller looked them up already. ``keys_indexed=False`` while an initial load has
    the unique index on row_key away (db/indexes.py); with it, the conflict clause
    also keeps a concurrent loader of the same rows harmless.
    """
    unique: dict[str, tuple[Any, ...]] = {}
    for row in values:
        unique.setdefault(row[KEY_AT], row)
    if not unique:
        return []
    calls = {row[CALLID_AT] for row in unique.values()}
    stored = known_callids if known_callids is not None else _present(conn, "callid", calls)
    calls &= stored
    existing = _present(conn, "callid", calls, select_column="row_key") if calls else set()
    new = [row for key, row in unique.items() if key not in existing]
    if new:
        bulk.insert_encoded(
            conn,
            cdr,
            new,
            conflict_do_nothing="row_key" if keys_indexed else None,
            core_statement=_insert_ignoring_duplicates(conn.dialect.name) if keys_indexed else None,
        )
    return new


def known_callids(conn: Connection, callids: Collection[str]) -> set[str]:
    """Those of the given callids that already have rows (an index-only lookup)."""
    return _present(conn, "callid", callids)


_CHUNK = 500


def _present(
    conn: Connection, column: str, values: Collection[str], *, select_column: str | None = None
) -> set[str]:
    """Values of ``select_column`` (default: ``column``) of the rows whose ``column``
    (an indexed column) is one of ``values``.

    On SQLite one fixed statement of _CHUNK placeholders serves every chunk (the
    last is padded by repeating a value): an expanding IN compiled per chunk cost
    more than the lookups themselves.
    """
    found: set[str] = set()
    ids = list(dict.fromkeys(values))
    wanted = select_column or column
    sqlite = conn.dialect.name == "sqlite"
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        if sqlite:
            chunk += chunk[-1:] * (_CHUNK - len(chunk))
            result = conn.exec_driver_sql(_lookup_sql(wanted, column), tuple(chunk))
            found.update(value for (value,) in result)
        else:
            found.update(conn.scalars(select(cdr.c[wanted]).where(cdr.c[column].in_(chunk))))
    return found


@cache
def _lookup_sql(wanted: str, column: str) -> str:
    marks = ", ".join("?" * _CHUNK)
    return f'SELECT "{wanted}" FROM cdr WHERE "{column}" IN ({marks})'


def rows_of_calls(conn: Connection, callids: Sequence[str]) -> list[dict[str, Any]]:
    """Every row of the given conversations, in mapping order."""
    rows: list[dict[str, Any]] = []
    ids = list(dict.fromkeys(callids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        result = conn.execute(select(cdr).where(cdr.c.callid.in_(chunk)).order_by(*_ROW_ORDER))
        rows.extend(dict(row) for row in result.mappings())
    return rows


def iter_all_rows(conn: Connection, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every row of the table grouped by callid (in mapping order), streamed."""
    # Options on the statement, not the connection: the same connection writes meanwhile.
    stmt = select(cdr).order_by(*_ROW_ORDER).execution_options(stream_results=True, yield_per=batch)
    result = conn.execute(stmt)
    for row in result.mappings():
        yield dict(row)


def count(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(cdr)) or 0)


def derived_rows_near(
    conn: Connection, channels: Collection[str], since: datetime, until: datetime
) -> list[tuple[str, str, datetime, int]]:
    """(callid, channel, calldate, duration) of the stored rows whose callid was derived
    from their channel (no linkedid, callid not their uniqueid), for ``channels``,
    starting between ``since`` and ``until`` (through ix_cdr_calldate)."""
    found: list[tuple[str, str, datetime, int]] = []
    names = list(dict.fromkeys(channels))
    columns = (cdr.c.callid, cdr.c.channel, cdr.c.calldate, cdr.c.duration)
    for start in range(0, len(names), _CHUNK):
        stmt = select(*columns).where(
            cdr.c.calldate >= since,
            cdr.c.calldate <= until,
            cdr.c.channel.in_(names[start : start + _CHUNK]),
            cdr.c.linkedid == "",
            cdr.c.callid != "",
            cdr.c.callid != cdr.c.uniqueid,
        )
        found.extend((str(a), str(b), c, int(d)) for a, b, c, d in conn.execute(stmt))
    return found


def rename_callids(conn: Connection, renames: dict[str, str]) -> None:
    """Move stored rows from one conversation to another (``{old: new}``)."""
    stmt = update(cdr).where(cdr.c.callid == bindparam("old")).values(callid=bindparam("new"))
    if renames:
        conn.execute(stmt, [{"old": old, "new": new} for old, new in renames.items()])


def rows_without_callid(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows stored before callids existed (callid ""), by id."""
    columns = (
        cdr.c.id,
        cdr.c.row_key,
        cdr.c.calldate,
        cdr.c.duration,
        cdr.c.channel,
        cdr.c.uniqueid,
        cdr.c.linkedid,
    )
    stmt = select(*columns).where(cdr.c.callid == "").order_by(cdr.c.id).limit(limit)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def count_without_callid(conn: Connection) -> int:
    """How many rows still have no callid (a database from before migration 0009)."""
    stmt = select(func.count()).select_from(cdr).where(cdr.c.callid == "")
    return int(conn.scalar(stmt) or 0)


def set_callids(conn: Connection, callids: dict[int, str]) -> None:
    """Give rows (by id) their callid."""
    stmt = update(cdr).where(cdr.c.id == bindparam("row_id")).values(callid=bindparam("cid"))
    if callids:
        conn.execute(stmt, [{"row_id": rid, "cid": cid} for rid, cid in callids.items()])
