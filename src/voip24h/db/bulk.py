"""Bulk inserts for the import path: many rows, one statement, no per-row SQLAlchemy work.

On SQLite the INSERT goes straight to the driver's ``executemany``: SQLAlchemy's
per-row parameter handling was a quarter of an import's time there. Values still
pass through each column's own bind processor, so they are stored exactly as the
Core statement stores them (a test compares both). Other databases use Core,
whose ``insertmanyvalues`` already batches rows into few statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, insert


def insert_many(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict_do_nothing: str | None = None,
    core_statement: Any = None,
) -> None:
    """Insert ``rows`` (dicts by column name) into ``table``.

    ``conflict_do_nothing`` names a unique column whose conflicts are skipped on
    SQLite; elsewhere ``core_statement`` (default: a plain INSERT) is executed.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(core_statement if core_statement is not None else insert(table), rows)
        return
    sql, names, defaults, processors = _plan(conn, table, conflict_do_nothing)
    values_of = itemgetter(*names)
    params = []
    for row in rows:
        try:
            values = list(values_of(row))
        except KeyError:
            values = [row.get(name, defaults[name]) for name in names]
        for index, process in processors:
            if values[index] is not None:
                values[index] = process(values[index])
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


_PLANS: dict[tuple[int, str | None], Any] = {}


def _plan(
    conn: Connection, table: Table, conflict: str | None
) -> tuple[str, list[str], dict[str, Any], list[tuple[int, Callable[[Any], Any]]]]:
    key = (id(table), conflict)
    if key not in _PLANS:
        columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        quote = conn.dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        if conflict:
            sql += f" ON CONFLICT ({quote(conflict)}) DO NOTHING"
        processors = [
            (index, _faster(process))
            for index, c in enumerate(columns)
            if (process := c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
        ]
        names = [c.name for c in columns]
        defaults = {c.name: getattr(c.default, "arg", None) for c in columns}
        _PLANS[key] = (sql, names, defaults, processors)
    return _PLANS[key]


_SAMPLES = (datetime(2018, 7, 29, 16, 37, 32), datetime(1999, 1, 2, 3, 4, 5, 60), datetime.max)


def _iso_microseconds(value: Any) -> Any:
    return value.isoformat(" ", "microseconds") if type(value) is datetime else value


def _faster(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLite's DATETIME processor formats in Python; isoformat does the same in C.

    Used only when it gives the very same text for sample times (the default
    storage format); anything else keeps SQLAlchemy's own processor.
    """
    try:
        same = all(process(v) == _iso_microseconds(v) for v in _SAMPLES)
    except Exception:
        same = False
    return _iso_microseconds if same else process
