"""The indexes the migrations build are the ones the schema declares, and the user
queries of the seed protocol, and a tenant's getDate, read only their covering index
(no table rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from tests.support import downgrade
from voip24h.db import migrate
from voip24h.db.drivers import compile_for
from voip24h.db.queries.call_records import select_records
from voip24h.db.schema import COVERED, call_records, cdr
from voip24h.domain.partners import Scope, parse_extensions


def built(engine: Any, table: str) -> dict[str, list[str]]:
    return {
        str(ix["name"]): [str(c) for c in ix["column_names"]]
        for ix in inspect(engine).get_indexes(table)
    }


def declared(table: Any) -> dict[str, list[str]]:
    return {str(ix.name): [c.name for c in ix.columns] for ix in table.indexes}


def add_records(engine: Any, count: int = 1) -> None:
    """``count`` records of tenant acme, a minute apart, over users 101..110; the first
    is call 1.1 of user 101."""
    with engine.begin() as conn:
        conn.execute(
            call_records.insert(),
            [
                {
                    "callid": f"{n + 1}.1",
                    "user_ext": str(101 + n % 10),
                    "accountcode": "acme",
                    "call_ts": 1_700_000_000 + n * 60,
                    "call_date": "2023-11-15 05:13:20",
                    "call_type": "EXTERNAL",
                    "direction": "OUTBOUND",
                }
                for n in range(count)
            ],
        )


# Parameters of the plan tests' statements: user 101, all time.
PLAN_PARAMS = {"user": "101", "start": 0, "end": 2**40, "limit": 100}


def sqlite_plan(tmp_path: Any, scope: Scope, *, by_user: bool, by_window: bool) -> str:
    """SQLite's query plan for a seed records query of ``scope`` on a migrated file."""
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate.upgrade(engine)
    statement = compile_for(
        select_records(scope, by_user=by_user, by_window=by_window), engine.dialect
    )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement.sql, tuple(statement.args(PLAN_PARAMS))
        ).all()
    engine.dispose()
    return " | ".join(str(row[-1]) for row in plan)


def test_the_migrated_indexes_are_the_declared_ones(engine):
    for table in (cdr, call_records):
        found = built(engine, table.name)
        for name, columns in declared(table).items():
            assert found.get(name) == columns, f"{table.name}.{name}"


def test_upgrading_from_0004_widens_the_user_indexes_and_keeps_the_records(engine):
    downgrade(engine, "0004")
    assert built(engine, "call_records")["ix_records_user_ts"] == ["user_ext", "call_ts", "callid"]
    add_records(engine)
    migrate.upgrade(engine)
    found = built(engine, "call_records")
    assert found["ix_records_user_ts"] == ["user_ext", "call_ts", "callid", *COVERED]
    assert found["ix_records_account_user_ts"][-5:] == list(COVERED)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT callid, user_ext FROM call_records")).all() == [
            ("1.1", "101")
        ]


@pytest.mark.parametrize(
    ("scope", "index"),
    [
        (Scope(frozenset({"acme"})), "ix_records_account_user_ts"),
        (Scope(frozenset({"acme"}), parse_extensions("100-199")), "ix_records_account_user_ts"),
        (Scope(), "ix_records_user_ts"),
    ],
)
@pytest.mark.parametrize("by_window", [False, True], ids=["getUser", "getUserDate"])
def test_user_queries_read_only_their_covering_index_on_sqlite(tmp_path, scope, index, by_window):
    details = sqlite_plan(tmp_path, scope, by_user=True, by_window=by_window)
    assert f"USING COVERING INDEX {index}" in details, details
    assert "TEMP B-TREE" not in details, details  # read in the answer's order, not sorted


def test_a_tenants_window_reads_only_its_covering_index_on_sqlite(tmp_path):
    details = sqlite_plan(tmp_path, Scope(frozenset({"acme"})), by_user=False, by_window=True)
    assert "USING COVERING INDEX ix_records_account_ts" in details, details
    assert "TEMP B-TREE" not in details, details


def test_upgrading_from_0006_widens_the_tenant_index_and_keeps_the_records(engine):
    downgrade(engine, "0006")
    assert built(engine, "call_records")["ix_records_account_ts"] == [
        "accountcode",
        "call_ts",
        "callid",
    ]
    add_records(engine)
    migrate.upgrade(engine)
    assert built(engine, "call_records")["ix_records_account_ts"] == [
        "accountcode",
        "call_ts",
        "callid",
        "user_ext",
        *COVERED,
    ]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT callid, accountcode FROM call_records")).all() == [
            ("1.1", "acme")
        ]


def test_upgrading_from_0005_makes_the_row_key_unique_through_an_index(engine):
    downgrade(engine, "0005")
    assert "ux_cdr_row_key" not in built(engine, "cdr")
    row = {"row_key": "k1", "calldate": datetime(2024, 1, 1), "uniqueid": "u1"}
    # The table as it was at 0005: without the callid of 0009.
    old = [c for c in cdr.columns if c.name != "callid"]
    before = Table(
        "cdr",
        MetaData(),
        *(Column(c.name, c.type, primary_key=c.primary_key, default=c.default) for c in old),
    )
    with engine.begin() as conn:
        conn.execute(before.insert(), row)

    migrate.upgrade(engine)

    found = inspect(engine)
    # (MariaDB reports unique indexes as constraints too)
    assert {c["name"] for c in found.get_unique_constraints("cdr")} <= {"ux_cdr_row_key"}
    assert {ix["name"]: ix["unique"] for ix in found.get_indexes("cdr")}["ux_cdr_row_key"]
    with engine.connect() as conn:
        assert conn.execute(select(cdr.c.row_key, cdr.c.uniqueid)).all() == [("k1", "u1")]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(cdr.insert(), row)


@pytest.mark.parametrize(
    ("scope", "by_user", "hint"),
    [
        (Scope(frozenset({"acme"})), True, " FORCE INDEX (ix_records_account_user_ts) "),
        (Scope(), True, " FORCE INDEX (ix_records_user_ts) "),
        (Scope(frozenset({"acme"})), False, None),
    ],
    ids=["tenant-user", "user", "tenant-window"],
)
def test_user_reads_name_their_index_on_mysql_only(scope, by_user, hint):
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    statement = select_records(scope, by_user=by_user, by_window=True)
    on_mysql = compile_for(statement, mysql.dialect()).sql
    assert (hint in on_mysql) if hint else "INDEX" not in on_mysql
    for other in (sqlite.dialect(), postgresql.dialect()):
        assert "INDEX" not in compile_for(statement, other).sql


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
@pytest.mark.parametrize("by_window", [False, True], ids=["getUser", "getUserDate"])
def test_user_queries_read_their_index_in_order_on_mariadb(engine, by_window):
    """No filesort: MariaDB sorts a user's records if the ORDER BY names the user."""
    add_records(engine, 300)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE TABLE call_records")
    from sqlalchemy.dialects.mysql.asyncmy import dialect  # the server's reader's

    statement = compile_for(
        select_records(Scope(frozenset({"acme"})), by_user=True, by_window=by_window), dialect()
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN " + statement.sql, statement.args(PLAN_PARAMS))
        names = [column[0] for column in cursor.description]
        plan = dict(zip(names, cursor.fetchone(), strict=True))
    finally:
        raw.close()
    assert plan["key"] == "ix_records_account_user_ts"
    assert "Using index" in plan["Extra"] and "filesort" not in plan["Extra"], plan
