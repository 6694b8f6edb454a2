"""voip24h.client over a real socket: uvicorn on 127.0.0.1, failing, slow and absent servers."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.builders import cdr_row
from tests.live_server import free_port, live_server, silent_server
from voip24h.client import (
    NO_RETRY,
    AsyncClient,
    Client,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    Timeout,
    TransportError,
)
from voip24h.config import load_settings
from voip24h.db import migrate
from voip24h.db.engine import make_engine
from voip24h.server.app import create_app

SEED_IDS = ["1532857052.131132", "1532834934.130789"]


@pytest.fixture
def seed_calls(load):
    load(
        cdr_row(uniqueid=SEED_IDS[0], disposition="NO ANSWER", billsec=0),
        cdr_row(
            uniqueid=SEED_IDS[1],
            calldate=datetime(2018, 7, 29, 10, 28, 54),
            dst="0971828252",
            disposition="NO ANSWER",
            billsec=0,
        ),
    )


def test_sync_and_async_over_a_socket(seed_calls, add_partner, settings):
    secret = add_partner()
    with live_server(create_app(settings)) as server:
        with Client(server.url, secret) as api:
            synced = api.get_user_date("137", "01/07/2018", "30/07/2018")

        async def fetch():
            async with AsyncClient(server.url, secret) as api:
                return await asyncio.gather(
                    api.get_user("137"), api.get_date("29/07/2018", "29/07/2018")
                )

        by_user, by_date = asyncio.run(fetch())
    assert [r.call_id for r in synced] == SEED_IDS
    assert by_user == by_date == synced


def _sqlite_settings(path: Path):
    return load_settings(
        {"database_url": f"sqlite:///{path}", "partner_cache_seconds": 0}, environ={}
    )


def test_503_is_retried_until_the_database_is_back(tmp_path):
    """A server whose SQLite file is missing answers 503; it comes back while we wait."""
    ready = tmp_path / "ready.db"
    engine = make_engine(f"sqlite:///{ready}")
    migrate.upgrade(engine)
    engine.dispose()
    from voip24h.service import partner_admin

    engine = make_engine(f"sqlite:///{ready}")
    secret = partner_admin.add(engine, "crm", [], [], None).secret
    engine.dispose()
    live = tmp_path / "live.db"
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # the database returns during the second wait
            shutil.copy(ready, live)

    with (
        live_server(create_app(_sqlite_settings(live))) as server,
        Client(server.url, secret, sleep=sleep) as api,
    ):
        assert api.get_user("137") == []
    assert len(slept) == 2
    # The 503 says Retry-After: 2; the client waits that long plus a jitter of at most 0.5 s.
    assert all(2.0 <= wait <= 2.5 for wait in slept), slept


def test_503_gives_up_after_the_attempts_allowed(tmp_path):
    slept: list[float] = []
    with live_server(create_app(_sqlite_settings(tmp_path / "missing.db"))) as server:
        retry = RetryPolicy(attempts=3, backoff=0.01)
        with (
            Client(server.url, "any-secret", retry=retry, sleep=slept.append) as api,
            pytest.raises(ServiceUnavailable) as caught,
        ):
            api.get_user("137")
    error = caught.value
    assert (error.status, error.error_code, error.resp_code) == (503, "database_unavailable", -1)
    assert len(slept) == 2


def test_real_waits_between_retries(tmp_path):
    """No injected sleep: the client really waits (backoff 0.2 s → about 0.1 + 0.2 s)."""
    with live_server(create_app(_sqlite_settings(tmp_path / "missing.db"))) as server:
        retry = RetryPolicy(attempts=3, backoff=0.2)
        with Client(server.url, "any-secret", retry=retry) as api:
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                api.get_user("137")
    assert 0.25 <= time.monotonic() - started < 5


def test_a_server_that_never_answers_times_out_once():
    slept: list[float] = []
    with silent_server() as url, Client(url, "any-secret", timeout=0.5, sleep=slept.append) as api:
        started = time.monotonic()
        with pytest.raises(Timeout, match="did not answer getUser in time"):
            api.get_user("137")
    assert 0.4 <= time.monotonic() - started < 3
    assert slept == []  # a read timeout is not retried: the query may still be running


def test_refused_connections_are_retried_then_reported():
    slept: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    with (
        Client(url, "any-secret", sleep=slept.append) as api,
        pytest.raises(TransportError, match="cannot connect") as caught,
    ):
        api.get_user("137")
    assert len(slept) == api.retry.attempts - 1
    assert "any-secret" not in str(caught.value)


def test_async_retries_503(tmp_path):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run():
        async with AsyncClient(server.url, "s", retry=RetryPolicy(attempts=2), sleep=sleep) as api:
            await api.get_user("137")

    with (
        live_server(create_app(_sqlite_settings(tmp_path / "missing.db"))) as server,
        pytest.raises(ServiceUnavailable),
    ):
        asyncio.run(run())
    assert len(slept) == 1


def _timed_sleep(record: list[float]):
    def sleep(seconds: float) -> None:
        record.append(seconds)
        time.sleep(seconds)

    return sleep


def test_429_waits_what_retry_after_says(seed_calls, engine, settings, caplog):
    from voip24h.service import partner_admin

    caplog.set_level(logging.DEBUG)

    secret = partner_admin.add(engine, "slow", [], [], None, {"rate_per_second": 1}).secret
    slept: list[float] = []
    with (
        live_server(create_app(settings)) as server,
        Client(server.url, secret, sleep=_timed_sleep(slept)) as api,
    ):
        started = time.monotonic()
        results = [api.get_user("137") for _ in range(3)]
        elapsed = time.monotonic() - started
        with (
            Client(server.url, secret, retry=NO_RETRY) as impatient,
            pytest.raises(RateLimited) as caught,
        ):
            impatient.get_user("137")
            impatient.get_user("137")
        with (
            Client(server.url, secret, retry=RetryPolicy(max_retry_after=0.1)) as strict,
            pytest.raises(RateLimited),
        ):
            strict.get_user("137")
            strict.get_user("137")
    assert all(len(r) == 2 for r in results)
    assert slept and all(s >= 1 for s in slept)  # Retry-After is whole seconds, at least 1
    assert elapsed >= sum(slept)
    error = caught.value
    assert (error.status, error.error_code, error.resp_code) == (429, "rate_limited", -1)
    assert error.retry_after is not None and error.retry_after >= 1
    retries = [r.getMessage() for r in caplog.records if r.name == "voip24h.client"]
    assert retries and all("HTTP 429 rate_limited; retrying in" in m for m in retries)
    assert not [r for r in caplog.records if secret in r.getMessage()]


def test_pages_walk_everything_once(load, add_partner, settings):
    rows = [
        cdr_row(uniqueid=f"{1530403200 + n * 60}.{n}", calldate=datetime(2018, 7, 1, 7, n, 0))
        for n in range(25)
    ]
    load(*rows)
    secret = add_partner()
    with live_server(create_app(settings)) as server, Client(server.url, secret) as api:
        whole = api.get_user("137")
        pages = list(api.pages("getUser", {"user": "137"}, page_size=7))
        walked = list(
            api.iter_records(
                "getUserDate",
                {"user": "137", "fromDate": "01/07/2018", "toDate": "01/07/2018"},
                page_size=10,
            )
        )

        async def walk_async():
            async with AsyncClient(server.url, secret) as aapi:
                return [r async for r in aapi.iter_records("getUser", {"user": "137"}, page_size=4)]

        walked_async = asyncio.run(walk_async())
    assert [len(p.records) for p in pages] == [7, 7, 7, 4]
    assert pages[-1].next_cursor is None and all(p.next_cursor for p in pages[:-1])
    flat = [r for p in pages for r in p.records]
    assert flat == whole == walked == walked_async
    assert len({r.call_id for r in flat}) == 25


def test_async_timeout_and_refused_connection():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run(url: str, **kwargs):
        async with AsyncClient(url, "s", sleep=sleep, **kwargs) as api:
            await api.get_user("137")

    with silent_server() as url, pytest.raises(Timeout):
        asyncio.run(run(url, timeout=0.3))
    assert slept == []
    with pytest.raises(TransportError, match="cannot connect"):
        asyncio.run(run(f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=3)))
    assert len(slept) == 2
