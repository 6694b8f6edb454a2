"""What a database error means for a writer: bad data, a full disk, or an outage.

* ``data``: the database refused the values themselves (a constraint, a value out
  of range, a string it cannot store). Retrying the same rows fails the same way
  for ever: reject them and go on.
* ``full``: no space left for the database (SQLite's "database or disk is full",
  PostgreSQL's 53100 disk_full, MariaDB's 1114 table full / 1021 disk full). Nothing
  will change until an operator frees space: stop, keeping what was committed.
* ``outage``: anything else (connection lost, server restarting, lock timeout):
  wait and retry, the same rows will load.

Told apart by SQLSTATE class where the driver gives one (22 data exception, 23
integrity constraint violation, 53 insufficient resources), by error number on
MariaDB (whose driver files a failed CHECK under OperationalError), and by the
sqlite3 exception class and error code on SQLite.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

Kind = Literal["data", "full", "outage"]

_SQLITE_FULL = 13
# MariaDB/MySQL error numbers: refused values, and no space left.
_MYSQL_DATA = {
    1048,  # column cannot be null
    1062,  # duplicate entry
    1264,  # out of range value
    1265,  # data truncated
    1292,  # incorrect datetime value
    1366,  # incorrect string value
    1406,  # data too long
    1452,  # foreign key
    1644,  # SIGNAL from a trigger
    3819,  # MySQL: check constraint violated
    4025,  # MariaDB: CONSTRAINT failed
}
_MYSQL_FULL = {1021, 1114, 3}
# Python-side refusals of a value by the driver (an int wider than 64 bits on SQLite,
# a NUL byte on psycopg's text dumper).
_VALUE_ERRORS = (OverflowError, ValueError, UnicodeError)


class DatabaseFull(RuntimeError):
    """The database has no space left; the message says what the database said."""


def kind(exc: BaseException) -> Kind | None:
    """``data``, ``full`` or ``outage`` for an error raised by a write; None when it is
    no database error at all (a bug: let it propagate)."""
    if isinstance(exc, _VALUE_ERRORS):
        return "data"
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        # Raised while SQLAlchemy prepared the parameters (a bind processor refused a value).
        return "data" if isinstance(exc.orig, _VALUE_ERRORS) else None
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, _VALUE_ERRORS):
        return "data"
    if isinstance(orig, sqlite3.Error):
        if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
            return "full"
        if isinstance(orig, sqlite3.IntegrityError | sqlite3.DataError):
            return "data"
        return "outage"
    number = _mysql_number(orig) if orig is not None else None
    if number in _MYSQL_FULL:
        return "full"
    if number in _MYSQL_DATA:
        return "data"
    state = str(getattr(orig, "sqlstate", "") or "")
    if state == "53100":
        return "full"
    if state[:2] in ("22", "23") or isinstance(exc, DataError | IntegrityError):
        return "data"
    return "outage"


def reason(exc: BaseException) -> str:
    """A one-line reason for a reject: what the database said, first line only."""
    orig = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    text = str(orig.args[1]) if _mysql_number(orig) is not None else str(orig)
    first = text.strip().splitlines()[0] if text.strip() else type(orig).__name__
    return f"refused by the database: {first[:300]}"


def retry_or_raise(exc: Exception) -> None:
    """Return when ``exc`` is an outage (the caller waits and retries); raise
    DatabaseFull for a full disk, and ``exc`` itself for anything else."""
    what = kind(exc)
    if what == "full":
        raise DatabaseFull(message(exc)) from exc
    if what != "outage":
        raise exc


def message(exc: BaseException) -> str:
    """The database's own message for an error (its first line)."""
    orig = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def _mysql_number(orig: BaseException) -> int | None:
    """The error number of a PyMySQL/asyncmy error (args ``(number, message)``)."""
    if type(orig).__module__.split(".")[0] not in ("pymysql", "asyncmy"):
        return None
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
