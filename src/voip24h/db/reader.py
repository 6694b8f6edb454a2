"""The request path's database access: compiled statements on fast native drivers.

Statements are built with SQLAlchemy Core (db/queries) and compiled once per
shape for the backend's own driver: sqlite3, asyncpg or asyncmy. Driver errors
become DatabaseUnavailable / DatabaseTimeout here and nowhere else, and a pool
that lost its server heals on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect

from voip24h.db.engine import backend_of, parse_url, sqlite_path
from voip24h.errors import DatabaseTimeout, DatabaseUnavailable


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


class Reader(ABC):
    """Runs read statements for the request path."""

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
                conn.execute("PRAGMA mmap_size=268435456")
                conn.execute("PRAGMA cache_size=-65536")
            except sqlite3.Error as exc:
                raise DatabaseUnavailable() from exc
            conn.set_progress_handler(self._past_deadline, 20_000)
            self._conn = conn
        return self._conn

    def _past_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        conn = self._connect()
        self._deadline = time.monotonic() + self.timeout
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

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self._drop()


class _PooledReader(Reader):
    """Shared behaviour of the server backends: a lazily (re)created pool, one retry
    on a connection that died while idle, and a hard time limit per request."""

    def __init__(self, url: str, timeout: float, pool_size: int):
        super().__init__(timeout)
        self._url = parse_url(url)
        self._pool_size = pool_size
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await asyncio.wait_for(self._create_pool(), self.timeout)
                    except Exception as exc:
                        raise DatabaseUnavailable() from exc
        return self._pool

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
        args = statement.args(params)
        deadline = time.monotonic() + self.timeout
        for attempt in (1, 2):
            pool = await self._get_pool()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseTimeout()
            try:
                return await asyncio.wait_for(self._run(pool, statement, args), remaining)
            except TimeoutError as exc:
                raise (
                    DatabaseTimeout() if self._pool is not None else DatabaseUnavailable()
                ) from exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is_query_error(exc):
                    raise
                if attempt == 2:
                    raise DatabaseUnavailable() from exc
        raise DatabaseUnavailable()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._close_pool(pool)

    @abstractmethod
    async def _close_pool(self, pool: Any) -> None: ...


class PostgresReader(_PooledReader):
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
        )

    async def _run(self, pool: Any, statement: Statement, args: list[Any]) -> list[Any]:
        async with pool.acquire() as conn:
            return list(await conn.fetch(statement.sql, *args))

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


class MySQLReader(_PooledReader):
    def __init__(self, url: str, timeout: float, pool_size: int):
        super().__init__(url, timeout, pool_size)
        from sqlalchemy.dialects.mysql.asyncmy import dialect

        self._dialect = dialect()

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
        )

    async def _run(self, pool: Any, statement: Statement, args: list[Any]) -> list[Any]:
        conn = await pool.acquire()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(statement.sql, args)
                rows = list(await cursor.fetchall())
        except BaseException:
            # The connection's state is unknown (cancelled mid-query, or dead):
            # never hand it to the next request.
            conn.close()
            pool.release(conn)
            raise
        pool.release(conn)
        return rows

    def _is_query_error(self, exc: BaseException) -> bool:
        from asyncmy import errors

        return isinstance(exc, errors.ProgrammingError | errors.DataError | errors.IntegrityError)

    async def _close_pool(self, pool: Any) -> None:
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
