"""The request path's database access: compiled statements on fast native drivers.

Statements are built with SQLAlchemy Core (db/queries) and compiled once per
shape for the backend's own driver: sqlite3, asyncpg or asyncmy. Driver errors
become DatabaseUnavailable / DatabaseTimeout here and nowhere else, and a pool
that lost its server heals on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect

from voip24h.db.engine import backend_of, parse_url, sqlite_path
from voip24h.errors import DatabaseTimeout, DatabaseUnavailable

# When a request sets it, every statement of that request shares one time budget.
REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("voip24h_db_deadline", default=None)
MMAP_BYTES = 0x7FFF0000  # SQLite's default SQLITE_MAX_MMAP_SIZE (2 GiB - 64 KiB)
RECONNECT_PAUSE = 0.25  # seconds of immediate 503s after a failed connect
PING_AFTER_IDLE = 5.0  # seconds without a good query before connections are pinged first


def _retrieve(task: asyncio.Future[Any]) -> None:
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
        return [params[name] if name in params else self.fixed[name] for name in self.names]


def compile_for(stmt: Select, dialect: Dialect) -> Statement:
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return Statement(compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))


def has_json1() -> bool:
    """True when this SQLite library has the JSON functions (built in since 3.38)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            conn.execute("SELECT json_group_array(json_object('a', 1))").fetchone()
    except sqlite3.Error:
        return False
    return True


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


class SQLiteReader(Reader):
    """sqlite3 on the event loop thread: queries are index lookups of a few ms at most,
    and a progress handler cancels any that outlives the request time limit."""

    def __init__(self, path: str, timeout: float):
        super().__init__(timeout)
        from sqlalchemy.dialects.sqlite.pysqlite import dialect

        self._dialect = dialect()
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self.renders_json = has_json1()
        self._deadline = 0.0

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = sqlite3.connect(
                    f"file:{self._path}?mode=rw",
                    uri=True,
                    timeout=1.0,
                    check_same_thread=False,
                    cached_statements=256,
                )
                conn.execute("PRAGMA query_only=1")
                # Read the file through the OS page cache directly (no copy into
                # SQLite's own cache, which every write to the file, e.g. the audit
                # trail's, empties). SQLite caps this at its compile-time maximum.
                conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
                conn.execute("PRAGMA cache_size=-65536")
                conn.execute("PRAGMA temp_store=MEMORY")
            except sqlite3.Error as exc:
                raise DatabaseUnavailable() from exc
            conn.set_progress_handler(self._past_deadline, 20_000)
            self._conn = conn
        return self._conn

    def _past_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        conn = self._connect()
        self._deadline = time.monotonic() + budget(self.timeout)
        try:
            return conn.execute(statement.sql, statement.args(params)).fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise DatabaseTimeout() from exc
            self._drop()
            raise DatabaseUnavailable() from exc
        except sqlite3.DatabaseError as exc:
            self._drop()
            raise DatabaseUnavailable() from exc

    async def stream(
        self, statement: Statement, params: Mapping[str, Any], chunk_rows: int
    ) -> AsyncIterator[list[Sequence[Any]]]:
        # A connection of its own: an open SELECT holds a read snapshot, which on the
        # shared connection would hide new calls from every other request meanwhile.
        deadline = [time.monotonic() + self.timeout]
        try:
            conn = sqlite3.connect(
                f"file:{self._path}?mode=rw", uri=True, timeout=1.0, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=1")
        except sqlite3.Error as exc:
            raise DatabaseUnavailable() from exc
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline[0] else 0, 20_000)
        try:
            cursor = conn.execute(statement.sql, statement.args(params))
            while True:
                deadline[0] = time.monotonic() + self.timeout
                rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    return
                yield rows
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise DatabaseTimeout() from exc
            raise DatabaseUnavailable() from exc
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable() from exc
        finally:
            conn.close()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self._drop()


class _PooledReader(Reader):
    """Shared behaviour of the server backends: a lazily (re)created pool, one retry
    on a connection that died while idle, and a hard time limit per request."""

    cancels_promptly = False  # the driver stops at once when its task is cancelled

    def __init__(self, url: str, timeout: float, pool_size: int):
        super().__init__(timeout)
        self._url = parse_url(url)
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
        # The server starts anyway and answers 503 until the database is back.
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
        task.add_done_callback(_retrieve)
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
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._close_pool(pool)

    @abstractmethod
    async def _close_pool(self, pool: Any) -> None: ...


async def _keep_session(_conn: Any) -> None:
    """What a connection needs on its way back to the pool, beyond asyncpg's own
    rollback of an open transaction: nothing. The request path only reads (no SET,
    LISTEN, advisory lock or held cursor), so asyncpg's default reset (RESET ALL,
    UNLISTEN, CLOSE ALL, unlocking: one more round trip and four statements for the
    server on every request) would undo nothing."""


def _reset_option(asyncpg: Any) -> dict[str, Any]:
    """``reset=_keep_session`` where asyncpg has that pool option (0.30 and later)."""
    if "reset" in inspect.signature(asyncpg.create_pool).parameters:
        return {"reset": _keep_session}
    return {}


