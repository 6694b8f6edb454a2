"""A PBX's own CDR table, read-only: FreePBX ``asteriskcdrdb.cdr`` or a cdr_adaptive_odbc table.

Only SELECTs, on a connection the source engine makes read-only (see sync.py).
The table is reflected, so its extra columns (FreePBX ``cnum``, ``did``,
``recordingfile``, ...) come along, and the time column is ``calldate``
(FreePBX, cdr_mysql) or ``start`` (cdr_adaptive_odbc without an alias).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, func, select

TIME_COLUMNS = ("calldate", "start")


class SourceTableError(ValueError):
    """The source table is missing or has no time column."""


def reflect(conn: Connection, name: str) -> tuple[Table, Column[Any]]:
    """The table ``name`` (``schema.table`` allowed) and its time column."""
    schema, _, table_name = name.rpartition(".")
    from sqlalchemy import inspect

    if not inspect(conn).has_table(table_name, schema=schema or None):
        raise SourceTableError(f"no table {name!r} in the source database")
    table = Table(table_name, MetaData(), schema=schema or None, autoload_with=conn)
    for candidate in TIME_COLUMNS:
        if candidate in table.c:
            return table, table.c[candidate]
    raise SourceTableError(f"table {name!r} has neither a calldate nor a start column")


def counts_since(conn: Connection, time: Column[Any], since: datetime | None) -> dict[Any, int]:
    """Rows per distinct time value from ``since`` on (an index range scan on the time)."""
    stmt = select(time, func.count()).group_by(time)
    if since is not None:
        stmt = stmt.where(time >= since)
    return {when: int(n) for when, n in conn.execute(stmt)}


def count_since(conn: Connection, time: Column[Any], since: datetime | None) -> int:
    """How many rows from ``since`` on (the total a progress bar shows)."""
    stmt = select(func.count()).select_from(time.table)
    if since is not None:
        stmt = stmt.where(time >= since)
    return int(conn.execute(stmt).scalar_one())


def rows_at(
    conn: Connection, table: Table, time: Column[Any], moments: Sequence[Any]
) -> list[dict[str, Any]]:
    """Every row whose time is one of ``moments``."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(moments), 500):
        chunk = list(moments[start : start + 500])
        result = conn.execute(select(table).where(time.in_(chunk)))
        rows.extend(dict(row) for row in result.mappings())
    return rows


def rows_since(
    conn: Connection, table: Table, time: Column[Any], since: datetime | None, batch: int
) -> Iterator[dict[str, Any]]:
    """Every row from ``since`` on, oldest first, streamed from the server."""
    stmt = select(table).order_by(time)
    if since is not None:
        stmt = stmt.where(time >= since)
    result = conn.execute(stmt.execution_options(stream_results=True, yield_per=batch))
    for row in result.mappings():
        yield dict(row)
