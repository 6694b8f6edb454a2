"""SQLite through the standard library's sqlite3, on the event loop thread.

Queries are index lookups of a few ms at most, and a progress handler cancels any
that outlives the request time limit. The appender commits to the WAL without waiting
for the disk; the checkpoint that does wait runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Dialect

from voip24h.db.drivers.base import Appender, Reader, Statement, WriteBusy, budget, compile_for
from voip24h.db.engine import sqlite_path
from voip24h.errors import DatabaseTimeout, DatabaseUnavailable

MMAP_BYTES = 0x7FFF0000  # SQLite's default SQLITE_MAX_MMAP_SIZE (2 GiB - 64 KiB)
FILE_SLICE = 100  # rows an appender writes between two turns of the event loop


def has_json1() -> bool:
    """True when this SQLite library has the JSON functions (built in since 3.38)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            conn.execute("SELECT json_group_array(json_object('a', 1))").fetchone()
    except sqlite3.Error:
        return False
    return True


def open_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection to an existing file; DatabaseUnavailable if there is none."""
    try:
        conn = sqlite3.connect(
            f"file:{path}?mode=rw",
            uri=True,
            timeout=1.0,
            check_same_thread=False,
            cached_statements=256,
        )
        conn.execute("PRAGMA query_only=1")
    except sqlite3.Error as exc:
        raise DatabaseUnavailable() from exc
    return conn


def _database_error(exc: sqlite3.Error) -> Exception:
    """A statement's failure as the client sees it: interrupted (out of time) or down."""
    if isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc):
        return DatabaseTimeout()
    return DatabaseUnavailable()


class SQLiteReader(Reader):
    """sqlite3 on the event loop thread, one shared connection (streams get their own)."""

    def __init__(self, path: str, timeout: float):
        super().__init__(timeout)
        self._dialect = sqlite_dialect()
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self.renders_json = has_json1()
        self._deadline = 0.0

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = open_readonly(self._path)
            try:
                # Read the file through the OS page cache directly (no copy into
                # SQLite's own cache, which every write to the file, e.g. the audit
                # trail's, empties). SQLite caps this at its compile-time maximum.
                conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
                conn.execute("PRAGMA cache_size=-65536")
                conn.execute("PRAGMA temp_store=MEMORY")
            except sqlite3.Error as exc:
                conn.close()
                raise DatabaseUnavailable() from exc
            conn.set_progress_handler(self._past_deadline, 20_000)
            self._conn = conn
        return self._conn

    def _past_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """All rows, the statement interrupted when the request's time is up."""
        conn = self._connect()
        self._deadline = time.monotonic() + budget(self.timeout)
        try:
            return conn.execute(statement.sql, statement.args(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            error = _database_error(exc)
            if isinstance(error, DatabaseUnavailable):
                self._drop()
            raise error from exc

    async def stream(
        self, statement: Statement, params: Mapping[str, Any], chunk_rows: int
    ) -> AsyncIterator[list[Sequence[Any]]]:
        """Rows in chunks on a connection of its own: an open SELECT holds a read
        snapshot, which on the shared connection would hide new calls from every other
        request meanwhile."""
        deadline = [time.monotonic() + self.timeout]
        conn = open_readonly(self._path)
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline[0] else 0, 20_000)
        try:
            cursor = conn.execute(statement.sql, statement.args(params))
            while True:
                deadline[0] = time.monotonic() + self.timeout
                rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    return
                yield rows
        except sqlite3.DatabaseError as exc:
            raise _database_error(exc) from exc
        finally:
            conn.close()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the shared connection."""
        self._drop()


class SQLiteAppender(Appender):
    """Rows appended with one ``executemany`` of plain tuples per slice, in one
    transaction of the loop thread's own connection; WriteBusy at once (no waiting on
    the loop) while another process writes. The slices leave the loop free between
    them: a whole batch at once holds up every request of the worker for milliseconds."""

    def __init__(self, url: str, statement: Insert, timeout: float):
        super().__init__(url, statement, timeout)
        self._path = sqlite_path(url)
        self._sql = compile_for(statement, sqlite_dialect()).sql
        self._conn: sqlite3.Connection | None = None
        self._unchecked = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            path = self._path
            conn = sqlite3.connect(
                path, timeout=0, isolation_level=None, uri=path.startswith("file:")
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoint() does it, in a thread
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def append(self, rows: list[tuple[Any, ...]]) -> None:
        """The rows in one transaction, FILE_SLICE at a time."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WriteBusy() from exc
            self._drop()
            raise
        try:
            for start in range(0, len(rows), FILE_SLICE):
                if start:
                    await asyncio.sleep(0)
                conn.executemany(self._sql, rows[start : start + FILE_SLICE])
            conn.execute("COMMIT")
        except BaseException:
            self._drop()  # rolls the transaction back
            raise
        self._unchecked += len(rows)

    @property
    def needs_checkpoint(self) -> bool:
        """True when rows were appended since the last checkpoint."""
        return self._unchecked > 0

    async def checkpoint(self) -> None:
        """Copy the WAL into the file (the only write that waits for the disk), in a thread."""
        self._unchecked = 0
        await asyncio.to_thread(self._checkpoint_now)

    def _checkpoint_now(self) -> None:
        path = self._path
        with contextlib.closing(sqlite3.connect(path, uri=path.startswith("file:"))) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    async def close(self) -> None:
        """Close the connection (a transaction in progress is rolled back)."""
        self._drop()
