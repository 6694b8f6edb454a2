"""The audit trail: every partner request recorded without its secret, kept for the
retention period, readable with `voip24h audit`; writing it costs the hot path little."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from tests.builders import cdr_row
from tests.conftest import API
from tests.support import audit_rows, flush
from voip24h.cli.main import cli
from voip24h.db.schema import audit_log
from voip24h.server import audit
from voip24h.server.audit import AuditWriter, audit_engine, audit_url
from voip24h.server.observability import Metrics, RequestInfo
from voip24h.service.answers import utcnow


@pytest.fixture
def audit_db(settings):
    """The audit trail's database: for SQLite a sibling file of the main one."""
    engine = audit_engine(settings)
    yield engine
    engine.dispose()


def test_every_partner_request_is_recorded(audit_db, load, add_partner, client):
    load(cdr_row(uniqueid="a.1"), cdr_row(uniqueid="a.2"))
    secret = add_partner("acme-crm")
    ok = client.post(
        API,
        json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}},
        headers={"X-Request-ID": "req-42"},
    )
    bad = client.post(API, json={"requestType": "getUser", "partnerSecret": "nope-nope-nope"})
    junk = client.post(API, content=b"{", headers={"Content-Type": "application/json"})
    client.get("/healthz")  # ops endpoints are not partner requests
    assert [r.status_code for r in (ok, bad, junk)] == [200, 401, 400]
    flush(client)
    first, second, third = audit_rows(audit_db)
    assert first["request_id"] == "req-42"
    assert (first["partner"], first["request_type"], first["status"]) == (
        "acme-crm",
        "getUser",
        200,
    )
    assert (first["rows_returned"], first["error_code"], first["client"]) == (2, "", "testclient")
    assert json.loads(first["params"]) == {"user": "137"}
    assert first["latency_ms"] > 0 and first["partner_id"] is not None
    assert (second["partner"], second["status"], second["error_code"]) == (
        None,
        401,
        "invalid_secret",
    )
    assert (third["request_type"], third["error_code"]) == (None, "invalid_json")


def test_audit_cli_lists_filters_and_prunes(audit_db, settings, add_partner, client):
    secret = add_partner("acme-crm")
    for user in ("137", "138"):
        client.post(
            API, json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": user}}
        )
    client.post(API, json={"requestType": "getUser", "partnerSecret": "wrong-wrong-wrong"})
    flush(client)
    old = utcnow() - timedelta(days=400)
    with audit_db.begin() as conn:
        conn.execute(
            insert(audit_log).values(
                at=old,
                request_id="old",
                params="",
                rows_returned=0,
                status=200,
                error_code="",
                latency_ms=1.0,
                client="x",
                partner="acme-crm",
            )
        )
    runner = CliRunner()
    db = ["--db", settings.database_url]
    listed = runner.invoke(cli, ["audit", "list", "--partner", "acme-crm", "--json", *db])
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.output)
    assert [json.loads(i["params"])["user"] for i in items] == ["138", "137"]  # newest first
    failed = json.loads(
        runner.invoke(cli, ["audit", "list", "--status", "401", "--json", *db]).output
    )
    assert [i["error_code"] for i in failed] == ["invalid_secret"]
    everything = runner.invoke(cli, ["audit", "list", "--since", "1000d", *db])
    assert everything.output.count("acme-crm") == 3 and "wrong-wrong-wrong" not in everything.output
    if settings.database_url.startswith("sqlite"):  # --db may name the audit file itself
        direct = ["--db", audit_url(settings)]
        same = runner.invoke(cli, ["audit", "list", "--partner", "acme-crm", "--json", *direct])
        assert json.loads(same.output) == items
        folder = Path(settings.database_url.split("///", 1)[1]).parent
        assert not list(folder.glob("*-audit-audit.db"))  # no stray file of a file
    pruned = runner.invoke(cli, ["audit", "prune", "--json", *db])  # default: 90 days
    assert json.loads(pruned.output)["deleted"] == 1
    assert {r["request_id"] for r in audit_rows(audit_db)} == {
        i["request_id"] for i in items + failed
    }


