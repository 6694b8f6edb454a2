"""What every database driver offers: compiled statements, a reader for the request
path, and an appender for write-behind tables (the audit trail).

Statements are built with SQLAlchemy Core (db/queries) and compiled once per shape
for the backend's own driver: sqlite3, asyncpg or asyncmy. Driver errors become
DatabaseUnavailable / DatabaseTimeout in the drivers and nowhere else, and a pool that
lost its server heals on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, Select
from sqlalchemy.engine import Dialect

from voip24h.errors import DatabaseTimeout, DatabaseUnavailable

# When a request sets it, every statement of that request shares one time budget.
REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("voip24h_db_deadline", default=None)
RECONNECT_PAUSE = 0.25  # seconds of immediate 503s after a failed connect
PING_AFTER_IDLE = 5.0  # seconds without a good query before connections are pinged first


def retrieve(task: asyncio.Future[Any]) -> None:
    """Consume the outcome of abandoned work so it is never reported as lost."""
    if not task.cancelled():
        task.exception()


def budget(limit: float) -> float:
    """Seconds a statement may take now: ``limit``, or less if the request's deadline
    (REQUEST_DEADLINE) is nearer; never below zero (zero times out at once)."""
    deadline = REQUEST_DEADLINE.get()
    if deadline is None:
        return limit
    return max(0.0, min(limit, deadline - time.monotonic()))


@dataclass(frozen=True)
class Statement:
    """SQL text in the driver's parameter style, and how to order its parameters."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The parameters in the order the SQL text takes them."""
        return [params[name] if name in params else self.fixed[name] for name in self.names]


def compile_for(stmt: Select | Insert, dialect: Dialect) -> Statement:
    """``stmt`` compiled once for ``dialect``'s driver."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return Statement(compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))


class Reader(ABC):
    """Runs read statements for the request path."""

    # The database can render seed records as JSON (records.select_records_json).
    renders_json = False

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._cache: dict[Any, Statement] = {}

    @property
    @abstractmethod
    def dialect(self) -> Dialect: ...

    def prepare(self, key: Any, build: Any) -> Statement:
        """The compiled statement for ``key``, building it with ``build()`` the first time."""
        statement = self._cache.get(key)
        if statement is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            statement = self._cache[key] = compile_for(build(), self.dialect)
        return statement

    @abstractmethod
    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """All rows of a statement, as tuples; raises DatabaseUnavailable/DatabaseTimeout."""

    @abstractmethod
    def stream(
        self, statement: Statement, params: Mapping[str, Any], chunk_rows: int
    ) -> AsyncIterator[list[Sequence[Any]]]:
        """Rows of a statement in chunks of at most ``chunk_rows``, read as they are consumed.

        Memory stays bounded by one chunk whatever the result size; the time limit
        applies to each chunk's read, not to the whole stream.
        """

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        await self.fetch(Statement("SELECT 1", (), {}), {})

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections eagerly where that helps (failures are retried per request)."""

    @abstractmethod
    async def close(self) -> None: ...


