"""``voip24h sync`` from real PBX tables: FreePBX asteriskcdrdb.cdr on MariaDB and a
cdr_adaptive_odbc table on PostgreSQL, written while the sync runs."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.databases import SERVER_URLS, unavailable
from tests.support import refusing_dst
from voip24h.cli.sync import sync_cmd
from voip24h.db.engine import sync_url
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.loader import Loader
from voip24h.ingest.sync import Syncer

FREEPBX_CDR = """
CREATE TABLE cdr (
  calldate datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '',
  dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
  channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
  lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '',
  duration int(11) NOT NULL DEFAULT 0, billsec int(11) NOT NULL DEFAULT 0,
  disposition varchar(45) NOT NULL DEFAULT '', amaflags int(11) NOT NULL DEFAULT 0,
  accountcode varchar(20) NOT NULL DEFAULT '', uniqueid varchar(32) NOT NULL DEFAULT '',
  userfield varchar(255) NOT NULL DEFAULT '', did varchar(50) NOT NULL DEFAULT '',
  recordingfile varchar(255) NOT NULL DEFAULT '', cnum varchar(80) NOT NULL DEFAULT '',
  cnam varchar(80) NOT NULL DEFAULT '', outbound_cnum varchar(80) NOT NULL DEFAULT '',
  outbound_cnam varchar(80) NOT NULL DEFAULT '', dst_cnam varchar(80) NOT NULL DEFAULT '',
  linkedid varchar(32) NOT NULL DEFAULT '', peeraccount varchar(80) NOT NULL DEFAULT '',
  sequence int(11) NOT NULL DEFAULT 0,
  KEY calldate (calldate), KEY dst (dst), KEY accountcode (accountcode)
) DEFAULT CHARSET=utf8mb4
"""
ADAPTIVE_ODBC_CDR = """
CREATE TABLE cdr (
  id serial PRIMARY KEY,
  start timestamp NOT NULL, answer timestamp, "end" timestamp,
  clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '',
  dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
  channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
  lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '',
  duration integer NOT NULL DEFAULT 0, billsec integer NOT NULL DEFAULT 0,
  disposition varchar(45) NOT NULL DEFAULT '', amaflags integer NOT NULL DEFAULT 0,
  accountcode varchar(20) NOT NULL DEFAULT '', uniqueid varchar(150) NOT NULL DEFAULT '',
  userfield varchar(255) NOT NULL DEFAULT '', peeraccount varchar(80) NOT NULL DEFAULT '',
  linkedid varchar(150) NOT NULL DEFAULT '', sequence integer
);
CREATE INDEX cdr_start ON cdr (start)
"""
BASE = datetime(2026, 11, 20, 9, 0, 0)


class SourceDatabase:
    """A private database on a server, holding a PBX-shaped cdr table (no voip24h schema)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.name = f"voip24h_src_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        server = SERVER_URLS[kind]
        self.admin = create_engine(sync_url(server), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {self.name}"))
        self.url = make_url(server).set(database=self.name).render_as_string(hide_password=False)
        self.engine = create_engine(
            sync_url(self.url), isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
        self.time = "calldate" if kind == "mysql" else "start"

    def create_table(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("DROP TABLE IF EXISTS cdr"))
            for statement in (FREEPBX_CDR if self.kind == "mysql" else ADAPTIVE_ODBC_CDR).split(
                ";"
            ):
                conn.execute(text(statement))

    def write(self, n: int, **overrides: Any) -> dict[str, Any]:
        """Insert call ``n`` as Asterisk would (an answered outbound call from 1xx)."""
        start = overrides.pop("start", BASE + timedelta(minutes=n))
        ext = str(100 + n % 50)
        row: dict[str, Any] = {
            self.time: start,
            "clid": f'"Ext {ext}" <{ext}>',
            "src": ext,
            "dst": f"09{n:08d}",
            "dcontext": "from-internal",
            "channel": f"PJSIP/{ext}-{n:08x}",
            "dstchannel": f"PJSIP/trunk-{n:08x}",
            "lastapp": "Dial",
            "duration": 40,
            "billsec": 30,
            "disposition": "ANSWERED",
            "amaflags": 3,
            "accountcode": "acme",
            "uniqueid": f"{1763600000 + n}.{n}",
            "linkedid": f"{1763600000 + n}.{n}",
            "sequence": n,
        }
        if self.kind == "postgresql":
            row["answer"] = start + timedelta(seconds=10)
            row["end"] = start + timedelta(seconds=40)
        row.update(overrides)
        names = list(row)
        quoted = ", ".join(f'"{c}"' if c == "end" else c for c in names)
        values = ", ".join(f":{c}" for c in names)
        with self.engine.connect() as conn:
            conn.execute(text(f"INSERT INTO cdr ({quoted}) VALUES ({values})"), row)
        return row

    def kill_connections(self, database: str) -> None:
        """End every session on ``database`` (what a server restart does to clients)."""
        with self.admin.connect() as conn:
            if self.kind == "postgresql":
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                )
                return
            ids = conn.scalars(
                text("SELECT id FROM information_schema.processlist WHERE db = :db"),
                {"db": database},
            ).all()
            for session in ids:
                with contextlib.suppress(Exception):  # ended by itself meanwhile
                    conn.execute(text(f"KILL {int(session)}"))

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin.connect() as conn:
            if self.kind == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.name}"))
        self.admin.dispose()


