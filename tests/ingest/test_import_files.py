"""``voip24h import`` on real-shaped Master.csv files, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.masterfiles import call, layout_columns, line, master_csv
from voip24h.cli.importing import import_cmd
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.rejects import read_rejects

LAYOUTS = [
    pytest.param((), (False, False, False), id="16-default"),
    pytest.param(("--loguniqueid",), (True, False, False), id="17-loguniqueid"),
    pytest.param(("--loguserfield",), (False, True, False), id="17-loguserfield"),
    pytest.param((), (True, True, False), id="18-uniqueid-userfield"),
    pytest.param((), (False, False, True), id="19-newcdrcolumns"),
    pytest.param(("--loguniqueid", "--newcdrcolumns"), (True, False, True), id="20-uniqueid-new"),
    pytest.param(("--loguserfield", "--newcdrcolumns"), (False, True, True), id="20-userfield-new"),
    pytest.param((), (True, True, True), id="21-all"),
]


def run_import(db_url: str, *args: Any) -> Any:
    result = CliRunner().invoke(import_cmd, [*map(str, args), "--db", db_url, "--quiet"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def cdr_rows(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(select(cdr).order_by(cdr.c.calldate, cdr.c.uniqueid))
        return [dict(row) for row in result.mappings()]


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(("flags", "layout"), LAYOUTS)
def test_every_layout_imports_its_columns(db_url, engine, tmp_path, flags, layout):
    loguniqueid, loguserfield, newcdrcolumns = layout
    columns = layout_columns(*layout)
    rows = [
        call(0, userfield="vip", peeraccount="peer-a"),
        call(1, disposition="NO ANSWER", answer=None, billsec=0),
    ]
    path = write(tmp_path / "Master.csv", master_csv(rows, columns))

    result = run_import(db_url, path, *flags, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["imported"] == 2
    stored = cdr_rows(engine)
    assert [r["src"] for r in stored] == ["100", "101"]
    first = stored[0]
    assert first["calldate"] == datetime(2018, 7, 29, 8, 0, 0)
    assert first["clid"] == '"Ext 100" <100>'
    assert first["amaflags"] == 3
    assert first["duration"] == 35 and first["billsec"] == 30
    assert (first["uniqueid"] == "1532826000.0") is loguniqueid
    assert first["userfield"] == ("vip" if loguserfield else "")
    assert first["peeraccount"] == ("peer-a" if newcdrcolumns else "")
    assert first["sequence"] == (0 if newcdrcolumns else None)
    assert first["linkedid"] == ("1532826000.0" if newcdrcolumns else "")


@pytest.mark.parametrize("layout", [(True, False, False), (True, False, True)])
def test_ambiguous_column_count_is_refused_naming_the_flags(db_url, engine, tmp_path, layout):
    columns = layout_columns(*layout)
    path = write(tmp_path / "Master.csv", master_csv([call(0)], columns))

    result = run_import(db_url, path)

    assert result.exit_code == 2
    assert "--loguniqueid" in result.output and "--loguserfield" in result.output
    assert cdr_rows(engine) == []


def test_unknown_column_count_is_refused(db_url, engine, tmp_path):
    path = write(tmp_path / "Master.csv", '"a","b","c"\n')
    result = run_import(db_url, path)
    assert result.exit_code == 2
    assert "3 columns" in result.output and "--columns" in result.output


def test_gmt_times_become_the_pbx_zone(db_url, engine, tmp_path):
    columns = layout_columns(True, False, False)
    # 09:37:32 GMT is 16:37:32 in Asia/Ho_Chi_Minh (UTC+7).
    gmt = call(
        0, start=datetime(2018, 7, 29, 9, 37, 32), answer=None, end=datetime(2018, 7, 29, 9, 38, 7)
    )
    path = write(tmp_path / "Master.csv", master_csv([gmt], columns))

    assert run_import(db_url, path, "--loguniqueid", "--usegmtime").exit_code == 0

    (row,) = cdr_rows(engine)
    assert row["calldate"] == datetime(2018, 7, 29, 16, 37, 32)
    assert row["end"] == datetime(2018, 7, 29, 16, 38, 7)
    assert row["answer"] is None


def test_local_times_are_kept(db_url, engine, tmp_path):
    columns = layout_columns(True, False, False)
    local = call(0, start=datetime(2018, 7, 29, 9, 37, 32))
    path = write(tmp_path / "Master.csv", master_csv([local], columns))
    assert run_import(db_url, path, "--loguniqueid").exit_code == 0
    assert cdr_rows(engine)[0]["calldate"] == datetime(2018, 7, 29, 9, 37, 32)


def test_asterisk_quoting_commas_quotes_and_newlines_in_clid(db_url, engine, tmp_path):
    columns = layout_columns(True, True, True)
    odd = [
        call(0, clid='"Nguyen, Van A" <100>'),
        call(1, clid='"He said ""hi""" <101>'),
        call(2, clid='"Line one\nline two" <102>'),
        call(3, clid='""'),
    ]
    path = write(tmp_path / "Master.csv", master_csv(odd, columns))

    result = run_import(db_url, path)

    assert result.exit_code == 0, result.output
    assert [r["clid"] for r in cdr_rows(engine)] == [r["clid"] for r in odd]