class PostgresReader(_PooledReader):
    cancels_promptly = True

    def __init__(self, url: str, timeout: float, pool_size: int):
        super().__init__(url, timeout, pool_size)
        from sqlalchemy.dialects.postgresql.asyncpg import dialect

        self._dialect = dialect()

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    async def _create_pool(self) -> Any:
        import asyncpg

        u = self._url
        return await asyncpg.create_pool(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            database=u.database,
            min_size=1,
            max_size=self._pool_size,
            command_timeout=self.timeout,
            timeout=self.timeout,
            max_inactive_connection_lifetime=60,
            # The server cancels any statement outliving the request time limit, even
            # if the client side is gone.
            server_settings={"statement_timeout": str(int(self.timeout * 1000))},
            **_reset_option(asyncpg),
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


STATEMENTS_PER_CONNECTION = 32  # prepared statements each MariaDB connection keeps (LRU)
# ER_KEY_DOES_NOT_EXITS, and the index hints records.select_shaped adds.
_NO_SUCH_INDEX = 1176
_INDEX_HINT = re.compile(r" FORCE INDEX \([a-z_]+\)")


class MySQLReader(_PooledReader):
    def __init__(self, url: str, timeout: float, pool_size: int):
        super().__init__(url, timeout, pool_size)
        from asyncmy.errors import OperationalError
        from sqlalchemy.dialects.mysql.asyncmy import dialect

        self._dialect = dialect()
        self._operational_error = OperationalError
        self._background: set[asyncio.Task[None]] = set()

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    async def _create_pool(self) -> Any:
        import asyncmy

        u = self._url
        return await asyncmy.create_pool(
            host=u.host or "127.0.0.1",
            port=u.port or 3306,
            user=u.username or "root",
            password=u.password or "",
            db=u.database,
            minsize=1,
            maxsize=self._pool_size,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=self.timeout,
            pool_recycle=600,
            # Statements with parameters run as server-side prepared statements (the
            # binary protocol): no escaping into SQL text, no re-parsing by the server,
            # rows decoded from binary. Measured on the bench's getDate: a quarter less
            # client CPU and a tenth less server CPU per request than text queries.
            stmt_cache_size=STATEMENTS_PER_CONNECTION,
        )

    async def _run(self, pool: Any, statement: Statement, args: list[Any]) -> list[Any]:
        conn = await pool.acquire()
        try:
            async with conn.cursor() as cursor:
                if self._needs_ping():
                    await cursor.execute("SELECT 1")
                    await cursor.fetchall()
                try:
                    await cursor.execute(statement.sql, args)
                except self._operational_error as exc:
                    if exc.args[:1] != (_NO_SUCH_INDEX,) or not _INDEX_HINT.search(statement.sql):
                        raise
                    # The hinted index is dropped while an initial load runs
                    # (indexes.defer): the statement without the hint is still right.
                    await cursor.execute(_INDEX_HINT.sub("", statement.sql), args)
                rows = list(await cursor.fetchall())
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                # Out of time: closing our socket does not stop the server's work.
                self._kill_later(conn)
            # The connection's state is unknown (cancelled mid-query, or dead):
            # never hand it to the next request.
            conn.close()
            pool.release(conn)
            raise
        pool.release(conn)
        return rows

    def _kill_later(self, conn: Any) -> None:
        try:
            thread_id = int(conn.thread_id())
        except Exception:
            return
        task = asyncio.get_running_loop().create_task(self._kill_query(thread_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _kill_query(self, thread_id: int) -> None:
        """KILL QUERY a statement whose request gave up, over a connection of its own."""
        import asyncmy

        u = self._url
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                conn = await asyncmy.connect(
                    host=u.host or "127.0.0.1",
                    port=u.port or 3306,
                    user=u.username or "root",
                    password=u.password or "",
                    connect_timeout=self.timeout,
                )
                try:
                    async with conn.cursor() as cursor:
                        await cursor.execute(f"KILL QUERY {thread_id}")
                finally:
                    conn.close()

    def _is_timeout(self, exc: BaseException) -> bool:
        from asyncmy import errors

        # 1969: MariaDB max_statement_time; 3024: MySQL max_execution_time.
        return isinstance(exc, errors.OperationalError) and exc.args[:1] in ((1969,), (3024,))

    async def _stream(
        self, pool: Any, statement: Statement, args: list[Any], chunk_rows: int
    ) -> AsyncGenerator[list[Any], None]:
        # asyncmy reads a result off the socket as fast as the server sends it, even
        # unbuffered, so a big export would sit in memory. PyMySQL's unbuffered cursor
        # reads the socket only as rows are fetched: memory stays at one chunk. It runs
        # in a worker thread, on a connection of its own that is closed at the end.
        import pymysql
        import pymysql.cursors

        u = self._url
        conn = await asyncio.to_thread(
            pymysql.connect,
            host=u.host or "127.0.0.1",
            port=u.port or 3306,
            user=u.username or "root",
            password=u.password or "",
            database=u.database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            cursorclass=pymysql.cursors.SSCursor,
        )
        try:
            cursor = conn.cursor()
            await asyncio.to_thread(cursor.execute, statement.sql, args)
            while rows := await asyncio.to_thread(cursor.fetchmany, chunk_rows):
                yield list(rows)
        finally:
            await asyncio.to_thread(conn.close)

    def _is_query_error(self, exc: BaseException) -> bool:
        import pymysql
        from asyncmy import errors

        return isinstance(
            exc,
            errors.ProgrammingError
            | errors.DataError
            | errors.IntegrityError
            | pymysql.err.ProgrammingError
            | pymysql.err.DataError,
        )

    async def _close_pool(self, pool: Any) -> None:
        if self._background:
            await asyncio.wait(list(self._background), timeout=self.timeout)
        pool.close()
        await pool.wait_closed()


def make_reader(url: str, timeout: float, pool_size: int) -> Reader:
    """The reader for a database URL."""
    backend = backend_of(url)
    if backend == "sqlite":
        return SQLiteReader(sqlite_path(url), timeout)
    if backend == "postgresql":
        return PostgresReader(url, timeout, pool_size)
    return MySQLReader(url, timeout, pool_size)
