"""A database outage is logged once when it starts and once when it ends (with the
count of failed requests and its length) and shows in /metrics; a full waiting line
for database connections is refused at once with 503 database_busy."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.builders import cdr_row
from tests.conftest import API
from voip24h.db.drivers import Statement, make_reader
from voip24h.errors import DatabaseBusy
from voip24h.server.dbgate import GatedReader, Outage

SLOW_SQL = {
    "postgresql": "SELECT pg_sleep(2)",
    "mysql": "SELECT SLEEP(2)",
}


def get_user(secret: str) -> dict:
    return {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "voip24h.db"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_outage_is_two_log_lines_and_a_count(load, add_partner, make_client, settings, caplog):
    load(cdr_row(uniqueid="out.1"))
    secret = add_partner("crm")
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    away = path.with_suffix(".away")
    caplog.set_level(logging.INFO, logger="voip24h")
    path.rename(away)  # the database is gone before the server first opens it
    client = make_client()
    failed = [client.post(API, json=get_user(secret)) for _ in range(4)]
    assert [r.status_code for r in failed] == [503] * 4
    assert {r.json()["errorCode"] for r in failed} == {"database_unavailable"}
    during = client.get("/metrics").text
    assert "voip24h_db_outages 1.0" in during
    assert "voip24h_db_outage_failed_requests 4.0" in during
    assert "voip24h_db_outage_seconds 0.0\n" not in during  # still going on
    lines = outage_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("database outage started")
    # One line for the whole outage, not a warning per failed request.
    assert not [r for r in caplog.records if r.getMessage().startswith("database_unavailable")]
    away.rename(path)
    back = client.post(API, json=get_user(secret))
    assert back.status_code == 200 and back.json()["respCode"] == 0
    client.post(API, json=get_user(secret))
    lines = outage_lines(caplog)
    assert len(lines) == 2
    assert lines[1].startswith("database outage ended after ")
    assert lines[1].endswith("; 4 requests failed")
    after = client.get("/metrics").text
    assert "voip24h_db_outage_seconds 0.0\n" in after and "voip24h_db_outages 1.0" in after
    assert "voip24h_db_outage_seconds_total 0.0\n" not in after  # the time it lasted


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])  # SQLite reads on the loop itself
def test_a_full_waiting_line_is_refused_at_once(settings, backend):
    """With room for one call, a second call while a slow one runs is refused, not queued."""

    async def run() -> None:
        inner = make_reader(settings.database_url, 5.0, 1)
        gate = GatedReader(inner, 1, Outage())
        await gate.start()
        try:
            slow = asyncio.create_task(gate.fetch(Statement(SLOW_SQL[backend], (), {}), {}))
            await asyncio.sleep(0.2)
            assert gate.active == 1
            with pytest.raises(DatabaseBusy) as refused:
                await gate.ping()
            assert refused.value.headers["Retry-After"] == "1"
            assert refused.value.status == 503
            slow.cancel()
            await asyncio.gather(slow, return_exceptions=True)
            await gate.ping()  # the slot is free again
            assert gate.active == 0 and gate.refused == 1
        finally:
            await gate.close()

    asyncio.run(run())


def test_database_busy_is_the_503_envelope(make_client, add_partner):
    secret = add_partner("crm")
    client = make_client(db_pool_size=1, db_max_waiting=0)
    gate = client.app.state.voip24h.reader
    gate.active = 1  # the one slot is taken
    refused = client.post(API, json=get_user(secret))
    gate.active = 0
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "respCode": -1,
        "respMsg": "Too many requests are waiting for the database; retry shortly.",
        "errorCode": "database_busy",
    }
    assert 'voip24h_db_errors_total{error_code="database_busy"} 1.0' in client.get("/metrics").text
    assert client.post(API, json=get_user(secret)).status_code == 200


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])  # SQLite has no pool to wait for
def test_a_call_waits_for_a_connection_at_most_db_wait_seconds(settings, backend):
    """A frozen database holds the pool's calls to their statement timeout; the others
    are refused once db_wait_seconds have passed, not after the full timeout."""

    async def run() -> None:
        inner = make_reader(settings.database_url, 5.0, 1)
        gate = GatedReader(inner, 10, Outage(), slots=1, wait_seconds=0.3)
        await gate.start()
        try:
            slow = asyncio.create_task(gate.fetch(Statement(SLOW_SQL[backend], (), {}), {}))
            await asyncio.sleep(0.1)
            with pytest.raises(DatabaseBusy) as refused:
                await gate.ping()
            assert not slow.done()  # refused while the slow call still holds the connection
            assert refused.value.headers["Retry-After"] == "1"
            # Nothing has moved for wait_seconds: the next call is refused without waiting.
            waits = asyncio.create_task(gate.ping())
            await asyncio.sleep(0)
            assert waits.done() and isinstance(waits.exception(), DatabaseBusy)
            await slow
            await gate.ping()  # the connection is free again
            assert gate.active == 0 and gate.refused == 2
        finally:
            await gate.close()

    asyncio.run(run())


def test_a_long_outage_is_logged_as_a_count_every_thirty_seconds(caplog):
    from voip24h.errors import DatabaseUnavailable

    now = [100.0]
    outage = Outage(clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="voip24h.db")
    for _ in range(100):  # 100 failed requests in 50 s
        try:
            raise DatabaseUnavailable() from ConnectionRefusedError("connection refused")
        except DatabaseUnavailable as exc:
            outage.failure(exc)
        now[0] += 0.5
    outage.success()
    lines = outage_lines(caplog)
    assert len(lines) == 3, lines
    assert lines[0].startswith("database outage started: database_unavailable")
    assert lines[0].endswith("(connection refused)")
    assert lines[1] == (
        "database outage going on for 30 s; 60 requests failed so far (connection refused)"
    )
    assert lines[2] == "database outage ended after 50.0 s; 100 requests failed"
    assert (outage.seconds(), outage.total_seconds()) == (0.0, 50.0)
