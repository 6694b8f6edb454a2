"""SQLite renders seed answers itself (json1): the same bytes as rendering its rows."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from voip24h.db.drivers import SQLiteReader, Statement, compile_for
from voip24h.db.queries import call_records as record_queries
from voip24h.db.schema import call_records
from voip24h.domain.partners import Scope, parse_extensions
from voip24h.wire.protocol import RECORD_FIELDS, render_array, render_records

ALL = Scope(frozenset(), parse_extensions())
TENANT = Scope(frozenset({"A"}), parse_extensions())
WINDOW = {"start": 0, "end": 2**40, "limit": 1000}
text = st.text(st.characters(codec="utf-8"), max_size=12)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteReader]:
    path = tmp_path_factory.mktemp("rendered") / "records.db"
    engine = create_engine(f"sqlite:///{path}")
    call_records.create(engine)
    engine.dispose()
    reader = SQLiteReader(str(path), timeout=5)
    assert reader.renders_json, "this SQLite has no JSON functions"
    yield reader
    reader._drop()


def _fill(path: str, rows: list[dict[str, Any]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM call_records")
        if not rows:
            return
        names = list(rows[0])
        marks = ", ".join("?" * len(names))
        conn.executemany(
            f"INSERT INTO call_records ({', '.join(names)}) VALUES ({marks})",
            [tuple(row.values()) for row in rows],
        )


def _record(n: int, **values: Any) -> dict[str, Any]:
    record = {
        "callid": f"1700000000.{n}",
        "user_ext": "101",
        "accountcode": "A",
        "call_ts": 1_700_000_000 + n // 3,  # ties on call_ts: callid breaks them
        "call_date": "2023-11-15 05:13:20",
        "phone_number": "0901234567",
        "call_type": "EXTERNAL",
        "call_status": "ANSWERED",
        "direction": "outbound",
        "duration": 0,
        "billsec": 0,
        "did": "",
        "linkedid": "",
        "recordingfile": "",
    }
    record.update(values)
    return record


def _both(
    reader: SQLiteReader, scope: Scope, by_user: bool, params: dict[str, Any]
) -> tuple[bytes, bytes]:
    """(the rows rendered by Python, the array rendered by SQLite) for one request."""
    rows_sql = compile_for(
        record_queries.select_records(scope, by_user=by_user, by_window=True), reader.dialect
    )
    json_sql = compile_for(
        record_queries.select_records_json(
            scope, by_user=by_user, by_window=True, names=RECORD_FIELDS
        ),
        reader.dialect,
    )
    rows = asyncio.run(reader.fetch(rows_sql, params))
    ((count, array),) = asyncio.run(reader.fetch(json_sql, params))
    assert count == len(rows)
    return render_records(rows), render_array(bytes(array))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(text, text, text, text), max_size=15))
def test_any_text_renders_to_the_same_bytes(
    reader: SQLiteReader, values: list[tuple[str, ...]]
) -> None:
    rows = [
        _record(n, callid=f"{n}.{a}", phone_number=b, call_type=c, call_status=d)
        for n, (a, b, c, d) in enumerate(values)
    ]
    _fill(reader._path, rows)
    python, sqlite = _both(reader, ALL, False, WINDOW)
    assert sqlite == python


def test_quotes_backslashes_control_characters_and_emoji(reader: SQLiteReader) -> None:
    _fill(reader._path, [_record(1, phone_number='"\\\x00\x1f\n\t\x7fé😀\u2028', call_type="")])
    python, sqlite = _both(reader, ALL, False, WINDOW)
    assert sqlite == python
    assert b'"phoneNumber":"\\"\\\\\\u0000\\u001f\\n\\t' in sqlite


def test_order_limit_scope_and_user_are_those_of_the_rows(reader: SQLiteReader) -> None:
    rows = [
        _record(n, user_ext=("101", "102")[n % 2], accountcode="AB"[n % 3 == 0]) for n in range(300)
    ]
    _fill(reader._path, rows)
    for scope in (ALL, TENANT):
        for by_user, params in ((False, WINDOW), (True, {**WINDOW, "user": "102"})):
            for limit in (1, 7, 1000):
                python, sqlite = _both(reader, scope, by_user, {**params, "limit": limit})
                assert sqlite == python
    python, sqlite = _both(reader, TENANT, True, {**WINDOW, "user": "102", "limit": 1000})
    assert sqlite.count(b'"callId"') == sum(1 for n in range(300) if n % 2 and n % 3)


def test_no_records_is_an_empty_array(reader: SQLiteReader) -> None:
    _fill(reader._path, [])
    python, sqlite = _both(reader, ALL, False, WINDOW)
    assert sqlite == python == b'{"respCode":0,"respMsg":"Success","data":[]}'


def test_a_statement_is_one_row_whatever_the_count(reader: SQLiteReader) -> None:
    _fill(reader._path, [_record(n) for n in range(50)])
    statement: Statement = reader.prepare(
        ("test-json",),
        lambda: record_queries.select_records_json(
            ALL, by_user=False, by_window=True, names=RECORD_FIELDS
        ),
    )
    assert len(asyncio.run(reader.fetch(statement, WINDOW))) == 1
