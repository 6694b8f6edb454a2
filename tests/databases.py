"""Test databases: a private database per test session on each server, cleaned per test.

Servers come from VOIP24H_TEST_POSTGRESQL_URL and VOIP24H_TEST_MYSQL_URL (defaults:
the local PostgreSQL and MariaDB). A server that is down skips its tests with the
reason shown, except under CI=true, where it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, delete, text
from sqlalchemy.engine import make_url

from voip24h.db import indexes, migrate
from voip24h.db.engine import make_engine, sync_url
from voip24h.db.schema import meta, metadata

BACKENDS = ("sqlite", "postgresql", "mysql")
SERVER_URLS = {
    "postgresql": os.environ.get(
        "VOIP24H_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("VOIP24H_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}


def unavailable(backend: str, reason: str) -> None:
    message = f"{backend} server not available: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true requires every database)")
    pytest.skip(message)


class ServerDatabase:
    """A database of its own on a server, created once and dropped at the end."""

    def __init__(self, backend: str):
        self.backend = backend
        self.name = f"voip24h_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin_url = SERVER_URLS[backend]
        self.admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)
        self.engine: Engine | None = None

    def create(self) -> None:
        with self.admin.connect() as conn:
            if self.backend == "mysql":
                conn.execute(
                    text(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
            else:
                conn.execute(text(f"CREATE DATABASE {self.name}"))
        self.engine = make_engine(self.url)
        migrate.upgrade(self.engine)

    def drop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.name}"))
        self.admin.dispose()


def clean(engine: Engine) -> None:
    """Empty every table of the schema (the migration version stays) and rebuild any
    index a test left dropped (indexes.defer)."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table is not meta:
                conn.execute(delete(table))
    indexes.restore(engine)
    with engine.begin() as conn:
        conn.execute(delete(meta))


def server_database(backend: str) -> Iterator[ServerDatabase]:
    database = ServerDatabase(backend)
    try:
        database.create()
    except Exception as exc:
        database.admin.dispose()
        unavailable(backend, str(exc).splitlines()[0])
    try:
        yield database
    finally:
        database.drop()
