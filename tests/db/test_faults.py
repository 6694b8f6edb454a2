"""db/faults.py on real errors from each backend: bad data, a full disk, an outage."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import DBAPIError

from tests.masterfiles import call
from tests.support import refusing_dst
from voip24h.db import faults
from voip24h.db.engine import sync_url
from voip24h.db.schema import cdr
from voip24h.domain import cdr as cdr_rows


def row(zone: Any, **overrides: Any) -> dict[str, Any]:
    return cdr_rows.normalize(call(0, amaflags=3), zone) | overrides


def raised(engine: Any, values: dict[str, Any]) -> BaseException:
    with pytest.raises(Exception) as caught, engine.begin() as conn:
        conn.execute(insert(cdr), [values])
    return caught.value


@pytest.mark.parametrize(
    "values",
    [
        {"duration": 2**70},  # wider than any backend's integer
        {"clid": "a\x00b"},  # NUL: PostgreSQL refuses it, SQLite/MariaDB store it
        {"dst": "666"},  # refused by a CHECK (a trigger on SQLite)
        {"row_key": None},  # NOT NULL
    ],
    ids=["huge-int", "nul", "check", "not-null"],
)
def test_a_value_the_database_refuses_is_a_data_error(engine, settings, values):
    with refusing_dst(engine):
        try:
            exc = raised(engine, row(settings.zone, **values))
        except pytest.fail.Exception:
            assert "clid" in values and engine.dialect.name != "postgresql"
            return
    assert faults.kind(exc) == "data", repr(exc)
    assert faults.reason(exc).startswith("refused by the database: ")


def test_a_lost_connection_is_an_outage(engine, backend, db_url):
    if backend == "sqlite":
        other = create_engine(sync_url(db_url))
        with other.connect() as conn:  # a database that is locked for too long
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            with engine.connect() as holder:
                holder.exec_driver_sql("BEGIN EXCLUSIVE")
                with pytest.raises(DBAPIError) as caught:  # "database is locked"
                    conn.exec_driver_sql("DELETE FROM cdr")
                holder.exec_driver_sql("ROLLBACK")
        other.dispose()
    else:
        with engine.connect() as victim:
            pid = victim.scalar(
                text(
                    "SELECT pg_backend_pid()"
                    if backend == "postgresql"
                    else "SELECT CONNECTION_ID()"
                )
            )
            with engine.connect() as killer:
                kill = "SELECT pg_terminate_backend(:p)" if backend == "postgresql" else "KILL :p"
                killer.execute(text(kill), {"p": pid})
                killer.commit()
            with pytest.raises(DBAPIError) as caught:
                victim.execute(text("SELECT 1")).fetchall()
    assert faults.kind(caught.value) == "outage", repr(caught.value)


def test_a_full_sqlite_file_is_full(tmp_path):
    from zoneinfo import ZoneInfo

    from voip24h.db import migrate
    from voip24h.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'small.db'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count={int(pages or 0) + 2}")
        with pytest.raises(DBAPIError) as caught:
            conn.execute(
                insert(cdr),
                [
                    row(ZoneInfo("UTC"), lastdata="x" * 200, row_key=str(n), uniqueid=str(n))
                    for n in range(2000)
                ],
            )
    engine.dispose()
    assert faults.kind(caught.value) == "full"
    assert "full" in faults.message(caught.value)


def test_a_bug_is_no_database_error():
    assert faults.kind(KeyError("x")) is None
    assert faults.kind(TypeError("x")) is None
