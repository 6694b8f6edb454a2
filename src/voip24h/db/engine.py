"""Database URLs and engines: one URL setting picks SQLite, PostgreSQL or MariaDB/MySQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

Backend = Literal["sqlite", "postgresql", "mysql"]

_SYNC_DRIVERS: dict[str, str] = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
}
_ALIASES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


class DatabaseUrlError(ValueError):
    """The database URL names no backend this server supports."""


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"not a database URL: {url!r}") from exc


def backend_of(url: str | URL) -> Backend:
    """'sqlite', 'postgresql' or 'mysql' (MariaDB) for a database URL."""
    parsed = parse_url(url) if isinstance(url, str) else url
    name = _ALIASES.get(parsed.get_backend_name())
    if name is None:
        raise DatabaseUrlError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///FILE, "
            "postgresql://USER@HOST/DB or mysql://USER@HOST/DB"
        )
    return name  # type: ignore[return-value]


def sync_url(url: str) -> URL:
    """The URL with the driver used by the command-line tools and migrations."""
    parsed = parse_url(url)
    backend = backend_of(parsed)
    parsed = parsed.set(drivername=_SYNC_DRIVERS[backend])
    if backend == "mysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def sqlite_path(url: str) -> str:
    """The file of a sqlite:/// URL (':memory:' for an in-memory database)."""
    return parse_url(url).database or ":memory:"


# Pages of WAL between checkpoints for bulk writers (SQLite's default: 1000). A checkpoint
# syncs the database file; ten times fewer of them cut an import's wall time by about a
# quarter (the WAL grows to ~40 MB between them instead of ~4 MB).
BULK_WAL_AUTOCHECKPOINT = 10_000


def make_engine(url: str, *, bulk: bool = False, must_exist: bool = False, **kwargs: Any) -> Engine:
    """A synchronous engine for admin work (migrations, import, partners, reindex).

    ``bulk``: for a process that writes many rows (import): on SQLite, checkpoints
    the WAL less often. ``must_exist``: a SQLite file that is not there is an error,
    never created (for what runs beside the server, like the webhook deliverer).
    """
    backend = backend_of(url)
    options: dict[str, Any] = {"future": True}
    if backend == "sqlite":
        options["connect_args"] = {"timeout": 30}
        path = sqlite_path(url)
        if must_exist and path != ":memory:" and not path.startswith("file:"):
            uri = Path(path).absolute().as_uri() + "?mode=rw"
            options["creator"] = lambda: sqlite3.connect(
                uri, uri=True, timeout=30, check_same_thread=False
            )
    else:
        options.update(pool_pre_ping=True, pool_recycle=3600)
    options.update(kwargs)
    engine = create_engine(sync_url(url), **options)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if bulk:
            event.listen(engine, "connect", _sqlite_bulk_pragmas)
    return engine


def _sqlite_bulk_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BULK_WAL_AUTOCHECKPOINT}").close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the server read while an import writes; NORMAL is durable in WAL mode
    # except for the last transactions on power loss, which a re-import restores.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
