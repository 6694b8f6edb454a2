"""PostgreSQL through asyncpg: a pool for the request path, one connection for appends."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from voip24h.db.drivers.base import LoopAppender, PooledReader, Statement, compile_for
from voip24h.db.engine import parse_url


def connect_options(url: str) -> dict[str, Any]:
    """asyncpg's connection arguments for a database URL."""
    u = parse_url(url)
    return {
        "host": u.host or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username,
        "password": u.password,
        "database": u.database,
    }


async def keep_session(_conn: Any) -> None:
    """What a connection needs on its way back to the pool, beyond asyncpg's own
    rollback of an open transaction: nothing. The request path only reads (no SET,
    LISTEN, advisory lock or held cursor), so asyncpg's default reset (RESET ALL,
    UNLISTEN, CLOSE ALL, unlocking: one more round trip and four statements for the
    server on every request) would undo nothing."""


def reset_option(asyncpg: Any) -> dict[str, Any]:
    """``reset=keep_session`` where asyncpg has that pool option (0.30 and later)."""
    if "reset" in inspect.signature(asyncpg.create_pool).parameters:
        return {"reset": keep_session}
    return {}


class PostgresReader(PooledReader):
    """The request path's reads on an asyncpg pool."""

    cancels_promptly = True

    def __init__(self, url: str, timeout: float, pool_size: int):
        super().__init__(url, timeout, pool_size, asyncpg_dialect())
        self._options = connect_options(url)

    async def _create_pool(self) -> Any:
        import asyncpg

        return await asyncpg.create_pool(
            **self._options,
            min_size=1,
            max_size=self._pool_size,
            command_timeout=self.timeout,
            timeout=self.timeout,
            max_inactive_connection_lifetime=60,
            # The server cancels any statement outliving the request time limit, even
            # if the client side is gone.
            server_settings={"statement_timeout": str(int(self.timeout * 1000))},
            **reset_option(asyncpg),
        )

    async def _run(self, pool: Any, statement: Statement, args: list[Any]) -> list[Any]:
        conn = await pool.acquire()
        try:
            if self._needs_ping():
                await conn.fetchval("SELECT 1")
            rows = list(await conn.fetch(statement.sql, *args))
        except BaseException:
            # Cancelled, timed out or broken: its state is unknown, so close it rather
            # than wait for a reset on a connection that may not answer.
            conn.terminate()
            await pool.release(conn)
            raise
        await pool.release(conn)
        return rows

    def _is_timeout(self, exc: BaseException) -> bool:
        import asyncpg

        return isinstance(exc, asyncpg.exceptions.QueryCanceledError)

    async def _stream(
        self, pool: Any, statement: Statement, args: list[Any], chunk_rows: int
    ) -> AsyncGenerator[list[Any], None]:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(statement.sql, *args)
            while rows := await cursor.fetch(chunk_rows):
                yield list(rows)

    def _is_query_error(self, exc: BaseException) -> bool:
        import asyncpg

        return isinstance(exc, asyncpg.PostgresError) and not isinstance(
            exc,
            asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.AdminShutdownError,
        )

    async def _close_pool(self, pool: Any) -> None:
        pool.terminate()


class PostgresAppender(LoopAppender):
    """Each batch is one binary COPY into the table."""

    def __init__(self, url: str, statement: Insert, timeout: float):
        super().__init__(url, statement, timeout)
        self._table = statement.table.name
        self._columns = compile_for(statement, asyncpg_dialect()).names

    async def _connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(
            **connect_options(self.url),
            timeout=self.timeout,
            command_timeout=self.timeout,
            # A commit need not wait for its WAL flush: a database crash could lose the
            # last fraction of a second of appended rows (audit rows), as a server crash
            # loses the rows still queued; no other data is at stake.
            server_settings={"synchronous_commit": "off"},
        )

    async def _write(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        await conn.copy_records_to_table(
            self._table, records=rows, columns=self._columns, timeout=self.timeout
        )

    def _is_closed(self, conn: Any) -> bool:
        return bool(conn.is_closed())

    def _abort(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.terminate()

    async def _close(self, conn: Any) -> None:
        await conn.close()
