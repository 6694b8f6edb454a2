"""Fixtures: a database per backend (SQLite, PostgreSQL, MariaDB), settings, app and client."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.databases import BACKENDS, ServerDatabase, clean, server_database
from voip24h.config import Settings, load_settings
from voip24h.db import migrate
from voip24h.db.engine import make_engine
from voip24h.domain import cdr
from voip24h.ingest.loader import Loader, LoadStats
from voip24h.server.app import create_app
from voip24h.service import partner_admin

API = "/api/v1/partner/voip24h"


def access_lines(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """The JSON access lines (as dicts) in log records of ``voip24h.access``; a record
    holds several lines (observability.AccessLog)."""
    return [
        orjson.loads(line)
        for record in records
        if record.name == "voip24h.access"
        for line in record.getMessage().splitlines()
    ]


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[ServerDatabase]:
    yield from server_database("postgresql")


@pytest.fixture(scope="session")
def mysql_database() -> Iterator[ServerDatabase]:
    yield from server_database("mysql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty, upgraded database on ``backend``."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'voip24h.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    database: ServerDatabase = request.getfixturevalue(f"{backend}_database")
    assert database.engine is not None
    clean(database.engine)
    yield database.url
    clean(database.engine)


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Rate limits are off unless a test sets them (tests/server/test_ratelimit.py does): a test
    # firing many requests must not be refused because the machine happened to be fast.
    no_limits = {"rate_limit_per_second": 0, "rate_limit_rows_per_minute": 0}
    return load_settings(
        {"database_url": db_url, "partner_cache_seconds": 0, **no_limits}, environ={}
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Any]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def load(engine: Any, settings: Settings) -> Callable[..., LoadStats]:
    """load(*rows): normalize hand-built rows and load them as an import would."""
    loader = Loader(engine, settings)

    def _load(*rows: dict[str, Any]) -> LoadStats:
        loader.check_ready()
        return loader.load(cdr.normalize(row, settings.zone) for row in rows)

    return _load


@pytest.fixture
def add_partner(engine: Any) -> Callable[..., str]:
    """add_partner(name, accountcodes=(), extensions=(), secret=None) -> the secret."""

    def _add(
        name: str = "crm",
        accountcodes: tuple[str, ...] = (),
        extensions: tuple[str, ...] = (),
        secret: str | None = None,
    ) -> str:
        return partner_admin.add(engine, name, list(accountcodes), list(extensions), secret).secret

    return _add


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """make_client(**setting_overrides) -> a started TestClient on the test database."""
    clients: list[TestClient] = []

    def _make(**overrides: Any) -> TestClient:
        client = TestClient(
            create_app(settings.replace(**overrides)), raise_server_exceptions=False
        )
        client.__enter__()
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def post(client: TestClient) -> Callable[..., Any]:
    """post(request_type, secret, data=..., **extra) -> the httpx response."""

    def _post(request_type: str, secret: str | None, data: Any = None, **extra: Any) -> Any:
        body: dict[str, Any] = {"requestType": request_type, "partnerSecret": secret}
        if data is not None:
            body["data"] = data
        body.update(extra)
        return client.post(API, json=body)

    return _post