class PooledReader(Reader):
    """Shared behaviour of the server backends: a lazily (re)created pool, one retry
    on a connection that died while idle, and a hard time limit per request."""

    cancels_promptly = False  # the driver stops at once when its task is cancelled

    def __init__(self, url: str, timeout: float, pool_size: int, dialect: Dialect):
        super().__init__(timeout)
        self._url = url
        self._dialect = dialect
        self._pool_size = pool_size
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._down_until = 0.0
        self._last_ok = 0.0

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    if time.monotonic() < self._down_until:
                        # Just failed to connect: answer 503 at once instead of queueing
                        # every request behind another connect attempt.
                        raise DatabaseUnavailable()
                    try:
                        self._pool = await asyncio.wait_for(self._create_pool(), self.timeout)
                    except Exception as exc:
                        self._down_until = time.monotonic() + RECONNECT_PAUSE
                        raise DatabaseUnavailable() from exc
                    self._last_ok = time.monotonic()
        return self._pool

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def _discard(self, pool: Any) -> None:
        """Drop a pool whose server went away; the next request builds a new one."""
        if self._pool is pool:
            self._pool = None
            with contextlib.suppress(Exception):
                pool.terminate()

    def _needs_ping(self) -> bool:
        """Pre-ping connections that sat idle (the server may have dropped them)."""
        return time.monotonic() - self._last_ok > PING_AFTER_IDLE

    async def start(self) -> None:
        """Open the pool now; the server starts anyway and answers 503 until the
        database is back."""
        with contextlib.suppress(DatabaseUnavailable):
            await self._get_pool()

    @abstractmethod
    async def _create_pool(self) -> Any: ...

    @abstractmethod
    async def _run(self, pool: Any, statement: Statement, args: list[Any]) -> list[Any]: ...

    @abstractmethod
    def _is_query_error(self, exc: BaseException) -> bool:
        """True for errors of the statement itself (not of the connection)."""

    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """All rows, within ``timeout`` seconds in total: waiting for the pool, connecting,
        retrying and querying included (the server cancels the statement too)."""
        args = statement.args(params)
        if self.cancels_promptly:
            # asyncpg gives way to cancellation at once (the connection is then
            # dropped), so the work runs in the request's own task under a deadline.
            try:
                async with asyncio.timeout(budget(self.timeout)):
                    return await self._fetch(statement, args)
            except TimeoutError:
                raise (
                    DatabaseTimeout() if self._pool is not None else DatabaseUnavailable()
                ) from None
        # Otherwise the work runs in a task of its own and the request stops waiting at
        # the deadline even if the driver is slow to honour cancellation (asyncmy on a
        # stalled link). What asyncio.wait does for one task, without its sets.
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._fetch(statement, args))
        waiter = loop.create_future()

        def wake(_: Any) -> None:
            if not waiter.done():
                waiter.set_result(None)

        task.add_done_callback(wake)
        timer = loop.call_later(budget(self.timeout), wake, None)
        try:
            await waiter
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.remove_done_callback(wake)
        task.cancel()
        task.add_done_callback(retrieve)
        raise DatabaseTimeout() if self._pool is not None else DatabaseUnavailable()

    async def _fetch(self, statement: Statement, args: list[Any]) -> list[Sequence[Any]]:
        for attempt in (1, 2):
            pool = await self._get_pool()
            try:
                rows = await self._run(pool, statement, args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is_timeout(exc):
                    raise DatabaseTimeout() from exc
                if self._is_query_error(exc):
                    raise
                self._discard(pool)
                if attempt == 2:
                    raise DatabaseUnavailable() from exc
                continue
            self._last_ok = time.monotonic()
            return rows
        raise DatabaseUnavailable()

    def _is_timeout(self, exc: BaseException) -> bool:
        """True when the server cancelled the statement for running too long."""
        return False

    async def stream(
        self, statement: Statement, params: Mapping[str, Any], chunk_rows: int
    ) -> AsyncIterator[list[Sequence[Any]]]:
        """Rows in chunks, each chunk's read within ``timeout`` (see Reader.stream)."""
        pool = await self._get_pool()
        chunks = self._stream(pool, statement, statement.args(params), chunk_rows)
        try:
            while True:
                try:
                    rows = await asyncio.wait_for(anext(chunks), self.timeout)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise DatabaseTimeout() from exc
                except (asyncio.CancelledError, GeneratorExit):
                    raise
                except Exception as exc:
                    if self._is_query_error(exc):
                        raise
                    raise DatabaseUnavailable() from exc
                yield rows
        finally:
            await chunks.aclose()

    @abstractmethod
    def _stream(
        self, pool: Any, statement: Statement, args: list[Any], chunk_rows: int
    ) -> AsyncGenerator[list[Any], None]: ...

    async def close(self) -> None:
        """Close the pool (requests in flight fail as the database being down)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._close_pool(pool)

    @abstractmethod
    async def _close_pool(self, pool: Any) -> None: ...


class WriteBusy(Exception):
    """Another process holds the write lock right now: try the batch again shortly."""


class Appender(ABC):
    """Appends batches of rows to one table over a connection of its own, on the event
    loop (no thread: the server's workers are CPU-bound and a thread running Python
    holds the GIL for milliseconds at a time)."""

    def __init__(self, url: str, statement: Insert, timeout: float):
        """``statement``: the INSERT whose parameters are the columns, in row order."""
        self.url = url
        self.timeout = timeout
        self._statement = statement

    @abstractmethod
    async def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Write ``rows`` in one transaction. WriteBusy: nothing written, try again soon;
        any other error: nothing written and the connection dropped (the next batch
        opens a new one)."""

    @property
    def needs_checkpoint(self) -> bool:
        """True when rows were appended since the last ``checkpoint``, and it does something."""
        return False

    async def checkpoint(self) -> None:  # noqa: B027 - optional hook
        """Make what was appended durable in the main file (SQLite's WAL); elsewhere a no-op."""

    @abstractmethod
    async def close(self) -> None: ...


class LoopAppender(Appender):
    """An appender on one network connection, made on the loop that uses it; a
    connection that failed, closed, or belongs to another loop is replaced."""

    def __init__(self, url: str, statement: Insert, timeout: float):
        super().__init__(url, statement, timeout)
        self.connection: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def append(self, rows: list[tuple[Any, ...]]) -> None:
        """The batch on the event loop; a connection in an unknown state is never reused."""
        conn = await self._connection()
        try:
            await self._write(conn, rows)
        except BaseException:
            self.connection = None
            self._abort(conn)
            raise

    async def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        if self.connection is not None and (
            self._loop is not loop or self._is_closed(self.connection)
        ):
            await self.close()
        if self.connection is None:
            self.connection = await self._connect()
            self._loop = loop
        return self.connection

    async def close(self) -> None:
        """Close the connection: politely on its own loop, else at once."""
        conn, self.connection = self.connection, None
        if conn is None:
            return
        if self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._close(conn), self.timeout)
                return
        self._abort(conn)  # made on another loop (tests), or would not close in time

    @abstractmethod
    async def _connect(self) -> Any: ...

    @abstractmethod
    async def _write(self, conn: Any, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _is_closed(self, conn: Any) -> bool: ...

    @abstractmethod
    def _abort(self, conn: Any) -> None:
        """Drop the connection at once; its loop may be gone."""

    async def _close(self, conn: Any) -> None:
        self._abort(conn)