def test_unanswered_call_with_empty_answer_makes_a_no_answer_record(db_url, engine, tmp_path):
    columns = layout_columns(True, False, False)
    missed = call(0, disposition="NO ANSWER", answer=None, billsec=0)
    text = master_csv([missed], columns)
    assert ',,"2018-07-29 08:00:35",35,0,"NO ANSWER"' in text  # as cdr_csv writes it
    path = write(tmp_path / "Master.csv", text)

    assert run_import(db_url, path).exit_code == 2  # 17 columns: ambiguous
    assert run_import(db_url, path, "--loguniqueid").exit_code == 0

    assert cdr_rows(engine)[0]["answer"] is None
    with engine.connect() as conn:
        record = conn.execute(select(call_records)).mappings().one()
    assert (record["user_ext"], record["call_status"]) == ("100", "NO ANSWER")
    assert record["phone_number"] == "0900000000"


def test_gzip_files_are_read_by_their_magic_bytes(db_url, engine, tmp_path):
    columns = layout_columns(True, True, True)
    data = master_csv([call(n) for n in range(30)], columns).encode()
    path = write(tmp_path / "Master-2018-07.log", gzip.compress(data))  # no .gz suffix

    result = run_import(db_url, path, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["imported"] == 30
    assert len(cdr_rows(engine)) == 30


def test_bad_lines_are_rejected_with_line_numbers_and_good_lines_all_kept(db_url, engine, tmp_path):
    columns = layout_columns(True, True, True)
    good = [call(n) for n in range(8)]
    lines = [line(row, columns).encode() for row in good]
    bad = [
        b'"acme","100","200"\n',  # wrong column count
        line(call(90), columns).replace("2018-07-29 09:30:00", "2018-13-45 99:00:00").encode(),
        line(call(91), columns).replace(",35,30,", ",35,thirty,").encode(),
        lines[0].replace(b'"100"', b'"1"0"0"', 1),  # broken quoting, even quote count
        line(call(92), columns).replace("Ext 142", "Ext \xff").encode("latin-1"),
        line(call(93, lastdata="x" * 300), columns).encode(),
        b'"acme","100","never closed,"ringing",20\n',  # a quote never closed
    ]
    mixed = [lines[0], bad[0], lines[1], bad[1], lines[2], bad[2], lines[3], bad[3]]
    mixed += [lines[4], bad[4], lines[5], bad[5], lines[6], bad[6], lines[7]]
    path = write(tmp_path / "Master.csv", b"".join(mixed))
    rejects = tmp_path / "rejects.csv"

    result = run_import(db_url, path, "--rejects", rejects, "--json")

    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert (summary["imported"], summary["rejected"]) == (8, 7)
    assert summary["rejects_file"] == str(rejects)
    assert [r["src"] for r in cdr_rows(engine)] == [r["src"] for r in good]
    listed = read_rejects(rejects)
    assert [int(r["line"]) for r in listed] == [2, 4, 6, 8, 10, 12, 14]
    reasons = [r["reason"] for r in listed]
    assert reasons[0].startswith("wrong column count: expected 21, got 3")
    assert reasons[1] == "bad date: start '2018-13-45 99:00:00' is not a date and time"
    assert reasons[2] == "bad integer: billsec 'thirty'"
    assert reasons[3].startswith("broken quoting")
    assert reasons[4].startswith("invalid UTF-8")
    assert reasons[5] == "too long: lastdata has 300 characters, the column holds 255"
    assert reasons[6].startswith("broken quoting")
    assert {r["file"] for r in listed} == {str(path)}
    assert listed[4]["text"].count("\\xff") == 1


def test_importing_twice_or_overlapping_files_loads_each_call_once(db_url, engine, tmp_path):
    columns = layout_columns(True, True, True)
    first = write(tmp_path / "a.csv", master_csv([call(n) for n in range(0, 60)], columns))
    second = write(tmp_path / "b.csv", master_csv([call(n) for n in range(40, 100)], columns))

    one = json.loads(run_import(db_url, first, "--json").output)
    again = json.loads(run_import(db_url, first, second, "--json").output)

    assert (one["imported"], one["duplicates"]) == (60, 0)
    assert (again["imported"], again["duplicates"]) == (40, 80)
    assert [f["imported"] for f in again["files"]] == [0, 40]
    assert len(cdr_rows(engine)) == 100


def test_rows_without_uniqueid_are_keyed_by_content(db_url, engine, tmp_path):
    columns = layout_columns()
    path = write(tmp_path / "Master.csv", master_csv([call(n) for n in range(5)], columns))
    assert json.loads(run_import(db_url, path, "--json").output)["imported"] == 5
    assert json.loads(run_import(db_url, path, "--json").output)["duplicates"] == 5
    assert len(cdr_rows(engine)) == 5


def test_cdr_custom_file_with_column_mapping(db_url, engine, tmp_path):
    custom = (
        '"acme","100","0982056720","2018-07-29 16:37:32","2018-07-29 16:37:40",'
        '"2018-07-29 16:38:10","38","30","ANSWERED","PJSIP/100-00000001",'
        '"PJSIP/trunk-00000002","1532857052.42","ignored"\n'
    )
    path = write(tmp_path / "Master.csv", custom)
    spec = (
        "accountcode,src,dst,start,answer,end,duration,billsec,disposition,"
        "channel,dstchannel,uniqueid,-"
    )

    result = run_import(db_url, path, "--columns", spec)

    assert result.exit_code == 0, result.output
    (row,) = cdr_rows(engine)
    assert (row["uniqueid"], row["billsec"], row["dst"]) == ("1532857052.42", 30, "0982056720")
    assert row["calldate"] == datetime(2018, 7, 29, 16, 37, 32)


def test_bad_custom_column_names_are_refused(db_url, tmp_path):
    path = write(tmp_path / "Master.csv", '"a"\n')
    result = run_import(db_url, path, "--columns", "src,calltime")
    assert result.exit_code == 2 and "calltime" in result.output


def test_summary_line_without_a_terminal_has_no_progress_output(db_url, tmp_path):
    columns = layout_columns(True, True, True)
    path = write(tmp_path / "Master.csv", master_csv([call(n) for n in range(3)], columns))
    result = CliRunner().invoke(import_cmd, [str(path), "--db", db_url])
    assert result.exit_code == 0
    assert result.stdout == "imported 3 rows, skipped 0 duplicates, rejected 0\n"
    assert result.stderr == ""


@pytest.mark.parametrize("usegmtime", [False, True])
def test_parser_rows_equal_cdr_normalize_of_the_same_values(usegmtime):
    """The import's flat hot path and cdr.normalize (used by sync and the API tests) agree."""
    from zoneinfo import ZoneInfo

    from voip24h.domain import cdr as cdr_module
    from voip24h.domain.dates import gmt_to_local
    from voip24h.ingest.csvstream import RawRecord
    from voip24h.ingest.rows import RowParser

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    for layout in [(False, False, False), (True, False, False), (True, True, True)]:
        columns = layout_columns(*layout)
        parser = RowParser(columns, zone, usegmtime)
        for n, overrides in enumerate(
            [{}, {"answer": None, "disposition": "NO ANSWER"}, {"amaflags": "BILLING"}]
        ):
            row = call(n, **overrides)
            parsed = parser.parse(RawRecord(1, line(row, columns).rstrip("\n").encode(), 0))
            expected_raw = {name: row[name] for name in columns}
            expected_raw["amaflags"] = {"DOCUMENTATION": 3, "BILLING": 2}[row["amaflags"]]
            if usegmtime:
                for name in ("start", "answer", "end"):
                    if expected_raw[name] is not None:
                        expected_raw[name] = gmt_to_local(expected_raw[name], zone)
            assert parsed.row == cdr_module.normalize(expected_raw, zone)


def test_sqlite_fast_insert_stores_what_the_core_statement_stores(tmp_path):
    from zoneinfo import ZoneInfo

    from sqlalchemy import text

    from voip24h.db import migrate
    from voip24h.db.engine import make_engine
    from voip24h.db.queries import cdr as cdr_queries
    from voip24h.domain import cdr as cdr_module

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    rows = [cdr_module.normalize(call(n, amaflags=3, answer=None), zone) for n in range(3)]
    dumps = []
    for name, insert in [
        ("fast", cdr_queries.insert_rows),
        (
            "core",
            lambda conn, rows: conn.execute(
                cdr_queries._insert_ignoring_duplicates("sqlite"), rows
            ),
        ),
    ]:
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            insert(conn, rows)
        with engine.connect() as conn:
            dumps.append(conn.execute(text("SELECT * FROM cdr ORDER BY id")).all())
        engine.dispose()
    assert dumps[0] == dumps[1]
    assert dumps[0][0][2] == "2018-07-29 08:00:00.000000"


def test_sqlite_fast_insert_of_records_stores_what_core_stores(tmp_path):
    from zoneinfo import ZoneInfo

    from sqlalchemy import insert, text

    from voip24h.db import migrate
    from voip24h.db.engine import make_engine
    from voip24h.db.queries import call_records as record_queries
    from voip24h.domain import cdr as cdr_module
    from voip24h.domain.mapping import ExtensionMatcher, records_for_call

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    rows = [
        cdr_module.normalize(call(n, amaflags=3, dstchannel="PJSIP/205-1"), zone) for n in (1, 2)
    ]
    records = [r for row in rows for r in records_for_call([row], ExtensionMatcher(), zone)]
    dumps = []
    for name in ("fast", "core"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            if name == "fast":
                record_queries.insert_records(conn, records)
            else:
                conn.execute(insert(call_records), [record_queries._row(r) for r in records])
        with engine.connect() as conn:
            dumps.append(conn.execute(text("SELECT * FROM call_records ORDER BY 1, 2")).all())
        engine.dispose()
    assert len(dumps[0]) == 4
    assert dumps[0] == dumps[1]


def test_truncated_gzip_keeps_what_was_read_and_says_so(db_url, engine, tmp_path):
    columns = layout_columns(True, True, True)
    data = gzip.compress(master_csv([call(n) for n in range(200)], columns).encode())
    path = write(tmp_path / "Master.csv.gz", data[: len(data) // 2])

    result = run_import(db_url, path, "--json")

    assert result.exit_code == 3
    assert "cannot read to the end" in result.output
    assert 0 < len(cdr_rows(engine)) < 200


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_a_call_whose_rows_span_batches_gets_the_records_of_all_its_rows(
    db_url, engine, tmp_path, batch_size
):
    columns = layout_columns(True, True, True)
    legs = [
        call(0, dstchannel="PJSIP/201-0001", disposition="NO ANSWER", billsec=0, sequence=1),
        call(0, dstchannel="PJSIP/202-0002", disposition="ANSWERED", billsec=20, sequence=2),
        call(0, dstchannel="PJSIP/201-0003", disposition="ANSWERED", billsec=5, sequence=3),
    ]
    path = write(tmp_path / "Master.csv", master_csv(legs, columns))

    result = run_import(db_url, path, "--batch-size", batch_size, "--json")
    assert result.exit_code == 0

    with engine.connect() as conn:
        rows = conn.execute(
            select(call_records.c.user_ext, call_records.c.phone_number, call_records.c.billsec)
        ).all()
    assert sorted(map(tuple, rows)) == [("100", "202", 20), ("201", "100", 5), ("202", "100", 20)]
    # A call rebuilt as its later rows arrive counts once in the summary.
    assert json.loads(result.output)["records"] == len(rows)
