"""The database drivers, one module per backend (sqlite, postgresql, mysql), shared by
the request path's readers and the audit trail's appender.

Driver errors become DatabaseUnavailable / DatabaseTimeout in these modules and
nowhere else.
"""

from __future__ import annotations

from sqlalchemy import Insert

from voip24h.db.drivers.base import (
    REQUEST_DEADLINE,
    Appender,
    Reader,
    Statement,
    WriteBusy,
    budget,
    compile_for,
)
from voip24h.db.drivers.mysql import MySQLAppender, MySQLReader
from voip24h.db.drivers.postgresql import PostgresAppender, PostgresReader
from voip24h.db.drivers.sqlite import SQLiteAppender, SQLiteReader, has_json1
from voip24h.db.engine import backend_of, sqlite_path

__all__ = [
    "REQUEST_DEADLINE",
    "Appender",
    "MySQLAppender",
    "MySQLReader",
    "PostgresAppender",
    "PostgresReader",
    "Reader",
    "SQLiteAppender",
    "SQLiteReader",
    "Statement",
    "WriteBusy",
    "budget",
    "compile_for",
    "has_json1",
    "make_appender",
    "make_reader",
]


def make_reader(url: str, timeout: float, pool_size: int) -> Reader:
    """The reader for a database URL."""
    backend = backend_of(url)
    if backend == "sqlite":
        return SQLiteReader(sqlite_path(url), timeout)
    if backend == "postgresql":
        return PostgresReader(url, timeout, pool_size)
    return MySQLReader(url, timeout, pool_size)


def make_appender(url: str, statement: Insert, timeout: float) -> Appender:
    """The appender of ``statement``'s rows for a database URL."""
    backend = backend_of(url)
    if backend == "sqlite":
        return SQLiteAppender(url, statement, timeout)
    if backend == "postgresql":
        return PostgresAppender(url, statement, timeout)
    return MySQLAppender(url, statement, timeout)