@pytest.fixture(scope="module", params=["mysql", "postgresql"], ids=["freepbx-mariadb", "odbc-pg"])
def source_server(request: pytest.FixtureRequest) -> Iterator[SourceDatabase]:
    try:
        database = SourceDatabase(request.param)
    except Exception as exc:
        unavailable(request.param, str(exc).splitlines()[0])
    yield database
    database.drop()


@pytest.fixture
def source(source_server: SourceDatabase) -> SourceDatabase:
    source_server.create_table()
    return source_server


@pytest.fixture
def loader(engine: Engine, settings: Any) -> Loader:
    made = Loader(engine, settings)
    made.check_ready()
    return made


def uniqueids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(cdr.c.uniqueid)))


def record_users(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(call_records.c.user_ext)))


def uid(*numbers: int) -> list[str]:
    return sorted(f"{1763600000 + n}.{n}" for n in numbers)


def wait_for(condition: Any, seconds: float) -> float:
    """Seconds until ``condition()`` held; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not true within {seconds}s")
        time.sleep(0.05)
    return time.monotonic() - started


class Running:
    """A Syncer polling in a thread, stopped at the end of the test."""

    def __init__(self, syncer: Syncer, interval: float = 1.0):
        self.syncer = syncer
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=syncer.run, kwargs={"interval": interval, "should_stop": self.stop.is_set}
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.syncer.close()


@pytest.fixture
def running() -> Iterator[Any]:
    started: list[Running] = []

    def _start(syncer: Syncer) -> Running:
        started.append(Running(syncer))
        return started[-1]

    yield _start
    for one in started:
        one.close()


def test_rows_written_while_sync_runs_arrive_within_five_seconds(source, loader, engine, running):
    for n in range(3):
        source.write(n)
    sync = running(Syncer(loader, source.url))
    wait_for(lambda: uniqueids(engine) == uid(0, 1, 2), 15)

    source.write(3)
    assert wait_for(lambda: uniqueids(engine) == uid(0, 1, 2, 3), 5) < 5
    # A long call: written now, started before the newest row already copied.
    source.write(4, start=BASE + timedelta(seconds=30))
    assert wait_for(lambda: uniqueids(engine) == uid(0, 1, 2, 3, 4), 5) < 5
    assert record_users(engine) == {"100", "101", "102", "103", "104"}
    assert sync.syncer.stats.duplicates == 0


def test_sync_resumes_after_both_databases_drop_their_connections(
    source, loader, engine, running, backend, db_url
):
    source.write(0)
    running(Syncer(loader, source.url))
    wait_for(lambda: uniqueids(engine) == uid(0), 15)

    source.kill_connections(source.name)
    if backend != "sqlite":
        source_kind_admin = SourceDatabase.__new__(SourceDatabase)
        source_kind_admin.kind = backend
        source_kind_admin.admin = create_engine(
            sync_url(SERVER_URLS[backend]), isolation_level="AUTOCOMMIT"
        )
        source_kind_admin.kill_connections(make_url(db_url).database or "")
        source_kind_admin.admin.dispose()
    source.write(1)
    wait_for(lambda: uniqueids(engine) == uid(0, 1), 20)


def test_restart_copies_only_what_is_new(source, engine, db_url):
    runner = CliRunner()
    for n in range(3):
        source.write(n)
    args = ["--source", source.url, "--db", db_url, "--once", "--json"]

    first = runner.invoke(sync_cmd, args)
    assert first.exit_code == 0, first.output
    source.write(3)
    second = runner.invoke(sync_cmd, args)
    assert second.exit_code == 0, second.output

    import json

    assert json.loads(first.output)["copied"] == 3
    assert json.loads(second.output)["copied"] == 1
    assert uniqueids(engine) == uid(0, 1, 2, 3)


def test_once_with_progress_off_a_terminal_prints_rows_of_the_total_and_eta(source, engine, db_url):
    for n in range(5):
        source.write(n)
    args = ["--source", source.url, "--db", db_url, "--once"]
    shown = CliRunner().invoke(sync_cmd, [*args, "--progress"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("copied 5 rows, skipped 0 duplicates, rejected 0;")
    assert re.fullmatch(r"syncing: 5/5 rows, [0-9,]+ rows/s, eta 0:00:00\n", shown.stderr), (
        shown.stderr
    )
    quiet = CliRunner().invoke(sync_cmd, [*args, "--quiet"])
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    both = CliRunner().invoke(sync_cmd, [*args, "--quiet", "--progress"])
    assert both.exit_code == 2
    assert "--quiet and --progress contradict each other" in both.output


def test_each_schema_s_own_columns_come_along(source, engine, db_url):
    """FreePBX: cnum/did/recordingfile (cnum names the caller on a trunk channel);
    cdr_adaptive_odbc: start/answer/end."""
    if source.kind == "mysql":
        source.write(
            0,
            channel="SIP/trunk-viettel-00000001",
            cnum="137",
            did="02873000111",
            recordingfile="out-0982-137-20261120.wav",
        )
    else:
        source.write(0)
    result = CliRunner().invoke(sync_cmd, ["--source", source.url, "--db", db_url, "--once"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        row = conn.execute(select(cdr)).mappings().one()
        user = conn.scalar(select(call_records.c.user_ext))
    assert row["calldate"] == BASE
    if source.kind == "mysql":
        assert (row["did"], row["recordingfile"], row["cnum"]) == (
            "02873000111",
            "out-0982-137-20261120.wav",
            "137",
        )
        assert user == "137"
    else:
        assert (row["answer"], row["end"]) == (
            BASE + timedelta(seconds=10),
            BASE + timedelta(seconds=40),
        )
        assert user == "100"


def test_a_select_only_account_is_enough_and_nothing_is_written(source, engine, db_url):
    """The documented least-privilege GRANT works; the source is byte-for-byte unchanged."""
    user = f"v24h_ro_{uuid.uuid4().hex[:6]}"
    source.write(0)
    with source.admin.connect() as conn:
        if source.kind == "mysql":
            conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
            conn.execute(text(f"GRANT SELECT ON {source.name}.cdr TO '{user}'@'%'"))
        else:
            conn.execute(text(f"CREATE ROLE {user} LOGIN PASSWORD 'pw'"))
    if source.kind == "postgresql":
        with source.engine.connect() as conn:
            conn.execute(text(f"GRANT SELECT ON cdr TO {user}"))
    before = _checksum(source)
    url = make_url(source.url).set(username=user, password="pw")
    try:
        result = CliRunner().invoke(
            sync_cmd,
            ["--source", url.render_as_string(hide_password=False), "--db", db_url, "--once"],
        )
        assert result.exit_code == 0, result.output
        assert uniqueids(engine) == uid(0)
        assert _checksum(source) == before
    finally:
        with source.admin.connect() as conn:
            if source.kind == "mysql":
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
            else:
                with source.engine.connect() as inner:
                    inner.execute(text(f"REVOKE ALL ON cdr FROM {user}"))
                conn.execute(text(f"DROP ROLE IF EXISTS {user}"))


def _checksum(source: SourceDatabase) -> tuple[Any, ...]:
    with source.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM cdr ORDER BY {source.time}")).all()
        count = conn.scalar(select(func.count()).select_from(text("cdr")))
    return count, tuple(map(tuple, rows))


def test_missing_table_is_a_clear_error(source, db_url):
    result = CliRunner().invoke(
        sync_cmd, ["--source", source.url, "--table", "nope", "--db", db_url, "--once"]
    )
    assert result.exit_code == 2
    assert "no table 'nope'" in result.output


def test_sync_keeps_conversations_and_tenants_by_side(source, engine, db_url):
    """A blind transfer by the caller, shaped as the Asterisk 20 capture's scenario 63
    (tests/fixtures/asterisk-20; asterisk/testsuite
    tests/cdr/cdr_properties/blind-transfer-accountcode checks this transfer's
    accountcode): the transferred leg has the callee's uniqueid and the first channel's
    linkedid. An inbound trunk call has no accountcode; the callee's tenant is in
    peeraccount (main/cdr.c sets it from the party B channel)."""
    u1, u2 = "1763700000.1", "1763700005.2"
    source.write(
        1,
        channel="PJSIP/101-00000001",
        dstchannel="PJSIP/102-00000002",
        src="101",
        dst="102",
        uniqueid=u1,
        linkedid=u1,
        peeraccount="acme",
    )
    source.write(
        2,
        channel="PJSIP/102-00000002",
        dstchannel="PJSIP/103-00000003",
        src="102",
        dst="103",
        uniqueid=u2,
        linkedid=u1,
        peeraccount="acme",
    )
    source.write(
        3,
        channel="PJSIP/trunk-00000004",
        dstchannel="PJSIP/137-00000005",
        src="0909000111",
        dst="137",
        accountcode="",
        peeraccount="globex",
        uniqueid="1763700100.4",
        linkedid="1763700100.4",
    )
    source.write(4, channel="PJSIP/trunk-00000006", dstchannel="PJSIP/138-00000007",
                 src="0909000222", dst="138", accountcode="", peeraccount="",
                 uniqueid="1763700200.6", linkedid="1763700200.6")  # fmt: skip

    result = CliRunner().invoke(sync_cmd, ["--source", source.url, "--db", db_url, "--once"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "1 rows rang an extension with no tenant (no peeraccount, no accountcode): "
        "partners scoped by accountcode do not see them; see docs/operators.md#tenants"
    )
    with engine.connect() as conn:
        records = {
            (r.callid, r.user_ext): r.accountcode for r in conn.execute(select(call_records))
        }
    assert records == {
        (u1, "101"): "acme",
        (u1, "102"): "acme",
        (u1, "103"): "acme",
        ("1763700100.4", "137"): "globex",
        ("1763700200.6", "138"): "",
    }


def test_a_row_the_server_database_refuses_is_rejected_and_the_sync_goes_on(
    source, loader, engine, running, db_url
):
    """A data error is not an outage: the row is rejected once, never retried for ever."""
    import json

    for n in range(6):
        source.write(n, dst="666" if n == 2 else f"09{n:08d}")
    with refusing_dst(engine, "666"):
        once = CliRunner().invoke(
            sync_cmd, ["--source", source.url, "--db", db_url, "--once", "--json"]
        )
        assert once.exit_code == 1, once.output
        assert (json.loads(once.output)["copied"], json.loads(once.output)["rejected"]) == (5, 1)
        assert uniqueids(engine) == uid(0, 1, 3, 4, 5)

        sync = running(Syncer(loader, source.url))
        source.write(6)
        source.write(7, dst="666")
        wait_for(lambda: uniqueids(engine) == uid(0, 1, 3, 4, 5, 6), 15)
        time.sleep(1.5)  # a poll or two more: the refused row is not tried again
        assert sync.syncer.stats.errors == 0
        assert sync.syncer.stats.rejected == 2  # rows 2 (read again in the window) and 7
        assert sync.thread.is_alive()
        sync.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's max_page_count makes the disk full
def test_a_full_server_database_stops_the_sync_with_exit_4_and_loses_nothing(
    source, engine, db_url
):
    import sqlite3

    from sqlalchemy import event

    for n in range(400):
        source.write(n)
    with engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)

    def small(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute(f"PRAGMA max_page_count={pages + 10}").close()

    args = ["--source", source.url, "--db", db_url, "--once", "--json"]
    event.listen(Engine, "connect", small)
    try:
        full = CliRunner().invoke(sync_cmd, args)
    finally:
        event.remove(Engine, "connect", small)
    assert full.exit_code == 4, full.output
    assert "the database is out of space (database or disk is full)" in full.output
    engine.dispose()
    again = CliRunner().invoke(sync_cmd, args)
    assert again.exit_code == 0, again.output
    assert uniqueids(engine) == uid(*range(400))
