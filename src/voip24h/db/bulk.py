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

from sqlalchemy import Connection, Dialect, Table, insert


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
    values = encode(conn.dialect, table, rows)
    insert_encoded(conn, table, values, conflict_do_nothing=conflict_do_nothing)


def encode(dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as the value tuples ``insert_encoded`` takes, in ``column_names`` order.

    On SQLite the values went through the columns' bind processors already (the
    import's parsing worker does this, off the writing process).
    """
    if not rows:
        return []
    names, defaults, processors = _plan(dialect, table)
    return _parameters(rows, names, defaults, processors if dialect.name == "sqlite" else [])


def column_names(table: Table) -> list[str]:
    """The columns an encoded row holds, in order (all but an autoincrement key)."""
    return [c.name for c in _insert_columns(table)]


def insert_encoded(
    conn: Connection,
    table: Table,
    values: Sequence[tuple[Any, ...]],
    *,
    conflict_do_nothing: str | None = None,
    core_statement: Any = None,
) -> None:
    """Insert rows given as ``encode`` made them (see ``insert_many`` for the options)."""
    if not values:
        return
    if conn.dialect.name != "sqlite":
        names = column_names(table)
        statement = core_statement if core_statement is not None else insert(table)
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in values])
        return
    conn.exec_driver_sql(_sqlite_insert(conn.dialect, table, conflict_do_nothing), values)


def _parameters(
    rows: Sequence[dict[str, Any]],
    names: list[str],
    defaults: dict[str, Any],
    processors: list[tuple[int, Callable[[Any], Any]]],
) -> list[tuple[Any, ...]]:
    """One tuple of values per row, in ``names`` order, through the bind processors.

    Done a column at a time (itemgetter, zip and map run in C): a row missing a
    column gets the column's default, a None value is never processed.
    """
    values_of = itemgetter(*names)
    try:
        params: list[Any] = list(map(values_of, rows))
    except KeyError:
        params = [tuple(row.get(name, defaults[name]) for name in names) for row in rows]
    if len(names) == 1:
        params = [(value,) for value in params]
    if not processors:
        return params
    columns = list(zip(*params, strict=True))
    for index, process in processors:
        if process is _iso_microseconds:  # leaves None (and any non-datetime) as it is
            columns[index] = tuple(map(process, columns[index]))
        else:
            columns[index] = tuple(None if v is None else process(v) for v in columns[index])
    return list(zip(*columns, strict=True))


_PLANS: dict[tuple[int, str], Any] = {}
_SQL: dict[tuple[int, str | None], str] = {}


def _insert_columns(table: Table) -> list[Any]:
    return [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]


def _plan(
    dialect: Dialect, table: Table
) -> tuple[list[str], dict[str, Any], list[tuple[int, Callable[[Any], Any]]]]:
    key = (id(table), dialect.name)
    if key not in _PLANS:
        columns = _insert_columns(table)
        processors = [
            (index, _faster(process))
            for index, c in enumerate(columns)
            if (process := c.type.dialect_impl(dialect).bind_processor(dialect))
        ]
        names = [c.name for c in columns]
        defaults = {c.name: getattr(c.default, "arg", None) for c in columns}
        _PLANS[key] = (names, defaults, processors)
    return _PLANS[key]


def _sqlite_insert(dialect: Dialect, table: Table, conflict: str | None) -> str:
    key = (id(table), conflict)
    if key not in _SQL:
        quote = dialect.identifier_preparer.quote
        names = column_names(table)
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        if conflict:
            sql += f" ON CONFLICT ({quote(conflict)}) DO NOTHING"
        _SQL[key] = sql
    return _SQL[key]


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