def test_recording_is_cheap_and_written_in_batches(engine, settings):
    """The hot path only appends to a list; the batch write happens off the loop."""
    writer = AuditWriter(settings.database_url, 90, Metrics(("getUser",)))
    infos = [
        RequestInfo(f"r{n}", "192.0.2.1", "POST", API, 0.0, 1, "crm", "getUser", {"user": "137"})
        for n in range(5000)
    ]
    batches = []  # best of five batches: the machine may be busy with other work
    for part in range(5):
        started = time.perf_counter()
        for info in infos[part * 1000 : (part + 1) * 1000]:
            writer.record(info)
        batches.append((time.perf_counter() - started) / 1000)
    per_request = min(batches)
    started = time.perf_counter()
    asyncio.run(writer.flush())
    written = time.perf_counter() - started
    print(
        f"audit: record() {per_request * 1e6:.1f} us/request; 5000 rows written in {written:.2f} s"
    )
    assert per_request < 200e-6  # typically 5-10 us; a request takes milliseconds
    assert len(audit_rows(engine)) == 5000
    asyncio.run(writer.close())


def test_server_prunes_rows_past_retention(engine, settings):
    with engine.begin() as conn:
        for age_days, request_id in ((10, "old"), (0, "new")):
            conn.execute(
                insert(audit_log).values(
                    at=utcnow() - timedelta(days=age_days), request_id=request_id, params="",
                    rows_returned=0, status=200, error_code="", latency_ms=1.0, client="x",
                )
            )  # fmt: skip
    writer = AuditWriter(settings.database_url, 7, Metrics(()))

    async def run() -> None:
        await writer.start()  # prunes once at start, then hourly
        await asyncio.sleep(0.3)
        await writer.close()

    asyncio.run(run())
    assert [r["request_id"] for r in audit_rows(engine)] == ["new"]


def test_sqlite_audit_is_written_beside_the_database_not_into_it(
    backend, engine, settings, add_partner, client
):
    """Writes to the file the server reads slow its readers down, so a SQLite
    database's audit trail goes to FILE-audit.db; servers keep it in the database."""
    secret = add_partner("acme-crm")
    client.post(
        API, json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "1"}}
    )
    flush(client)
    if backend == "sqlite":
        assert audit_url(settings) == settings.database_url.replace(
            "voip24h.db", "voip24h-audit.db"
        )
        assert audit_rows(engine) == []
    else:
        assert audit_url(settings) == settings.database_url
    with audit_engine(settings).connect() as conn:
        assert [r.partner for r in conn.execute(select(audit_log))] == ["acme-crm"]
    listed = CliRunner().invoke(cli, ["audit", "list", "--json", "--db", settings.database_url])
    assert [i["partner"] for i in json.loads(listed.output)] == ["acme-crm"]


def test_audit_database_url_setting_chooses_where_rows_go(
    tmp_path, settings, add_partner, make_client
):
    elsewhere = f"sqlite:///{tmp_path / 'trail.db'}"
    secret = add_partner("acme-crm")
    client = make_client(audit_database_url=elsewhere)
    client.post(
        API, json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "1"}}
    )
    flush(client)
    assert audit_url(settings.replace(audit_database_url=elsewhere)) == elsewhere
    listed = CliRunner().invoke(
        cli,
        ["audit", "list", "--json", "--db", settings.database_url],
        env={"VOIP24H_AUDIT_DATABASE_URL": elsewhere},
    )
    assert [i["partner"] for i in json.loads(listed.output)] == ["acme-crm"]


def test_audit_rows_keep_every_value_and_survive_a_lost_connection(backend, engine, settings):
    """Rows go in as plain tuples (sqlite3 executemany, asyncpg COPY, asyncmy INSERT):
    every column reads back as SQLAlchemy wrote it; a connection lost between batches
    is replaced and the next batch is written."""
    writer = AuditWriter(settings.database_url, 90, Metrics(("getUser",)))
    first = RequestInfo("r1", "192.0.2.1", "POST", API, 0.0, 7, "crm", "getUser", {"user": "1"})
    first.at = first.at.replace(microsecond=0)  # SQLite text without a fraction too
    first.rows, first.status, first.latency_ms = 3, 200, 1.23456
    second = RequestInfo("r2", "192.0.2.2", "POST", API, 0.0)
    second.status, second.error_code = 401, "invalid_secret"

    async def run() -> None:
        writer.record(first)
        await writer.flush()
        conn = getattr(writer._appender, "connection", None)
        if conn is not None:  # PostgreSQL/MariaDB: drop it under the writer
            conn.terminate() if backend == "postgresql" else conn.close()
        writer.record(second)
        await writer.flush()
        await writer.close()

    asyncio.run(run())
    one, two = audit_rows(engine)
    assert one["at"] == first.at
    assert (one["request_id"], one["partner_id"], one["partner"], one["request_type"]) == (
        "r1",
        7,
        "crm",
        "getUser",
    )
    assert (one["params"], one["rows_returned"], one["status"], one["client"]) == (
        '{"user":"1"}',
        3,
        200,
        "192.0.2.1",
    )
    assert one["latency_ms"] == 1.235 and one["error_code"] == ""
    assert (two["partner"], two["request_type"], two["status"], two["error_code"]) == (
        None,
        None,
        401,
        "invalid_secret",
    )


def test_steady_traffic_is_written_a_round_at_a_time_not_chased(
    backend, engine, settings, monkeypatch
):
    """Rows arriving while a batch is being written wait for the next round, so a busy
    server writes one batch (one transaction) per round rather than a few rows at a time
    without pause; and every row is written."""

    monkeypatch.setattr(audit, "FLUSH_SECONDS", 0.1)
    writer = AuditWriter(settings.database_url, 90, Metrics(("getUser",)))
    batches: list[int] = []
    write_batch = writer._write_batch

    async def counted() -> bool:
        batches.append(min(len(writer._pending), audit.BATCH))
        return await write_batch()

    monkeypatch.setattr(writer, "_write_batch", counted)

    async def run() -> int:
        await writer.start()
        sent, until = 0, time.monotonic() + 1.0
        while time.monotonic() < until:
            sent += 1
            writer.record(_info(sent))
            await asyncio.sleep(0.002)
        await writer.close()
        return sent

    sent = asyncio.run(run())
    assert len(audit_rows(engine)) == sent
    assert len(batches) <= 15, batches  # ten rounds in the second, and the last flush


def _sqlite_writer(tmp_path):
    url = f"sqlite:///{tmp_path / 'trail.db'}"
    return AuditWriter(url, 90, Metrics(("getUser",)), own_table=True), tmp_path / "trail.db"


def _info(n: int) -> RequestInfo:
    return RequestInfo(f"r{n}", "192.0.2.1", "POST", API, 0.0, 1, "crm", "getUser", {"user": "1"})


def test_sqlite_batch_waits_for_another_workers_write_without_blocking(tmp_path, caplog):
    """Two server workers share the SQLite audit file: a batch that finds the other's
    write in progress is retried shortly, never waited for on the event loop."""

    writer, path = _sqlite_writer(tmp_path)

    async def run() -> tuple[float, float]:
        writer.record(_info(1))
        await writer.flush()  # creates the file and table
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the other worker is writing
        writer.record(_info(2))
        flushing = asyncio.create_task(writer.flush())
        started = time.perf_counter()
        await asyncio.sleep(0.2)  # the loop stays free meanwhile
        slept = time.perf_counter() - started
        assert not flushing.done() and len(writer._pending) == 1
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(flushing, 5)
        await writer.close()
        return slept, time.perf_counter() - started

    with caplog.at_level("WARNING", logger="voip24h.server.audit"):
        slept, _ = asyncio.run(run())
    assert slept < 0.5
    assert caplog.records == []
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT request_id FROM audit_log ORDER BY id")] == [
            "r1",
            "r2",
        ]


def test_sqlite_rows_reach_the_file_itself_by_the_checkpoint(tmp_path, monkeypatch):
    """Batches are committed to the WAL; the periodic checkpoint copies them into the
    file, so a copy of the .db alone (a naive backup) holds them too."""
    import shutil

    monkeypatch.setattr(audit, "FLUSH_SECONDS", 0.05)
    monkeypatch.setattr(audit, "CHECKPOINT_SECONDS", 0.1)
    writer, path = _sqlite_writer(tmp_path)

    async def run() -> None:
        await writer.start()
        for n in range(3):
            writer.record(_info(n))
        await asyncio.sleep(0.6)  # flushed, then checkpointed
        shutil.copy(path, tmp_path / "copy.db")  # while the server runs: no -wal copied
        await writer.close()

    asyncio.run(run())
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 3


def test_sqlite_batch_leaves_the_loop_free_between_slices(tmp_path):
    """A batch of 500 rows is written in slices with other tasks running in between,
    so no request of the worker waits for the whole batch."""

    writer, path = _sqlite_writer(tmp_path)
    turns: list[int] = []

    async def run() -> None:
        writer.record(_info(0))
        await writer.flush()  # creates the file and table

        async def ticker() -> None:
            while True:
                turns.append(len(writer._pending))
                await asyncio.sleep(0)

        for n in range(1, audit.BATCH + 1):
            writer.record(_info(n))
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        turns.clear()
        await writer.flush()
        ticking.cancel()
        await writer.close()

    asyncio.run(run())
    # The other task ran between the slices of the batch.
    assert len(turns) >= 3 and audit.BATCH >= 500

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audit.BATCH + 1
